//! The REST API's OpenAPI document against a real node: `GET
//! /v1/openapi.json` is served without a token and is the document the code
//! generates, and schemathesis (PyPI, installed by `scripts/test.sh`) runs
//! property-based requests against a real `permitsync serve` with a token,
//! checking that no answer is a 5xx, that every status is one the document
//! lists, and that bodies match their documented schemas and media types.
//!
//! The run is short by default (a few examples per operation, well under a
//! minute); `PERMITSYNC_API_FUZZ=long` runs many more examples and the
//! stateful phase (operations chained by the document's links).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::NodeProcess;

const TOKEN: &str = "schema-test-secret-0123456789";
const TOKENS: &str = r#"{"tokens": [
  {"token": "schema-test-secret-0123456789", "tenant": "acme", "device": "fuzzer", "mode": "read-write"}
]}"#;

/// The node under test, with a token and no request-rate limit worth the
/// name (schemathesis sends requests as fast as the node answers).
fn start_node(dir: &Path) -> NodeProcess {
    let tokens = dir.join("tokens.json");
    std::fs::write(&tokens, TOKENS).expect("tokens file");
    NodeProcess::start(
        &dir.join("node"),
        &[
            "--tokens",
            tokens.to_str().expect("utf-8 path"),
            "--max-requests-per-second",
            "1000000",
        ],
    )
}

#[tokio::test]
async fn the_document_is_served_without_a_token_and_is_the_generated_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start_node(dir.path());
    let url = format!("{}/v1/openapi.json", node.base);
    let response = reqwest::get(&url).await.expect("GET /v1/openapi.json");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert_eq!(content_type, "application/json");
    let served: serde_json::Value = response.json().await.expect("JSON");
    let generated = permitsync::node::openapi();
    assert_eq!(served, generated);
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served["info"]["version"], env!("CARGO_PKG_VERSION"));
    // a route that needs a token says so, and the node means it
    let status = &served["paths"]["/v1/status"]["get"]["responses"];
    assert!(status.get("401").is_some(), "{status}");
    let anonymous = reqwest::get(format!("{}/v1/status", node.base))
        .await
        .expect("GET /v1/status");
    assert_eq!(anonymous.status(), 401);
}

/// The schemathesis executable: `SCHEMATHESIS`, or `schemathesis` on `PATH`.
fn schemathesis() -> PathBuf {
    let program = std::env::var_os("SCHEMATHESIS")
        .map_or_else(|| PathBuf::from("schemathesis"), PathBuf::from);
    match Command::new(&program).arg("--version").output() {
        Ok(out) if out.status.success() => program,
        _ => panic!(
            "schemathesis is not installed ({}): run ./scripts/install-schemathesis.sh \
             (scripts/test.sh does) or set SCHEMATHESIS to its path",
            program.display()
        ),
    }
}

#[test]
fn schemathesis_finds_no_server_error_and_no_undocumented_status() {
    let program = schemathesis();
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start_node(dir.path());
    let long = std::env::var("PERMITSYNC_API_FUZZ").is_ok_and(|v| v == "long");
    let (examples, phases) = if long {
        ("400", "examples,coverage,fuzzing,stateful")
    } else {
        ("15", "examples,coverage,fuzzing")
    };
    let report = dir.path().join("report");
    let output = Command::new(program)
        .args([
            "run",
            &format!("{}/v1/openapi.json", node.base),
            "--header",
            &format!("Authorization: Bearer {TOKEN}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
            // an endless event stream: described, but not something to fuzz
            "--exclude-path",
            "/v1/events",
            "--max-examples",
            examples,
            "--phases",
            phases,
            "--request-timeout",
            "30",
            "--seed",
            &std::env::var("PERMITSYNC_API_FUZZ_SEED").unwrap_or_else(|_| "20261207".into()),
            "--report",
            "junit",
            "--report-dir",
            report.to_str().expect("utf-8 path"),
        ])
        .env("NO_COLOR", "1")
        // it keeps a cache in the working directory
        .current_dir(dir.path())
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}\n{}",
        node.log_tail()
    );
    // it did test: every operation but the event stream, with cases generated
    let tested = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert!(
        tested.is_some_and(|n| n >= 20),
        "too few operations tested:\n{stdout}"
    );
    assert!(stdout.contains(" generated, "), "no test cases:\n{stdout}");
    assert!(
        !node.logs().contains("internal error"),
        "the node logged an internal error:\n{}",
        node.log_tail()
    );
}
