//! The operator's dashboard and its live events, against a real
//! `permitsync serve` process on loopback.
//!
//! - `GET /v1/events` (Server-Sent Events): a token is required; a REST write
//!   and a device's sync connection reach the tenant's stream, and never
//!   another tenant's.
//! - The dashboard in a real browser: two stores edit a permit's title
//!   offline and meet through bundles (a conflict); a node serves the merged
//!   store; `node tests/js/dashboard.mjs` drives Debian's Chromium through
//!   `playwright-core` to resolve the conflict from the page; the node then
//!   shows the chosen title and no conflict. Before the node starts, its
//!   store becomes its tenant's authority and an enrolled issuer's device
//!   approves the permit, signed (carried in bundles): the page and the
//!   printed sheet say "approved by J. Smith on tablet-3, signed", and the
//!   history names the verified author of a change apart from the device its
//!   note claims. Screenshots land in `target/test-artifacts/`.
//!
//! The browser test needs `/usr/bin/chromium` (`scripts/install-browser.sh`)
//! and Node.js with `tests/js` installed; without them it fails, unless
//! `PERMITSYNC_SKIP_BROWSER=1` is set.

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use browser::{assert_screenshots, browser_ready, fresh_artifacts, Http};
use permitsync::bundle;
use permitsync::identity::Role;
use permitsync::model::{EntityId, DEFAULT_TENANT};
use permitsync::store::Store;
use permitsync::write::Edit;
use serde_json::{json, Value};
use support::{cli, repo_root, run_js, NodeProcess};

const TOKEN: &str = "t-supervisor";
const TOKEN_TABLET: &str = "t-tablet";
const TOKEN_OTHER: &str = "t-globex";

/// How long an expected event may take to arrive on a stream.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the browser script may run (each of its own waits is bounded too).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

/// The screenshots `tests/js/dashboard.mjs` takes on success, in
/// `target/test-artifacts`.
const SCREENSHOTS: [&str; 4] = [
    "dashboard-overview.png",
    "dashboard-before.png",
    "dashboard-after.png",
    "dashboard.png",
];
/// The screenshot it takes when it fails.
const FAILURE_SCREENSHOT: &str = "dashboard-failure.png";

/// A tokens file: the default tenant (which owns documents made by the CLI)
/// for the supervisor and a tablet, and another tenant.
fn write_tokens(dir: &Path) -> PathBuf {
    let tokens = json!({"tokens": [
        {"token": TOKEN, "tenant": "default", "device": "supervisor", "mode": "read-write"},
        {"token": TOKEN_TABLET, "tenant": "default", "device": "tablet-7", "mode": "read-write"},
        {"token": TOKEN_OTHER, "tenant": "globex", "device": "globex-1", "mode": "read-write"},
    ]});
    let path = dir.join("tokens.json");
    fs::write(&path, tokens.to_string()).expect("write tokens.json");
    path
}

/// Carry every document of `from` to `to` in a bundle file.
fn carry(from: &Path, to: &Path, file: &Path) {
    let file = file.to_str().expect("a UTF-8 path");
    cli(from, &["export", file]);
    cli(to, &["import", file]);
}

/// The devices of the two stores that change a permit's title offline.
const OFFICE_DEVICE: &str = "site-office";
const FIELD_DEVICE: &str = "field-tablet";
/// The titles they write.
const OFFICE_TITLE: &str = "Replace pump seal P-201";
const FIELD_TITLE: &str = "Replace mechanical seal on P-201";

/// A permit whose title two stores (devices [`OFFICE_DEVICE`] and
/// [`FIELD_DEVICE`]) changed offline: `data` holds both changes. Returns the
/// permit id.
fn permit_with_title_conflict(dir: &Path, data: &Path) -> String {
    let other = dir.join("other-tablet");
    cli(&other, &["--device", FIELD_DEVICE, "list"]);
    let created = cli(
        data,
        &[
            "--device",
            OFFICE_DEVICE,
            "--json",
            "permit",
            "create",
            "--title",
            "Replace pump seal",
            "--location",
            "Pump house 2",
            "--work-type",
            "mechanical",
        ],
    );
    let view: Value = serde_json::from_str(created.trim()).expect("create prints JSON");
    let id = view["id"].as_str().expect("the view has an id").to_string();
    carry(data, &other, &dir.join("1.bundle"));
    cli(data, &["permit", "set", &id, "--title", OFFICE_TITLE]);
    cli(&other, &["permit", "set", &id, "--title", FIELD_TITLE]);
    carry(&other, data, &dir.join("2.bundle"));
    id
}

/// The issuer who approves the permit, on a device enrolled with the node's
/// store (its tenant authority), and the device that writes with a note
/// naming another.
const ISSUER_DEVICE: &str = "tablet-3";
const ISSUER_PERSON: &str = "J. Smith";
const LIAR_DEVICE: &str = "tablet-2";
const CLAIMED_DEVICE: &str = "tablet-1";

/// A device store in `dir` enrolled with `authority` for `roles`.
fn enrolled(authority: &Store, dir: &Path, device: &str, person: &str, roles: &[Role]) -> Store {
    support::identity::enrolled(authority, dir, DEFAULT_TENANT, device, person, roles)
}

/// Carry permit `id` in a bundle (its changes, attestations, certificates).
fn carry_signed(from: &Store, to: &Store, id: EntityId) {
    let bytes = bundle::export(from, Some(&[id]), 0).expect("export");
    bundle::import(to, &bytes).expect("import");
}

/// Make the store in `data` its tenant's authority; an enrolled issuer
/// (tablet-3, J. Smith) submits and approves permit `id`, signed; tablet-2
/// then edits it with a note that claims tablet-1.
fn approve_signed(dir: &Path, data: &Path, id: &str) {
    let id: EntityId = id.parse().expect("an entity id");
    let node = Store::open(data).expect("open the node's store");
    node.ensure_authority().expect("authority");
    let issuer = enrolled(&node, dir, ISSUER_DEVICE, ISSUER_PERSON, &[Role::Issuer]);
    let liar = enrolled(&node, dir, LIAR_DEVICE, "A. Liar", &[Role::Performer]);
    carry_signed(&node, &issuer, id);
    for st in ["submitted", "approved"] {
        issuer
            .edit(id, Edit::SetStatus(st.into()))
            .expect("the issuer moves the permit");
    }
    carry_signed(&issuer, &liar, id);
    liar.acting_as(CLAIMED_DEVICE)
        .edit(
            id,
            Edit::SetField {
                field: "work_type".into(),
                value: "mechanical, drive end".into(),
            },
        )
        .expect("a write whose note claims another device");
    carry_signed(&liar, &node, id);
}

/// Serve the store in `data` on `127.0.0.1:0` with `tokens`.
fn start_node(data: &Path, tokens: &Path) -> NodeProcess {
    NodeProcess::options(data)
        .args(&["--tokens", tokens.to_str().expect("a UTF-8 path")])
        .log_level("info")
        .start()
}

/// The event stream, read with the shared JSON client.
impl Http {
    /// Open `GET /v1/events?token=...` (as a browser's EventSource does).
    fn events(&self, token: &str) -> Events<'_> {
        let url = format!("{}/v1/events?token={token}", self.base);
        let res = self
            .rt
            .block_on(self.client.get(&url).send())
            .expect("the node answers");
        assert_eq!(res.status().as_u16(), 200, "GET /v1/events");
        let ty = res.headers()[reqwest::header::CONTENT_TYPE].clone();
        assert_eq!(ty, "text/event-stream", "content type of /v1/events");
        Events {
            http: self,
            res,
            buf: String::new(),
        }
    }
}

/// One SSE event: its name and JSON data.
#[derive(Debug)]
struct SseEvent {
    name: String,
    data: Value,
}

/// An open event stream, read event by event.
struct Events<'a> {
    http: &'a Http,
    res: reqwest::Response,
    buf: String,
}

impl Events<'_> {
    /// The next event (comments and keep-alives skipped); panics after `EVENT_TIMEOUT`.
    fn next(&mut self) -> SseEvent {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment (keep-alive) or a bare `retry:`
                }
                let data = serde_json::from_str(&data).expect("event data is JSON");
                return SseEvent { name, data };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = self
                .http
                .rt
                .block_on(async { tokio::time::timeout(left, self.res.chunk()).await })
                .unwrap_or_else(|_| panic!("no event within {EVENT_TIMEOUT:?}; got {:?}", self.buf))
                .expect("read the stream")
                .expect("the stream stays open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Skip events until one named `name` matches `want`.
    fn until(&mut self, name: &str, want: impl Fn(&Value) -> bool) -> Value {
        loop {
            let e = self.next();
            if e.name == name && want(&e.data) {
                return e.data;
            }
        }
    }
}

#[test]
fn the_event_stream_needs_a_token_and_tells_only_the_tenant() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = tmp.path();
    let tokens = write_tokens(dir);
    let node = start_node(&dir.join("node"), &tokens);
    let http = Http::new(&node.base);

    // no token, or a wrong one: 401 with a JSON error
    let (status, body) = http.call(reqwest::Method::GET, "/v1/events", "", None);
    assert_eq!(status, 401, "{body}\n{}", node.log_tail());
    assert_eq!(body["error"], "unauthorized", "{body}");
    let (status, _) = http.call(reqwest::Method::GET, "/v1/events", "nope", None);
    assert_eq!(status, 401);

    let mut mine = http.events(TOKEN);
    let ready = mine.next();
    assert_eq!(ready.name, "ready");
    assert_eq!(
        ready.data,
        json!({"tenant": "default", "device": "supervisor"})
    );
    let mut theirs = http.events(TOKEN_OTHER);
    assert_eq!(theirs.next().name, "ready");

    // a REST write reaches the tenant's stream, with the entity's summary
    let view = http.send(
        reqwest::Method::POST,
        "/v1/entities",
        TOKEN,
        json!({"type": "permit", "title": "Hot work on tank T-3"}),
    );
    let id = view["id"].as_str().expect("an id").to_string();
    let change = mine.until("change", |d| d["id"] == id.as_str());
    assert_eq!(change["type"], "permit");
    assert_eq!(change["title"], "Hot work on tank T-3");
    assert_eq!(change["status"], "draft");
    http.send(
        reqwest::Method::PATCH,
        &format!("/v1/entities/{id}"),
        TOKEN,
        json!({"title": "Hot work on tank T-3, east side"}),
    );
    let change = mine.until("change", |d| d["id"] == id.as_str());
    assert_eq!(change["title"], "Hot work on tank T-3, east side");

    // the other tenant hears of its own write first: never of ours
    let other = http.send(
        reqwest::Method::POST,
        "/v1/entities",
        TOKEN_OTHER,
        json!({"type": "permit", "title": "Globex permit"}),
    );
    let first = theirs.next();
    assert_eq!(first.name, "change", "{first:?}");
    assert_eq!(first.data["id"], other["id"], "{first:?}");

    // a device's sync connection opening and closing reaches the stream
    let sync_url = node.sync_url_with_token(TOKEN_TABLET);
    cli(&dir.join("tablet"), &["sync", &sync_url, "--timeout", "30"]);
    let on = mine.until("device", |d| d["device"] == "tablet-7");
    assert_eq!(on["connected"], true, "{on}");
    let off = mine.until("device", |d| d["device"] == "tablet-7");
    assert_eq!(off["connected"], false, "{off}");
    let devices = http.get("/v1/devices", TOKEN);
    let tablet = devices["devices"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["device"] == "tablet-7"))
        .unwrap_or_else(|| panic!("tablet-7 in {devices}"));
    assert!(tablet["last_sync_ms"].as_i64() > Some(0), "{tablet}");
    assert_eq!(tablet["pending"], 0, "{tablet}");
}

// ---- the browser test -----------------------------------------------------

#[test]
fn a_supervisor_resolves_a_conflict_in_the_browser() {
    let root = repo_root();
    if !browser_ready(&root) {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = tmp.path();
    let data = dir.join("site-office");
    let id = permit_with_title_conflict(dir, &data);
    approve_signed(dir, &data, &id);
    let tokens = write_tokens(dir);
    let node = start_node(&data, &tokens);
    let http = Http::new(&node.base);

    // the view names the verified approver; history the verified author
    // and, apart, what a note claims
    let view = http.get(&format!("/v1/entities/{id}"), TOKEN);
    let approved = &view["authorship"]["approved_by"];
    assert_eq!(
        (
            &approved["device"],
            &approved["person"],
            &approved["verification"]
        ),
        (
            &json!(ISSUER_DEVICE),
            &json!(ISSUER_PERSON),
            &json!("signed")
        ),
        "{view}"
    );
    // written before the node became its tenant's authority: the node
    // vouched for it when it did (relay_attested, the note's device)
    assert_eq!(
        view["authorship"]["created_by"]["verification"],
        "relay_attested"
    );
    assert_eq!(view["authorship"]["created_by"]["device"], OFFICE_DEVICE);
    let history = http.get(&format!("/v1/entities/{id}/history"), TOKEN);
    let forged = history["entries"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["claimed_device"] == CLAIMED_DEVICE))
        .unwrap_or_else(|| panic!("the change that claims {CLAIMED_DEVICE}: {history}"));
    assert_eq!(forged["author"]["device"], LIAR_DEVICE, "{forged}");
    assert_eq!(forged["author"]["verification"], "signed", "{forged}");
    assert_eq!(
        forged["device"], CLAIMED_DEVICE,
        "the old field is kept: {forged}"
    );

    // what a supervisor would find on the permit: readings (one out of
    // range), an isolation point, a closeout, and other permits
    let permit = format!("/v1/entities/{id}");
    let post = |path: &str, body: Value| http.send(reqwest::Method::POST, path, TOKEN, body);
    http.send(
        reqwest::Method::PATCH,
        &permit,
        TOKEN,
        json!({"description": "Mechanical seal leaks at the drive end. Replace it and check alignment.",
               "ppe_add": ["safety glasses", "gloves", "hearing protection"]}),
    );
    let readings = format!("{permit}/gas-readings");
    post(
        &readings,
        json!({"gas": "O2", "value": 20.9, "unit": "%", "min": 19.5, "max": 23.5}),
    );
    post(
        &readings,
        json!({"gas": "H2S", "value": 12.5, "unit": "ppm", "min": 0, "max": 10}),
    );
    post(
        "/v1/entities",
        json!({"type": "isolation_point", "permit_id": id, "description": "Suction valve V-12",
               "lock_ids": ["L-104"]}),
    );
    post(
        "/v1/entities",
        json!({"type": "closeout", "permit_id": id, "checklist": ["tools removed", "guards refitted"]}),
    );
    for title in [
        "Hot work: weld bracket on tank T-3",
        "Confined space entry: vessel V-7",
    ] {
        post(
            "/v1/entities",
            json!({"type": "permit", "title": title, "location": "Tank farm"}),
        );
    }
    let before = http.get(&permit, TOKEN);
    let conflict = &before["conflicts"][0];
    assert_eq!(conflict["field"], "title", "{before}");

    let mut shots = SCREENSHOTS.to_vec();
    shots.push(FAILURE_SCREENSHOT);
    let artifacts = fresh_artifacts(&shots);
    let artifacts_arg = artifacts.to_str().expect("a UTF-8 path");
    // who wrote each version, as the conflict cards must say
    let authors = json!({ OFFICE_TITLE: OFFICE_DEVICE, FIELD_TITLE: FIELD_DEVICE }).to_string();
    // what the permit page, its printed sheet and its history must say
    let authorship = json!({
        "approved": format!("{ISSUER_PERSON} on {ISSUER_DEVICE}, signed"),
        "created": format!("{OFFICE_DEVICE}, attested by the relay"),
        "author": LIAR_DEVICE,
        "claimed": CLAIMED_DEVICE,
    })
    .to_string();
    let (code, stdout, stderr) = run_js(
        &root.join("tests/js/dashboard.mjs"),
        dir,
        &[&node.base, TOKEN, &id, artifacts_arg, &authors, &authorship],
        SCRIPT_TIMEOUT,
    );
    assert_eq!(
        code,
        Some(0),
        "tests/js/dashboard.mjs failed (screenshots in {})\n--- stdout ---\n{stdout}\n\
         --- stderr ---\n{stderr}\n{}",
        artifacts.display(),
        node.log_tail()
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let result: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("the script's last line is not JSON ({e}): {stdout}"));
    assert_eq!(result["ok"], true, "{result}");
    let chosen = result["chosen"].as_str().expect("the chosen title");
    let values = conflict["values"].as_array().expect("conflict values");
    assert!(values.iter().any(|v| v == chosen), "{chosen} in {conflict}");
    assert_ne!(
        conflict["winner"], chosen,
        "the script keeps the version not shown"
    );

    // on the node: the conflict is gone and the chosen title won
    let after = http.get(&permit, TOKEN);
    assert_eq!(after["conflicts"], json!([]), "{after}");
    assert_eq!(after["fields"]["title"], chosen, "{after}");
    assert_eq!(after["fields"]["location"], result["location"], "{after}");
    let open = http.get("/v1/conflicts?type=permit", TOKEN);
    assert!(
        open["entities"]
            .as_array()
            .is_some_and(|es| es.iter().all(|e| e["id"] != id.as_str())),
        "{open}"
    );
    assert_screenshots(&SCREENSHOTS);
}
