//! A supervisor adds a permit's isolation point and closeout from the
//! dashboard, in a real browser (Debian's Chromium driven by
//! `tests/js/dashboard-children.mjs` through `playwright-core`) against a
//! real `permitsync serve` process: the isolation point made with the form
//! (an empty one refused in the page), isolated and verified with its
//! buttons, the permit activated and completed; the closeout started with the
//! form, its checks ticked and the closeout completed on the page; a
//! read-only token sees no form. On the node afterwards: the point and the
//! closeout as typed, written by the supervisor's device, and the permit can
//! be closed (the closeout interlock is met).
//!
//! Screenshots land in `target/test-artifacts/` (`children-*.png`). Needs what
//! `tests/dashboard.rs` needs (Chromium, Node.js, `tests/js` installed).

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::fs;
use std::time::Duration;

use browser::{assert_screenshots, browser_ready, fresh_artifacts, Http};
use reqwest::Method;
use serde_json::{json, Value};
use support::{repo_root, run_js, NodeProcess};

const TOKEN: &str = "t-supervisor";
const TOKEN_SCREEN: &str = "t-wall-screen";
const SCREENSHOTS: [&str; 2] = ["children-isolation.png", "children-closeout.png"];
const FAILURE_SCREENSHOT: &str = "children-failure.png";

#[test]
fn a_supervisor_adds_isolation_points_and_the_closeout_from_the_dashboard() {
    let root = repo_root();
    if !browser_ready(&root) {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = tmp.path();
    let tokens = json!({"tokens": [
        {"token": TOKEN, "tenant": "default", "device": "supervisor", "mode": "read-write"},
        {"token": TOKEN_SCREEN, "tenant": "default", "device": "wall-screen", "mode": "read-only"},
    ]});
    let tokens_file = dir.join("tokens.json");
    fs::write(&tokens_file, tokens.to_string()).expect("tokens");
    let node = NodeProcess::start(
        &dir.join("node"),
        &["--tokens", tokens_file.to_str().expect("a UTF-8 path")],
    );
    let http = Http::new(&node.base);
    let permit = http.send(
        Method::POST,
        "/v1/entities",
        TOKEN,
        json!({"type": "permit", "title": "Realign pump P-4 coupling", "location": "Pump house 2",
               "safety_checklist": ["Area barriered"]}),
    );
    let id = permit["id"].as_str().expect("an id").to_string();
    // the activation guard's checklist is met; the isolation interlock is
    // what the page's isolation point must satisfy
    http.send(
        Method::PATCH,
        &format!("/v1/entities/{id}"),
        TOKEN,
        json!({"checklist": {"Area barriered": true}}),
    );
    for st in ["submitted", "approved"] {
        http.send(
            Method::PATCH,
            &format!("/v1/entities/{id}"),
            TOKEN,
            json!({"status": st}),
        );
    }

    let mut shots = SCREENSHOTS.to_vec();
    shots.push(FAILURE_SCREENSHOT);
    let artifacts = fresh_artifacts(&shots);
    let (code, stdout, stderr) = run_js(
        &root.join("tests/js/dashboard-children.mjs"),
        dir,
        &[
            &node.base,
            TOKEN,
            TOKEN_SCREEN,
            artifacts.to_str().expect("a UTF-8 path"),
            &id,
        ],
        Duration::from_secs(180),
    );
    assert_eq!(
        code,
        Some(0),
        "tests/js/dashboard-children.mjs failed (screenshots in {})\n--- stdout ---\n{stdout}\n\
         --- stderr ---\n{stderr}\n{}",
        artifacts.display(),
        node.log_tail()
    );

    // on the node: what the page wrote, as typed, by the supervisor
    let listed = http.get("/v1/entities?type=isolation_point", TOKEN);
    let points: Vec<&Value> = listed["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .filter(|s| s["permit_id"] == id.as_str())
        .collect();
    assert_eq!(points.len(), 1, "{listed}");
    let point = http.get(
        &format!("/v1/entities/{}", points[0]["id"].as_str().expect("id")),
        TOKEN,
    );
    let f = &point["fields"];
    assert_eq!(f["description"], "Gearbox coupling guard", "{point}");
    assert_eq!(f["status"], "verified");
    assert_eq!(f["created_by"], "supervisor");
    let mut locks: Vec<&str> = f["lock_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    locks.sort();
    assert_eq!(locks, ["LOCK-21", "LOCK-22"], "{point}");

    let listed = http.get("/v1/entities?type=closeout", TOKEN);
    let closeouts: Vec<&Value> = listed["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .filter(|s| s["permit_id"] == id.as_str())
        .collect();
    assert_eq!(closeouts.len(), 1, "{listed}");
    assert_eq!(closeouts[0]["completed"], true, "{listed}");
    let closeout = http.get(
        &format!("/v1/entities/{}", closeouts[0]["id"].as_str().expect("id")),
        TOKEN,
    );
    let f = &closeout["fields"];
    assert_eq!(
        f["checklist"],
        json!({"Area swept clear": true, "Guard refitted": true}),
        "{closeout}"
    );
    assert_eq!(f["notes"], "Coupling aligned, run test 10 min OK");

    // the permit went active -> completed from the page; the closeout made
    // there lets it close
    let view = http.get(&format!("/v1/entities/{id}"), TOKEN);
    assert_eq!(view["fields"]["status"], "completed", "{view}");
    let closed = http.send(
        Method::PATCH,
        &format!("/v1/entities/{id}"),
        TOKEN,
        json!({"status": "closed"}),
    );
    assert_eq!(closed["fields"]["status"], "closed", "{closed}");
    assert_screenshots(&SCREENSHOTS);
}
