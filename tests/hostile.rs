//! Hostile clients against a real `permitsync serve` process on 127.0.0.1:
//! each test runs one attack of issue 11 and asserts the node is defended.
//!
//! - photo blobs are inert: HTML and SVG refused, served blobs carry headers
//!   that keep a browser from running them;
//! - silent WebSocket upgrades are closed by the join timeout, and the
//!   per-token connection limit holds under concurrent joins and a flood of
//!   read-only upgrades;
//! - slowloris against a node with a low open-file limit: `/healthz` keeps
//!   answering;
//! - failed logins are throttled per address, valid tokens are not;
//! - a removed device is refused at once and after a restart; the tokens
//!   file is reloaded on change and on `SIGHUP`.

mod hostile_support;
mod support;

use std::time::Duration;

use futures_util::SinkExt;
use hostile_support::{eventually, join, until_closed, upgrade, write_tokens, Relay, Ws, PNG};
use permitsync::wire::Message;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

const RW: &str = "read-write";
const RO: &str = "read-only";

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A node with tokens for tenant acme (`a`, `b` read-write, `ro` read-only).
fn relay(dir: &std::path::Path, args: &[&str]) -> Relay {
    let tokens = dir.join("tokens.json");
    write_tokens(
        &tokens,
        &[
            ("a", "acme", "tab-a", RW),
            ("b", "acme", "tab-b", RW),
            ("ro", "acme", "wall", RO),
        ],
    );
    let mut all = vec!["--tokens", tokens.to_str().expect("utf-8")];
    all.extend_from_slice(args);
    Relay::start(&dir.join("node"), &all)
}

// ---- hole 1: blobs are inert ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_and_svg_blobs_are_refused_and_photos_are_served_inert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = relay(dir.path(), &[]);
    let http = http();
    let put = |bytes: &'static [u8], claimed: &'static str| {
        let url = format!("{}/v1/blobs/{}", node.base, sha(bytes));
        let req = http
            .put(url)
            .bearer_auth("a")
            .header("content-type", claimed);
        async move { req.body(bytes).send().await.expect("PUT") }
    };
    let html: &[u8] = b"<!doctype html><script>fetch('/v1/entities')</script>";
    let svg: &[u8] = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>";
    for (bytes, claimed) in [
        (html, "text/html"),
        (svg, "image/svg+xml"),
        // a lie about the type changes nothing: the bytes decide
        (html, "image/jpeg"),
        (svg, "image/png"),
    ] {
        let res = put(bytes, claimed).await;
        assert_eq!(
            res.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{claimed}"
        );
        let body: serde_json::Value = res.json().await.expect("JSON error");
        assert_eq!(body["error"], "unsupported_media_type", "{body}");
        assert!(
            body["detail"].as_str().unwrap_or("").contains("image/jpeg"),
            "{body}"
        );
        // nothing stored
        let got = http
            .get(format!("{}/v1/blobs/{}", node.base, sha(bytes)))
            .bearer_auth("a")
            .send()
            .await
            .expect("GET");
        assert_eq!(got.status(), StatusCode::NOT_FOUND);
    }

    // a real photo, claimed as something else: stored and served as what it is
    let res = put(PNG, "text/html").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(body["mime"], "image/png", "{body}");
    let res = http
        .get(format!("{}/v1/blobs/{}", node.base, sha(PNG)))
        .bearer_auth("a")
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox");
    let disposition = h["content-disposition"].to_str().expect("ascii");
    assert!(disposition.starts_with("inline"), "{disposition}");
    assert_eq!(res.bytes().await.expect("bytes").as_ref(), PNG);
}

// ---- hole 3: connections are a budget ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_upgrades_are_closed_by_the_join_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = relay(
        dir.path(),
        &[
            "--join-timeout-secs",
            "2",
            "--max-connections-per-token",
            "16",
            "--max-requests-per-second",
            "0",
        ],
    );
    // 40 upgrades that never send `join`
    let mut open: Vec<Ws> = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        match upgrade(&node.sync_url("a")).await {
            Ok(ws) => open.push(ws),
            Err(status) => {
                assert_eq!(status, 429, "refused with too_many_connections");
                refused += 1;
            }
        }
    }
    // counted from the upgrade: the token's limit holds before any join
    assert_eq!((open.len(), refused), (16, 24));
    for ws in &mut open {
        let seen = until_closed(ws, Duration::from_secs(30)).await;
        assert!(
            seen.iter()
                .any(|m| matches!(m, Message::Error { message } if message.contains("no join"))),
            "told why before the close: {seen:?}"
        );
    }
    // the slots came back: a device that joins is served
    let mut ws = eventually(Duration::from_secs(10), "a free slot", || async {
        upgrade(&node.sync_url("a")).await.ok()
    })
    .await;
    assert!(matches!(
        join(&mut ws, "tablet").await,
        Message::Peer { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_token_limit_holds_under_concurrent_joins_and_floods() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = relay(
        dir.path(),
        &[
            "--max-connections-per-token",
            "16",
            "--max-requests-per-second",
            "0",
        ],
    );
    // 100 joins at once with one token: exactly 16 are served
    let mut tasks = Vec::new();
    for i in 0..100 {
        let url = node.sync_url("a");
        tasks.push(tokio::spawn(async move {
            match upgrade(&url).await {
                Ok(mut ws) => match join(&mut ws, &format!("peer-{i}")).await {
                    Message::Peer { .. } => Ok(ws),
                    other => panic!("join answered {other:?}"),
                },
                Err(status) => Err(status),
            }
        }));
    }
    let mut joined = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(ws) => joined.push(ws),
            Err(429) => refused += 1,
            Err(other) => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((joined.len(), refused), (16, 84));

    // 1,000 upgrades with a read-only token: at most 16 held, the rest refused
    let fds_before = node.open_fds();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..1000 {
        match upgrade(&node.sync_url("ro")).await {
            Ok(ws) => held.push(ws),
            Err(status) => {
                assert_eq!(status, 429);
                refused += 1;
            }
        }
    }
    assert_eq!((held.len(), refused), (16, 984));
    // the refused upgrades hold nothing
    let fds_after = node.open_fds();
    assert!(
        fds_after < fds_before + 100,
        "descriptors {fds_before} -> {fds_after}"
    );
    // the read-write token's joined connections are untouched
    let mut first = joined.pop().expect("a joined connection");
    drop(joined);
    first
        .send(tokio_tungstenite::tungstenite::Message::Ping(
            b"x".to_vec().into(),
        ))
        .await
        .expect("still open");
}

// ---- hole 4: slowloris ---------------------------------------------------

/// What one `GET /healthz` on a fresh connection got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// An HTTP answer with this status.
    Answered(u16),
    /// The node refused the connection at once (closed or reset it unanswered).
    Refused,
    /// Nothing within the timeout: what slowloris did to `/healthz` before.
    TimedOut,
}

async fn healthz(addr: &str, timeout: Duration) -> Probe {
    use tokio::io::AsyncReadExt;
    let probe = async {
        let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
            return Probe::Refused;
        };
        let request = b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
        if s.write_all(request).await.is_err() {
            return Probe::Refused;
        }
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        // until the node closes (or resets) the connection
        while let Ok(n @ 1..) = s.read(&mut chunk).await {
            buf.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&buf);
        match text.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            Some(status) => Probe::Answered(status),
            None => Probe::Refused,
        }
    };
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or(Probe::TimedOut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_against_a_low_open_file_limit_leaves_healthz_answering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.json");
    write_tokens(&tokens, &[("a", "acme", "tab-a", RW)]);
    let mut node = Relay::start_with(
        &dir.path().join("node"),
        &[
            "--tokens",
            tokens.to_str().expect("utf-8"),
            "--header-read-timeout-secs",
            "3",
        ],
        Some(256),
        "warn",
    );
    let addr = node.addr().to_string();
    assert_eq!(
        healthz(&addr, Duration::from_secs(5)).await,
        Probe::Answered(200)
    );

    // 1,100 connections that send one header line a second and never finish
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut attackers = Vec::new();
    for _ in 0..1100 {
        let (addr, mut stop) = (addr.clone(), stop_rx.clone());
        attackers.push(tokio::spawn(async move {
            let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
                return;
            };
            if s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.is_err() {
                return;
            }
            for _ in 0..60 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => return,
                }
                if s.write_all(b"x-slow: 1\r\n").await.is_err() {
                    return; // the node closed it
                }
            }
        }));
    }
    // while the attack runs, /healthz never hangs: it is answered (200, or a
    // clean 503 while every slot is taken) or refused at once, and it is
    // served (200) before the attack ends
    let mut probes = Vec::new();
    for _ in 0..15 {
        let probe = healthz(&addr, Duration::from_secs(5)).await;
        assert!(
            matches!(probe, Probe::Answered(200 | 503) | Probe::Refused),
            "/healthz during the attack: {probe:?}; fds {}",
            node.open_fds()
        );
        probes.push(probe);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(probes.contains(&Probe::Answered(200)), "{probes:?}");
    assert!(node.open_fds() < 256, "descriptors {}", node.open_fds());
    assert!(node.alive());
    let _ = stop_tx.send(true);
    for a in attackers {
        let _ = a.await;
    }
    assert_eq!(
        healthz(&addr, Duration::from_secs(5)).await,
        Probe::Answered(200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_idle_connections_and_dead_peers_are_cut() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = relay(
        dir.path(),
        &[
            "--body-read-timeout-secs",
            "2",
            "--idle-timeout-secs",
            "2",
            "--ping-interval-secs",
            "1",
        ],
    );
    let addr = node.addr().to_string();
    // a body that stops arriving: 408, and the connection is not held
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "PUT /v1/blobs/{} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer a\r\n\
         content-length: 1000\r\n\r\n",
        sha(PNG)
    );
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(&PNG[..10]).await.expect("some of the body");
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut answer))
        .await
        .expect("an answer to the stalled body")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");

    // a kept-alive connection with no further request is closed
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("request");
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.expect("answer");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let closed = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
        .await
        .expect("the idle connection closed in time");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");

    // a peer that joined, then stopped answering (never reads, so never pongs)
    let http = http();
    let peers = |http: reqwest::Client| live_peers(http, format!("{}/v1/status", node.base));
    let mut ws = upgrade(&node.sync_url("a")).await.expect("upgrade");
    assert!(matches!(
        join(&mut ws, "sleepy").await,
        Message::Peer { .. }
    ));
    assert_eq!(peers(http.clone()).await, 1);
    eventually(
        Duration::from_secs(30),
        "the dead peer to be dropped",
        || {
            let http = http.clone();
            async move { (peers(http).await == 0).then_some(()) }
        },
    )
    .await;
    drop(ws);
}

/// How many sync peers the node at `status_url` lists (asked with token `b`).
async fn live_peers(http: reqwest::Client, status_url: String) -> usize {
    let v: serde_json::Value = http
        .get(status_url)
        .bearer_auth("b")
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("JSON");
    v["peers"].as_array().map_or(0, Vec::len)
}

// ---- hole 5: failed logins -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_per_address_and_valid_tokens_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = relay(dir.path(), &["--max-auth-failures-per-minute", "20"]);
    let http = http();
    let url = format!("{}/v1/status", node.base);
    let mut unauthorized = 0;
    let mut throttled = None;
    for i in 0..2000 {
        let res = http
            .get(&url)
            .bearer_auth(format!("guess-{i}"))
            .send()
            .await
            .expect("GET");
        match res.status() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let retry = res.headers()["retry-after"]
                    .to_str()
                    .expect("ascii")
                    .to_string();
                let body: serde_json::Value = res.json().await.expect("JSON");
                throttled = Some((retry, body));
                break;
            }
            other => panic!("a wrong token got {other}"),
        }
    }
    let (retry, body) = throttled.expect("throttled before 2,000 guesses");
    // the budget (a burst of 20, refilled one every 3 s), then 429
    assert!(
        (20..40).contains(&unauthorized),
        "{unauthorized} failures before 429"
    );
    assert_eq!(body["error"], "auth_throttled", "{body}");
    assert!(
        retry.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s)),
        "{retry}"
    );
    // the same address with a valid token: not slowed
    for _ in 0..50 {
        let res = http.get(&url).bearer_auth("a").send().await.expect("GET");
        assert_eq!(res.status(), StatusCode::OK);
    }
    // and a wrong one is still throttled
    let res = http
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

// ---- hole 6: revocation --------------------------------------------------

async fn status_of(http: &reqwest::Client, base: &str, token: &str) -> StatusCode {
    http.get(format!("{base}/v1/status"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /v1/status")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_device_is_refused_at_once_and_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = relay(dir.path(), &[]);
    let http = http();
    // tab-b is known to the node and has a live sync connection; so does tab-a
    let mut b_ws = upgrade(&node.sync_url("b")).await.expect("upgrade");
    assert!(matches!(join(&mut b_ws, "b").await, Message::Peer { .. }));
    let mut a_ws = upgrade(&node.sync_url("a")).await.expect("upgrade");
    assert!(matches!(join(&mut a_ws, "a").await, Message::Peer { .. }));
    // and a spare upgrade of tab-b, not joined yet
    let mut spare = upgrade(&node.sync_url("b")).await.expect("spare upgrade");

    let res = http
        .delete(format!("{}/v1/devices/tab-b", node.base))
        .bearer_auth("a")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(res.status(), StatusCode::OK);
    // at once: REST, a new sync connection, and the live one
    let res = http
        .get(format!("{}/v1/entities", node.base))
        .bearer_auth("b")
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(body["error"], "device_blocked", "{body}");
    assert_eq!(upgrade(&node.sync_url("b")).await.err(), Some(403));
    until_closed(&mut b_ws, Duration::from_secs(10)).await;
    // the spare upgrade joins after the removal: refused and closed
    let answer = join(&mut spare, "b").await;
    assert!(
        matches!(&answer, Message::Error { message } if message == "device removed"),
        "{answer:?}"
    );
    until_closed(&mut spare, Duration::from_secs(10)).await;
    // tab-a is untouched
    a_ws.send(tokio_tungstenite::tungstenite::Message::Ping(
        b"x".to_vec().into(),
    ))
    .await
    .expect("tab-a still connected");
    assert!(
        a_ws_is_open(&mut a_ws).await,
        "tab-a's connection was closed"
    );
    assert_eq!(status_of(&http, &node.base, "a").await, StatusCode::OK);

    // after a restart, still blocked
    node.restart();
    assert_eq!(
        status_of(&http, &node.base, "b").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(upgrade(&node.sync_url("b")).await.err(), Some(403));
    // until re-enabled
    let res = http
        .post(format!("{}/v1/devices/tab-b/enable", node.base))
        .bearer_auth("a")
        .send()
        .await
        .expect("POST enable");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(status_of(&http, &node.base, "b").await, StatusCode::OK);
    let mut ws = upgrade(&node.sync_url("b")).await.expect("upgrade again");
    assert!(matches!(join(&mut ws, "b").await, Message::Peer { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokens_file_is_reloaded_on_change_and_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.json");
    write_tokens(
        &tokens,
        &[("a", "acme", "tab-a", RW), ("b", "acme", "tab-b", RW)],
    );
    let node = Relay::start_with(
        &dir.path().join("node"),
        &["--tokens", tokens.to_str().expect("utf-8")],
        None,
        "info",
    );
    let http = http();
    let mut a_ws = upgrade(&node.sync_url("a")).await.expect("upgrade");
    assert!(matches!(join(&mut a_ws, "a").await, Message::Peer { .. }));
    let mut b_ws = upgrade(&node.sync_url("b")).await.expect("upgrade");
    assert!(matches!(join(&mut b_ws, "b").await, Message::Peer { .. }));
    assert_eq!(
        status_of(&http, &node.base, "c1").await,
        StatusCode::UNAUTHORIZED
    );

    // the file changes: b removed, c1 added
    write_tokens(
        &tokens,
        &[("a", "acme", "tab-a", RW), ("c1", "acme", "tab-c", RW)],
    );
    eventually(Duration::from_secs(20), "the new token to work", || async {
        (status_of(&http, &node.base, "c1").await == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(
        status_of(&http, &node.base, "b").await,
        StatusCode::UNAUTHORIZED
    );
    // b's live connection is closed; a's is not
    until_closed(&mut b_ws, Duration::from_secs(10)).await;
    a_ws.send(tokio_tungstenite::tungstenite::Message::Ping(
        b"x".to_vec().into(),
    ))
    .await
    .expect("tab-a still connected");
    assert!(
        a_ws_is_open(&mut a_ws).await,
        "tab-a's connection was dropped"
    );

    // tab-c syncs with c1; then c1 is rotated to c2 (a stolen token replaced)
    let mut c_ws = upgrade(&node.sync_url("c1")).await.expect("upgrade c1");
    assert!(matches!(join(&mut c_ws, "c").await, Message::Peer { .. }));

    // SIGHUP: a change the poll cannot see (same size, same modification time)
    let stamp = std::fs::metadata(&tokens)
        .and_then(|m| m.modified())
        .expect("mtime");
    write_tokens(
        &tokens,
        &[("a", "acme", "tab-a", RW), ("c2", "acme", "tab-c", RW)],
    );
    std::fs::File::options()
        .write(true)
        .open(&tokens)
        .and_then(|f| f.set_modified(stamp))
        .expect("restore mtime");
    node.sighup();
    eventually(
        Duration::from_secs(20),
        "SIGHUP to reload the tokens",
        || async { (status_of(&http, &node.base, "c2").await == StatusCode::OK).then_some(()) },
    )
    .await;
    assert_eq!(
        status_of(&http, &node.base, "c1").await,
        StatusCode::UNAUTHORIZED
    );
    // the connection opened with the rotated token does not outlive it
    until_closed(&mut c_ws, Duration::from_secs(10)).await;
    assert!(node.logs().contains("SIGHUP"), "{}", node.logs());
    assert_eq!(status_of(&http, &node.base, "a").await, StatusCode::OK);
}

/// Whether the node still answers on `ws` (a pong to a ping, within 5 s).
async fn a_ws_is_open(ws: &mut Ws) -> bool {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Pong(_)))) => return true,
            Ok(Some(Ok(_))) => continue,
            _ => return false,
        }
    }
}

/// The idle timeout cuts idle connections only: a live event stream (the
/// dashboard's) and its connection stay open past it, and still deliver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_outlives_the_idle_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = relay(
        dir.path(),
        &[
            "--idle-timeout-secs",
            "1",
            "--header-read-timeout-secs",
            "1",
        ],
    );
    let http = http();
    let mut stream = http
        .get(format!("{}/v1/events", node.base))
        .bearer_auth("a")
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status().as_u16(), 200);
    // three idle timeouts pass with nothing to say
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = http
        .post(format!("{}/v1/entities", node.base))
        .bearer_auth("b")
        .json(&serde_json::json!({"type": "permit", "title": "Seen live"}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(chunk)) = stream.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(&id) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the stream ended or stayed silent: {seen}");
}

// ---- a peer that stops reading ---------------------------------------------

/// A joined peer floods `request`s (each answered) and never reads: once its
/// buffers are full the relay cannot send, and must close the connection
/// within `--send-timeout-secs` instead of holding its task for ever (pings
/// cannot help: the connection's task is the one stuck in the send).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_is_closed_by_the_send_timeout() {
    use automerge::sync::{State, SyncDoc};
    use permitsync::wire::{self, DocumentId, PeerId};
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    let dir = tempfile::tempdir().expect("tempdir");
    let node = relay(
        dir.path(),
        &["--send-timeout-secs", "2", "--ping-interval-secs", "600"],
    );
    let http = http();
    let peers = || live_peers(http.clone(), format!("{}/v1/status", node.base));

    // a client socket with a small receive buffer, so it fills quickly
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket
        .connect(node.addr().parse().expect("addr"))
        .await
        .expect("connect");
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut ws, _) = tokio_tungstenite::client_async(node.sync_url("a"), stream)
        .await
        .expect("upgrade");
    assert!(matches!(join(&mut ws, "deaf").await, Message::Peer { .. }));
    assert_eq!(peers().await, 1);

    // requests for documents the relay does not have: each is answered
    // (`doc-unavailable`), none is ever read
    let empty = automerge::Automerge::new()
        .generate_sync_message(&mut State::new())
        .expect("a first sync message")
        .encode();
    let mut sent = 0u32;
    loop {
        let request = Message::Request {
            sender_id: PeerId::new("deaf"),
            target_id: PeerId::new("relay"),
            document_id: DocumentId::from(uuid::Uuid::new_v4()),
            data: empty.clone(),
        };
        let frame = WsMessage::Binary(wire::encode(&request).into());
        match tokio::time::timeout(Duration::from_secs(2), ws.send(frame)).await {
            Ok(Ok(())) => sent += 1,
            // the relay stopped reading (it is stuck sending), or closed
            Ok(Err(_)) | Err(_) => break,
        }
        assert!(sent < 2_000_000, "the relay never stopped taking requests");
    }
    assert!(sent > 100, "only {sent} requests went out");

    eventually(
        Duration::from_secs(30),
        "the relay to drop the peer that stopped reading",
        || async { (peers().await == 0).then_some(()) },
    )
    .await;
    // and keeps serving others
    let mut other = upgrade(&node.sync_url("a")).await.expect("upgrade");
    assert!(matches!(
        join(&mut other, "awake").await,
        Message::Peer { .. }
    ));
    drop(ws);
}

// ---- one address holding the connection budget ------------------------------

/// Connections from one address beyond `--max-connections-per-address` are
/// refused at once (`503`), without a token or a request; a slot comes back
/// when one of them closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = relay(dir.path(), &["--max-connections-per-address", "4"]);
    let addr = node.addr().to_string();
    // four connections that send nothing hold the address's share
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }
    let get_healthz = || async {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let _ = s
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    // a fifth is refused, even for /healthz
    let answer = get_healthz().await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    // one closes: its slot comes back
    drop(held.pop());
    eventually(
        Duration::from_secs(10),
        "a slot to come back when a connection closes",
        || async {
            get_healthz()
                .await
                .starts_with("HTTP/1.1 200")
                .then_some(())
        },
    )
    .await;
    drop(held);
}
