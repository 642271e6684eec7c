//! Photo blobs against real node processes: upload checks, deduplication,
//! tenant isolation, and a photo taken on one device reaching another
//! through the relay.

mod support;

use std::path::Path;
use std::time::Duration;

use permitsync::sync::extension;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{eventually, NodeProcess};

/// A tiny "JPEG": the format's magic number, then `len` bytes (the node
/// accepts only bytes that show a photo type).
fn photo_bytes(seed: u8, len: usize) -> Vec<u8> {
    let body = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed);
    [0xFF, 0xD8, 0xFF, 0xE0].into_iter().chain(body).collect()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn put(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    sha: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let mut r = http
        .put(format!("{base}/v1/blobs/{sha}"))
        .header("content-type", "image/jpeg")
        .body(bytes);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let res = r.send().await.expect("PUT");
    let status = res.status();
    (status, res.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_are_checked_deduplicated_and_kept_per_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens.json");
    std::fs::write(
        &tokens,
        json!({"tokens": [
            {"token": "acme", "tenant": "acme", "device": "tab-1", "mode": "read-write"},
            {"token": "globex", "tenant": "globex", "device": "tab-9", "mode": "read-write"},
        ]})
        .to_string(),
    )
    .expect("tokens");
    let node = NodeProcess::start(
        &dir.path().join("node"),
        &[
            "--tokens",
            tokens.to_str().expect("path"),
            "--max-blob-bytes",
            "4096",
        ],
    );
    let http = reqwest::Client::new();
    let base = node.base.as_str();
    let bytes = photo_bytes(1, 3000);
    let hash = sha(&bytes);

    // wrong hash, too large, malformed hash, no token: refused, nothing stored
    let (s, v) = put(&http, base, Some("acme"), &sha(b"other"), bytes.clone()).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("hash_mismatch")),
        "{v}"
    );
    let big = photo_bytes(2, 5000);
    let (s, v) = put(&http, base, Some("acme"), &sha(&big), big).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("blob_too_large")),
        "{v}"
    );
    let (s, v) = put(&http, base, Some("acme"), "not-a-hash", bytes.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = put(&http, base, None, &hash, bytes.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let get = |token: &'static str, hash: String| {
        let http = http.clone();
        let url = format!("{base}/v1/blobs/{hash}");
        async move { http.get(url).bearer_auth(token).send().await.expect("GET") }
    };
    assert_eq!(
        get("acme", hash.clone()).await.status(),
        StatusCode::NOT_FOUND
    );

    // stored once; a second upload is deduplicated
    let (s, v) = put(&http, base, Some("acme"), &hash, bytes.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["created"], true);
    let (s, v) = put(
        &http,
        base,
        Some("acme"),
        &hash.to_uppercase(),
        bytes.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["created"], false);
    let res = get("acme", hash.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.bytes().await.expect("bytes").to_vec(), bytes);
    // another tenant can't read it by guessing the hash
    assert_eq!(
        get("globex", hash.clone()).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_taken_on_one_device_reaches_another() {
    let dir = tempfile::tempdir().expect("temp dir");
    let relay = NodeProcess::start(&dir.path().join("relay"), &[]);
    let a = NodeProcess::start(
        &dir.path().join("a"),
        &["--device", "tablet-a", "--connect", &relay.sync_url()],
    );
    let b = NodeProcess::start(
        &dir.path().join("b"),
        &["--device", "tablet-b", "--connect", &relay.sync_url()],
    );
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/v1/entities", a.base))
        .json(&json!({"type": "permit", "title": "Flange weld"}))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), StatusCode::CREATED);
    let permit: Value = res.json().await.expect("view");
    let id = permit["id"].as_str().expect("id").to_string();

    // the photo on tablet A: its bytes, then its metadata on the permit
    let bytes = photo_bytes(7, 200_000);
    let hash = sha(&bytes);
    let (s, v) = put(&http, &a.base, None, &hash, bytes.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let res = http
        .post(format!("{}/v1/entities/{id}/photos", a.base))
        .json(
            &json!({"sha256": hash, "mime": "image/jpeg", "size": bytes.len(),
                      "caption": "before welding"}),
        )
        .send()
        .await
        .expect("photo");
    assert_eq!(res.status(), StatusCode::CREATED);

    // tablet B gets the permit through the relay, then the photo's bytes
    for node in [&relay, &b] {
        let url = format!("{}/v1/blobs/{hash}", node.base);
        let got = eventually(Duration::from_secs(60), "the photo's bytes", || {
            let (http, url) = (&http, url.clone());
            async move {
                let res = http.get(url).send().await.ok()?;
                if res.status() != StatusCode::OK {
                    return None;
                }
                Some(res.bytes().await.ok()?.to_vec())
            }
        })
        .await;
        assert_eq!(got, bytes, "{}", node.base);
    }
    let view: Value = http
        .get(format!("{}/v1/entities/{id}", b.base))
        .send()
        .await
        .expect("view")
        .json()
        .await
        .expect("JSON");
    let photos = view["fields"]["photos"].as_object().expect("photos");
    assert_eq!(photos.len(), 1);
    assert_eq!(
        photos.values().next().expect("photo")["sha256"],
        hash.as_str()
    );
}

/// How many `permitsync-blob` messages (a blob, or "missing") the node has
/// sent so far, from its debug log (see [`logging_blob_replies`]).
fn blob_replies_sent(node: &NodeProcess) -> usize {
    let kind = format!("kind=\"{}\"", extension::BLOB);
    node.logs()
        .lines()
        .filter(|l| l.contains(" send ") && l.contains(&kind))
        .count()
}

/// A node whose log shows every message it sends (`permitsync::node::connection`
/// at debug level, without colours): the test reads the blob replies there.
fn logging_blob_replies(data: &Path) -> NodeProcess {
    NodeProcess::options(data)
        .env("RUST_LOG", "warn,permitsync::node::connection=debug")
        .env("NO_COLOR", "1")
        .start()
}

/// Wait until `node` has sent more than `seen` blob replies; how many.
async fn blob_replies_after(node: &NodeProcess, seen: usize, what: &str) -> usize {
    eventually(Duration::from_secs(30), what, || {
        let sent = blob_replies_sent(node);
        async move { (sent > seen).then_some(sent) }
    })
    .await
}

/// A device asks the relay for a photo the relay lacks too: the relay says so,
/// and sends it as soon as it arrives there. A photo still missing when the
/// device stops is asked for again when it comes back.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_photo_arrives_later_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let relay = logging_blob_replies(&dir.path().join("relay"));
    let mut device = NodeProcess::start(
        &dir.path().join("device"),
        &["--device", "tablet", "--connect", &relay.sync_url()],
    );
    let http = reqwest::Client::new();
    // a permit on the relay whose photo's bytes nobody has uploaded yet
    let permit_with_photo = |bytes: Vec<u8>| {
        let (http, base) = (http.clone(), relay.base.clone());
        async move {
            let res = http
                .post(format!("{base}/v1/entities"))
                .json(&json!({"type": "permit", "title": "Valve swap"}))
                .send()
                .await
                .expect("create");
            let id = res.json::<Value>().await.expect("view")["id"]
                .as_str()
                .expect("id")
                .to_string();
            let res = http
                .post(format!("{base}/v1/entities/{id}/photos"))
                .json(&json!({"sha256": sha(&bytes), "mime": "image/jpeg", "size": bytes.len()}))
                .send()
                .await
                .expect("photo");
            assert_eq!(res.status(), StatusCode::CREATED);
            id
        }
    };
    let has_permit = |node: &NodeProcess, id: String| {
        let (http, url) = (http.clone(), format!("{}/v1/entities/{id}", node.base));
        async move {
            let res = http.get(url).send().await.ok()?;
            (res.status() == StatusCode::OK).then_some(())
        }
    };
    let blob_on = |node: &NodeProcess, hash: String| {
        let (http, url) = (http.clone(), format!("{}/v1/blobs/{hash}", node.base));
        async move {
            let res = http.get(url).send().await.ok()?;
            if res.status() != StatusCode::OK {
                return None;
            }
            Some(res.bytes().await.ok()?.to_vec())
        }
    };

    // 1. the device has the permit, asked for the photo, and got "missing"
    let first = photo_bytes(3, 50_000);
    let id = permit_with_photo(first.clone()).await;
    eventually(Duration::from_secs(30), "the permit on the device", || {
        has_permit(&device, id.clone())
    })
    .await;
    // the device asked; the relay has no blob at all yet, so it said "missing"
    blob_replies_after(&relay, 0, "the relay's \"missing\" for the photo").await;
    assert!(blob_on(&device, sha(&first)).await.is_none());
    // the bytes reach the relay: it sends them on to the waiting device
    let (s, v) = put(&http, &relay.base, None, &sha(&first), first.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let got = eventually(
        Duration::from_secs(30),
        "the late photo on the device",
        || blob_on(&device, sha(&first)),
    )
    .await;
    assert_eq!(got, first);
    // the relay logs a reply before it sends it: this counts the photo too
    let replies = blob_replies_sent(&relay);

    // 2. a second photo is still missing when the device is killed
    let second = photo_bytes(4, 40_000);
    let id = permit_with_photo(second.clone()).await;
    eventually(
        Duration::from_secs(30),
        "the second permit on the device",
        || has_permit(&device, id.clone()),
    )
    .await;
    // the device asked (and noted the photo as wanted before asking)
    blob_replies_after(
        &relay,
        replies,
        "the relay's \"missing\" for the second photo",
    )
    .await;
    device.sigkill();
    let (s, v) = put(&http, &relay.base, None, &sha(&second), second.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // back up: its wanted list asks the relay again
    device.restart();
    let got = eventually(
        Duration::from_secs(30),
        "the photo after the restart",
        || blob_on(&device, sha(&second)),
    )
    .await;
    assert_eq!(got, second);
}
