//! A site supervisor runs the site from the dashboard, in a real browser
//! (Debian's Chromium driven by `tests/js/dashboard-operate.mjs` through
//! `playwright-core`) against a real `permitsync serve` process:
//!
//! - more than a hundred permits, paged by the node (pages of 50) and
//!   searched over title, location, work type and description, filtered by
//!   status and "in alarm";
//! - alarms that appear without a reload when a tablet's offline changes
//!   merge in (an out-of-range H2S reading and an isolation point not
//!   verified on an active permit), named by gas and by description, and
//!   clear when the supervisor records an in-range reading (the gas form) and
//!   verifies the isolation point from the page;
//! - a workflow button refused by an interlock (the refusal names the
//!   isolation point), then accepted once the point is verified;
//! - a permit created from the form, then submitted;
//! - the printed permit (print media, screenshot);
//! - a read-only token, which sees no write buttons.
//!
//! Screenshots land in `target/test-artifacts/` (`operate-*.png`). Needs what
//! `tests/dashboard.rs` needs (Chromium, Node.js, `tests/js` installed).

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use browser::{assert_screenshots, browser_ready, fresh_artifacts, Http};
use reqwest::Method;
use serde_json::{json, Value};
use support::{cli, repo_root, run_js, NodeProcess, BIN};

const TOKEN: &str = "t-supervisor";
const TOKEN_TABLET: &str = "t-tablet";
const TOKEN_SCREEN: &str = "t-wall-screen";

/// How long the browser script may run (each of its own waits is bounded too).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Routine permits besides the three the scenario acts on.
const ROUTINE: usize = 110;

/// The screenshots the script takes on success.
const SCREENSHOTS: [&str; 8] = [
    "operate-overview.png",
    "operate-search.png",
    "operate-alarm.png",
    "operate-cleared.png",
    "operate-refusal.png",
    "operate-created.png",
    "operate-print.png",
    "operate-read-only.png",
];
/// The screenshot it takes when it fails.
const FAILURE_SCREENSHOT: &str = "operate-failure.png";

fn write_tokens(dir: &Path) -> PathBuf {
    let tokens = json!({"tokens": [
        {"token": TOKEN, "tenant": "default", "device": "supervisor", "mode": "read-write"},
        {"token": TOKEN_TABLET, "tenant": "default", "device": "tablet-7", "mode": "read-write"},
        {"token": TOKEN_SCREEN, "tenant": "default", "device": "wall-screen", "mode": "read-only"},
    ]});
    let path = dir.join("tokens.json");
    fs::write(&path, tokens.to_string()).expect("write tokens.json");
    path
}

/// The supervisor's REST calls.
struct Site<'a> {
    http: &'a Http,
}

impl Site<'_> {
    fn create(&self, body: Value) -> String {
        let v = self.http.send(Method::POST, "/v1/entities", TOKEN, body);
        v["id"].as_str().expect("an id").to_string()
    }

    fn patch(&self, id: &str, body: Value) -> Value {
        self.http
            .send(Method::PATCH, &format!("/v1/entities/{id}"), TOKEN, body)
    }

    fn reading(&self, id: &str, gas: &str, value: f64, unit: &str, min: f64, max: f64) {
        self.http.send(
            Method::POST,
            &format!("/v1/entities/{id}/gas-readings"),
            TOKEN,
            json!({"gas": gas, "value": value, "unit": unit, "min": min, "max": max}),
        );
    }

    /// An approved permit with a ticked checklist and an isolation point
    /// (verified when `verify`); returns (permit, isolation point).
    fn approved(&self, permit: Value, point: &str, verify: bool) -> (String, String) {
        let id = self.create(permit);
        let point = self.create(
            json!({"type": "isolation_point", "permit_id": id, "description": point, "lock_ids": ["L-7"]}),
        );
        if verify {
            for st in ["isolated", "verified"] {
                self.patch(&point, json!({"status": st}));
            }
        }
        let view = self.http.get(&format!("/v1/entities/{id}"), TOKEN);
        let items: serde_json::Map<String, Value> = view["fields"]["safety_checklist"]
            .as_object()
            .expect("a checklist")
            .keys()
            .map(|k| (k.clone(), Value::Bool(true)))
            .collect();
        self.patch(&id, json!({ "checklist": items }));
        for st in ["submitted", "approved"] {
            self.patch(&id, json!({ "status": st }));
        }
        (id, point)
    }
}

#[test]
fn a_supervisor_runs_the_site_from_the_dashboard() {
    let root = repo_root();
    if !browser_ready(&root) {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = tmp.path();
    let tokens = write_tokens(dir);
    let node = NodeProcess::options(&dir.join("site-office"))
        .args(&["--tokens", tokens.to_str().expect("a UTF-8 path")])
        .log_level("info")
        .start();
    let http = Http::new(&node.base);
    let site = Site { http: &http };

    // routine permits: a third in the tank farm, a tenth in the boiler house,
    // one whose description alone mentions a flange gasket
    let mut boiler = 0;
    for i in 0..ROUTINE {
        let location = if i % 10 == 0 {
            boiler += 1;
            "Boiler house"
        } else if i % 3 == 0 {
            "Tank farm"
        } else {
            "Pump house 2"
        };
        let description = if i == 42 {
            "Renew the cracked flange gasket on the condensate line"
        } else {
            "Routine inspection and minor repairs"
        };
        site.create(
            json!({"type": "permit", "title": format!("Routine inspection {i:03}"),
            "location": location, "work_type": "inspection", "description": description}),
        );
    }

    // the permit that goes into alarm: hot work, active, every rule met
    let (hot, _) = site.approved(
        json!({"type": "permit", "title": "Hot work: weld bracket on tank T-3", "location": "Tank farm",
               "work_type": "hot_work", "description": "Weld a support bracket; fire watch for 60 min after.",
               "ppe_requirements": ["welding helmet", "fire-resistant clothing"],
               "safety_checklist": ["Fire watch posted", "Combustibles removed"]}),
        "Main breaker MCC-4",
        true,
    );
    site.reading(&hot, "H2S", 2.0, "ppm", 0.0, 10.0);
    site.reading(&hot, "LEL", 0.0, "%LEL", 0.0, 10.0);
    site.patch(&hot, json!({"status": "active"}));

    // the permit whose activation the interlock refuses until its valve is verified
    let (seal, valve) = site.approved(
        json!({"type": "permit", "title": "Replace pump seal P-201", "location": "Pump house 2",
               "work_type": "mechanical", "description": "Mechanical seal leaks at the drive end.",
               "ppe_requirements": ["safety glasses", "gloves"],
               "safety_checklist": ["Pump drained", "Area barriered"]}),
        "Suction valve V-12",
        false,
    );

    // a tablet takes everything, then offline records an out-of-range H2S
    // reading and a new isolation point on the active hot work permit
    let tablet = dir.join("tablet");
    let sync_url = node.sync_url_with_token(TOKEN_TABLET);
    cli(
        &tablet,
        &["--device", "tablet-7", "sync", &sync_url, "--timeout", "60"],
    );
    cli(
        &tablet,
        &[
            "permit", "gas", &hot, "--gas", "H2S", "--value", "25", "--unit", "ppm", "--min", "0",
            "--max", "10",
        ],
    );
    cli(
        &tablet,
        &[
            "isolation",
            "create",
            "--permit",
            &hot,
            "--description",
            "Standby pump breaker",
        ],
    );
    let alarms = http.get("/v1/alarms", TOKEN);
    assert_eq!(alarms["alarms"], 0, "no alarm before the merge: {alarms}");

    let plan = json!({
        "total": ROUTINE + 2,
        "alarm_permit": hot,
        "interlock_permit": seal,
        "interlock_point": "Suction valve V-12",
        "searches": [
            {"q": "flange", "count": 1, "title": "Routine inspection 042"},
            {"q": "boiler house", "count": boiler},
            {"q": "hot_work", "count": 1, "title": "Hot work: weld bracket on tank T-3"},
        ],
        "cli": BIN,
        "tablet": tablet,
        "sync_url": sync_url,
    });
    let mut shots = SCREENSHOTS.to_vec();
    shots.push(FAILURE_SCREENSHOT);
    let artifacts = fresh_artifacts(&shots);
    let (code, stdout, stderr) = run_js(
        &root.join("tests/js/dashboard-operate.mjs"),
        dir,
        &[
            &node.base,
            TOKEN,
            TOKEN_SCREEN,
            artifacts.to_str().expect("a UTF-8 path"),
            &plan.to_string(),
        ],
        SCRIPT_TIMEOUT,
    );
    assert_eq!(
        code,
        Some(0),
        "tests/js/dashboard-operate.mjs failed (screenshots in {})\n--- stdout ---\n{stdout}\n\
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

    // on the node: the alarms are gone, resolved from the page
    let alarms = http.get("/v1/alarms", TOKEN);
    assert_eq!(alarms, json!({"permits": [], "alarms": 0}));
    let view = http.get(&format!("/v1/entities/{hot}"), TOKEN);
    assert_eq!(view["violations"], json!([]), "{view}");
    let readings = view["fields"]["gas_readings"]
        .as_object()
        .expect("readings");
    let by_supervisor: Vec<&Value> = readings
        .values()
        .filter(|r| r["gas"] == "H2S" && r["value"] == 3.0 && r["taken_by"] == "supervisor")
        .collect();
    assert_eq!(
        by_supervisor.len(),
        1,
        "the reading entered in the page: {view}"
    );
    assert_eq!(by_supervisor[0]["unit"], "ppm");
    // the interlocked permit is active, its valve verified from the page
    let view = http.get(&format!("/v1/entities/{seal}"), TOKEN);
    assert_eq!(view["fields"]["status"], "active", "{view}");
    let valve = http.get(&format!("/v1/entities/{valve}"), TOKEN);
    assert_eq!(valve["fields"]["status"], "verified", "{valve}");
    // the permit made with the form, as typed, then submitted
    let created = result["created"].as_str().expect("the created permit's id");
    let view = http.get(&format!("/v1/entities/{created}"), TOKEN);
    let f = &view["fields"];
    assert_eq!(
        f["title"], "Excavate cable trench by substation S-2",
        "{view}"
    );
    assert_eq!(f["location"], "Substation S-2");
    assert_eq!(f["work_type"], "excavation");
    assert_eq!(f["status"], "submitted");
    assert_eq!(f["created_by"], "supervisor");
    let ppe: Vec<&str> = f["ppe_requirements"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for item in ["hard hat", "safety boots", "ear defenders"] {
        assert!(ppe.contains(&item), "{item} in {ppe:?}");
    }
    let checklist = f["safety_checklist"].as_object().expect("a checklist");
    assert_eq!(
        checklist.keys().collect::<Vec<_>>(),
        ["Cable locator sweep done", "Spoil heap 1 m from edge"]
    );
    // the read-only screen wrote nothing
    let history = http.get(&format!("/v1/entities/{seal}/history"), TOKEN);
    assert!(
        history["entries"]
            .as_array()
            .is_some_and(|es| es.iter().all(|e| e["device"] != "wall-screen")),
        "{history}"
    );
    assert_screenshots(&SCREENSHOTS);
}
