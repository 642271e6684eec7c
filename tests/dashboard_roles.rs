//! The workflow buttons follow the token's roles, in a real browser (Debian's
//! Chromium driven by `tests/js/dashboard-roles.mjs` through
//! `playwright-core`) against a real `permitsync serve` with a tokens file
//! that gives one tablet the role `performer` and another `issuer` (DESIGN.md,
//! "Who may do what"). The node says each token's roles and allowed moves in
//! `GET /v1/status`; the performer submits a permit from the page and never
//! sees "Approve" or "Cancel"; the issuer sees and presses "Approve"; the
//! performer's open page then offers no move at all. The node agrees: the
//! performer's own attempt to cancel is refused (`not_authorized`), and the
//! view names the performer's device as submitter and the issuer's as
//! approver.
//!
//! Screenshots land in `target/test-artifacts/` (`roles-*.png`). Needs what
//! `tests/dashboard.rs` needs (Chromium, Node.js, `tests/js` installed).

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::fs;
use std::time::Duration;

use browser::{assert_screenshots, browser_ready, fresh_artifacts, Http};
use reqwest::Method;
use serde_json::json;
use support::{repo_root, run_js, NodeProcess};

const PERFORMER: &str = "t-performer";
const ISSUER: &str = "t-issuer";
const SCREENSHOTS: [&str; 3] = [
    "roles-performer.png",
    "roles-issuer.png",
    "roles-performer-after.png",
];
const FAILURE_SCREENSHOT: &str = "roles-failure.png";

#[test]
fn the_dashboard_offers_only_the_moves_the_tokens_roles_allow() {
    let root = repo_root();
    if !browser_ready(&root) {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = tmp.path();
    let tokens = json!({"tokens": [
        {"token": PERFORMER, "tenant": "default", "device": "tablet-p", "mode": "read-write",
         "roles": ["performer"], "person": "P. Jones"},
        {"token": ISSUER, "tenant": "default", "device": "tablet-i", "mode": "read-write",
         "roles": ["issuer"], "person": "J. Smith"},
    ]});
    let tokens_file = dir.join("tokens.json");
    fs::write(&tokens_file, tokens.to_string()).expect("tokens");
    let node = NodeProcess::start(
        &dir.join("node"),
        &["--tokens", tokens_file.to_str().expect("a UTF-8 path")],
    );
    let http = Http::new(&node.base);

    // what the node tells each token it may do
    let access = &http.get("/v1/status", PERFORMER)["access"];
    assert_eq!(access["roles"], json!(["performer"]), "{access}");
    assert_eq!(access["person"], "P. Jones");
    assert_eq!(
        access["transitions"]["submitted"],
        json!(["draft"]),
        "{access}"
    );
    assert_eq!(access["transitions"]["approved"], json!([]), "{access}");
    let access = &http.get("/v1/status", ISSUER)["access"];
    assert_eq!(
        access["transitions"]["submitted"],
        json!(["draft", "approved", "cancelled"]),
        "{access}"
    );

    let permit = http.send(
        Method::POST,
        "/v1/entities",
        PERFORMER,
        json!({"type": "permit", "title": "Replace flange gasket F-12", "location": "Tank farm"}),
    );
    let id = permit["id"].as_str().expect("an id").to_string();

    let mut shots = SCREENSHOTS.to_vec();
    shots.push(FAILURE_SCREENSHOT);
    let artifacts = fresh_artifacts(&shots);
    let (code, stdout, stderr) = run_js(
        &root.join("tests/js/dashboard-roles.mjs"),
        dir,
        &[
            &node.base,
            PERFORMER,
            ISSUER,
            artifacts.to_str().expect("a UTF-8 path"),
            &id,
        ],
        Duration::from_secs(180),
    );
    assert_eq!(
        code,
        Some(0),
        "tests/js/dashboard-roles.mjs failed (screenshots in {})\n--- stdout ---\n{stdout}\n\
         --- stderr ---\n{stderr}\n{}",
        artifacts.display(),
        node.log_tail()
    );

    // the node enforces what the page hid: the performer may not cancel
    let (status, refused) = http.call(
        Method::PATCH,
        &format!("/v1/entities/{id}"),
        PERFORMER,
        Some(json!({"status": "cancelled"})),
    );
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["reason"], "not_authorized", "{refused}");
    let view = http.get(&format!("/v1/entities/{id}"), ISSUER);
    assert_eq!(view["fields"]["status"], "approved", "{view}");
    // (written through REST: the node attests each for its token's device
    // and the person the token names)
    let who = |key: &str| {
        let a = &view["authorship"][key];
        (
            a["device"].clone(),
            a["person"].clone(),
            a["verification"].clone(),
        )
    };
    let attested = json!("relay_attested");
    assert_eq!(
        who("submitted_by"),
        (json!("tablet-p"), json!("P. Jones"), attested.clone()),
        "{view}"
    );
    assert_eq!(
        who("approved_by"),
        (json!("tablet-i"), json!("J. Smith"), attested),
        "{view}"
    );
    assert_screenshots(&SCREENSHOTS);
}
