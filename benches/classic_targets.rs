//! The targets classic offline-sync engines set themselves (issue 5): sync
//! 100 operations under 2 s, detect a conflict under 500 ms, resolve one
//! under 100 ms, order 500 dependent operations under 1 s. permitsync aims
//! at 100x better on each. Run with `cargo bench --bench classic_targets`
//! (release build, a real `permitsync serve` on a temp sled store; every
//! write durable). `CLASSIC_RUNS` sets the repetitions (default 20).
//!
//! 1. sync 100 operations: one `POST /api/v1/ptw/sync-offline-data/` of 100
//!    updates over 10 permits, answered once all 100 are durable;
//! 2. detect a conflict: one stale update, answered `stale_version`;
//! 3. resolve one: `POST /v1/entities/{id}/resolve` of a title conflict
//!    (made by two stores editing offline, merged before the node starts);
//! 4. order 500 dependent operations: 500 changes, each depending on the one
//!    before, handed to a fresh sled store in reverse order in one call
//!    (`Store::apply_changes` orders them causally, applies and flushes).
//!
//! Prints a Markdown table, then one `RESULT` line per target (median in ms
//! against the classic target / 100, `met=yes|no`; see
//! `loadkit::result_line`), for scripts that compare runs.

use std::time::{Duration, Instant};

mod loadkit;

use loadkit::{result_line, start_relay, Goal};
use permitsync::store::{Store, StoreOptions};
use permitsync::write::{Edit, NewPermit};
use serde_json::{json, Value};

fn runs() -> usize {
    std::env::var("CLASSIC_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// What permitsync aims at: this many times better than each classic target.
const AIM: f64 = 100.0;

/// Print a target's Markdown row, and keep its `RESULT` line (see
/// `loadkit::result_line`) in `results` for the end.
fn summary(
    key: &str,
    name: &str,
    classic: Duration,
    mut samples: Vec<Duration>,
    results: &mut Vec<String>,
) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p90 = samples[(samples.len() * 9 / 10).min(samples.len() - 1)];
    let ratio = classic.as_secs_f64() / median.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {name} | {:.2} ms | {:.2} ms | {classic:?} | {ratio:.0}x |",
        ms(median),
        ms(p90),
    );
    results.push(result_line(
        &format!("classic.{key}"),
        Some(ms(median)),
        "ms",
        Goal::Below,
        ms(classic) / AIM,
        &[
            ("stat", "median".into()),
            ("p90_ms", format!("{:.3}", ms(p90))),
            ("runs", samples.len().to_string()),
            ("classic_ms", format!("{}", ms(classic))),
            ("better_by", format!("{ratio:.1}x")),
        ],
    ));
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> Value {
    let res = http.post(url).json(&body).send().await.expect("POST");
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.expect("JSON")
}

/// Title conflicts on `n` permits, made by two stores offline; returns ids.
fn conflicts(a: &std::path::Path, n: usize) -> Vec<String> {
    let dir_b = tempfile::tempdir().expect("b");
    let sa = Store::open(a).expect("a");
    let sb = Store::open_with(dir_b.path(), StoreOptions::default()).expect("b");
    (0..n)
        .map(|i| {
            let id = sa
                .create_permit(NewPermit {
                    title: format!("permit {i}"),
                    ..Default::default()
                })
                .expect("permit");
            sb.apply_changes(id, sa.changes_since(id, &[]).expect("changes"))
                .expect("copy");
            for (s, t) in [(&sa, "from a"), (&sb, "from b")] {
                s.edit(
                    id,
                    Edit::SetField {
                        field: "title".into(),
                        value: t.into(),
                    },
                )
                .expect("edit");
            }
            sa.apply_changes(id, sb.changes_since(id, &[]).expect("b"))
                .expect("merge");
            id.to_string()
        })
        .collect()
}

fn order_500(runs: usize) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let (src_dir, dst_dir) = (
                tempfile::tempdir().expect("src"),
                tempfile::tempdir().expect("dst"),
            );
            let src = Store::open(src_dir.path()).expect("src");
            let id = src
                .create_permit(NewPermit {
                    title: "t0".into(),
                    ..Default::default()
                })
                .expect("permit");
            for i in 1..500 {
                src.edit(
                    id,
                    Edit::SetField {
                        field: "title".into(),
                        value: format!("t{i}"),
                    },
                )
                .expect("edit");
            }
            let mut changes = src.changes_since(id, &[]).expect("changes");
            assert_eq!(changes.len(), 500);
            changes.reverse();
            let dst = Store::open(dst_dir.path()).expect("dst");
            let t = Instant::now();
            dst.apply_changes(id, changes).expect("apply");
            let took = t.elapsed();
            assert_eq!(dst.view(id).expect("view").str_field("title"), Some("t499"));
            took
        })
        .collect()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` builds benches; only `cargo bench` runs them
    }
    let runs = runs();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("node");
    let conflicted = conflicts(&data, runs);
    let relay = start_relay(&data);
    let base = format!("http://{}", relay.addr);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let http = reqwest::Client::new();
    let sync_url = format!("{}/api/v1/ptw/sync-offline-data/", base);
    println!("| target | median | p90 | classic target | better by |");
    println!("|---|---|---|---|---|");
    let mut figures = Vec::new();
    rt.block_on(async {
        // ten permits, created by the classic client
        let creates: Vec<Value> = (0..10)
            .map(|i| {
                json!({"entity": "permit", "op": "create", "offline_id": format!("c{i}"),
                            "data": {"title": format!("permit {i}")}})
            })
            .collect();
        let r = post(
            &http,
            sync_url.clone(),
            json!({"device_id": "bench", "changes": creates}),
        )
        .await;
        let mut permits: Vec<(String, u64)> = r["applied"]
            .as_array()
            .expect("applied")
            .iter()
            .map(|a| {
                (
                    a["server_id"].as_str().expect("id").to_string(),
                    a["new_version"].as_u64().expect("v"),
                )
            })
            .collect();
        let mut samples = Vec::new();
        for run in 0..runs {
            let changes: Vec<Value> = (0..100)
                .map(|i| {
                    let (id, v) = &permits[i % 10];
                    json!({"entity": "permit", "op": "update", "offline_id": format!("u{run}-{i}"),
                           "server_id": id, "client_version": v,
                           "data": {"location": format!("bay {run}-{i}")}})
                })
                .collect();
            let t = Instant::now();
            let r = post(
                &http,
                sync_url.clone(),
                json!({"device_id": "bench", "changes": changes}),
            )
            .await;
            samples.push(t.elapsed());
            assert_eq!(r["summary"]["applied"], 100, "{r}");
            // the client's next round starts from the versions it was given
            for a in r["applied"].as_array().expect("applied") {
                let id = a["server_id"].as_str().expect("id");
                if let Some(p) = permits.iter_mut().find(|(pid, _)| pid == id) {
                    p.1 = a["new_version"].as_u64().expect("v");
                }
            }
        }
        summary(
            "sync_100_ops",
            "sync 100 operations (one classic batch, durable)",
            Duration::from_secs(2),
            samples,
            &mut figures,
        );

        // a supervisor edits a title; the classic client's stale edit is a conflict
        let (id, v) = permits[0].clone();
        let res = http
            .patch(format!("{}/v1/entities/{id}", base))
            .json(&json!({"title": "changed by the supervisor"}))
            .send()
            .await
            .expect("patch");
        assert!(res.status().is_success());
        let mut samples = Vec::new();
        for run in 0..runs {
            let change = json!({"entity": "permit", "op": "update", "offline_id": format!("x{run}"),
                                "server_id": id, "client_version": v,
                                "data": {"title": format!("stale {run}")}});
            let t = Instant::now();
            let r = post(
                &http,
                sync_url.clone(),
                json!({"device_id": "bench", "changes": [change]}),
            )
            .await;
            samples.push(t.elapsed());
            assert_eq!(r["summary"]["conflicts"], 1, "{r}");
        }
        summary(
            "detect_conflict",
            "detect a conflict (stale update answered)",
            Duration::from_millis(500),
            samples,
            &mut figures,
        );

        let mut samples = Vec::new();
        for id in &conflicted {
            let t = Instant::now();
            let r = post(
                &http,
                format!("{}/v1/entities/{id}/resolve", base),
                json!({"field": "title", "resolution": "merge", "value": "from a and b"}),
            )
            .await;
            samples.push(t.elapsed());
            assert_eq!(r["conflicts"], json!([]), "{r}");
        }
        summary(
            "resolve_conflict",
            "resolve one conflict (durable write)",
            Duration::from_millis(100),
            samples,
            &mut figures,
        );
    });
    summary(
        "order_500_ops",
        "order 500 dependent operations (reverse order, one apply, durable)",
        Duration::from_secs(1),
        order_500(runs.min(10)),
        &mut figures,
    );
    // one line per target, against 1/100 of the classic target: what a
    // script compares from run to run
    println!();
    for line in &figures {
        println!("{line}");
    }
}
