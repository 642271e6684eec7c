//! TLS between real processes, with a CA and certificates made at test time:
//! `permitsync serve --tls-cert --tls-key` serves HTTPS and WSS; a device
//! trusts its private CA with `--ca-cert` (`sync wss://...` and
//! `serve --connect wss://...`); a client without that CA, or with another
//! one, is refused with a certificate error and syncs nothing; plain HTTP on
//! the TLS port gets a clear `400`; a client that stalls in the handshake is
//! closed after the header read timeout.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use permitsync::node::ClientTls;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use support::{eventually, run_cli, NodeProcess, BIN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKENS: &str = r#"{"tokens": [
  {"token": "relay-secret", "tenant": "acme", "device": "tablet-1", "mode": "read-write"}
]}"#;
const TOKEN: &str = "relay-secret";

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost, as
/// PEM files in `dir`: `NAME-ca.pem`, `NAME-cert.pem`, `NAME-key.pem`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path, name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let pki = Pki {
        ca: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&pki.ca, ca.pem()).expect("write CA");
    std::fs::write(&pki.cert, cert.pem()).expect("write cert");
    std::fs::write(&pki.key, key.serialize_pem()).expect("write key");
    pki
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// A `permitsync serve` over TLS (tests/support's `NodeProcess` expects
/// `http://`), killed on drop.
struct TlsNode {
    child: Child,
    /// `127.0.0.1:PORT`
    addr: String,
    log: PathBuf,
}

impl TlsNode {
    /// `permitsync --data DATA serve --listen 127.0.0.1:0 ARGS...` with `env`,
    /// once it prints `listening on https://...`.
    fn start(data: &Path, args: &[&str], env: &[(&str, &str)]) -> TlsNode {
        let log = data.with_extension("log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("PERMITSYNC_DATA")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("warn".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn permitsync serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.trim().strip_prefix("listening on https://") {
                        break addr.to_string();
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "no `listening on https://` line ({e}); log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        TlsNode { child, addr, log }
    }

    fn https(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn wss(&self) -> String {
        format!("wss://{}/v1/sync?token={TOKEN}", self.addr)
    }

    fn port(&self) -> u16 {
        let (_, port) = self.addr.rsplit_once(':').expect("host:port");
        port.parse().expect("a port")
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn sighup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP failed");
    }
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over `tls` (or plain TCP): status and body.
async fn request(
    tls: &ClientTls,
    port: u16,
    secure: bool,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let mut stream = tls.open("127.0.0.1", port, secure).await?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw).await;
    if raw.is_empty() {
        return Err(format!("no answer: {read:?}"));
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // chunked or not: the JSON is between the first `{` and the last `}`
    let start = rest.find('{').unwrap_or(0);
    let end = rest.rfind('}').map_or(rest.len(), |e| e + 1);
    Ok((status, rest[start..end].to_string()))
}

fn trusting(ca: &Path) -> ClientTls {
    ClientTls::new(Some(ca)).expect("load the CA")
}

/// Titles of the relay's permits, over HTTPS.
async fn titles(relay: &TlsNode, ca: &Path) -> Vec<String> {
    let (status, body) = request(
        &trusting(ca),
        relay.port(),
        true,
        "GET",
        "/v1/entities?type=permit",
        None,
    )
    .await
    .expect("GET /v1/entities over HTTPS");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let items = v["entities"].as_array().cloned();
    items
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["title"].as_str().map(String::from))
        .collect()
}

fn relay_with_tokens(dir: &Path, pki: &Pki) -> TlsNode {
    let tokens = dir.join("tokens.json");
    std::fs::write(&tokens, TOKENS).expect("tokens file");
    TlsNode::start(
        &dir.join("relay"),
        &[
            "--tokens",
            s(&tokens),
            "--tls-cert",
            s(&pki.cert),
            "--tls-key",
            s(&pki.key),
        ],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_sync_over_wss_with_a_private_ca_and_rest_answers_over_https() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path(), "site");
    let relay = relay_with_tokens(dir.path(), &pki);

    // REST over HTTPS: health, readiness, a write
    let tls = trusting(&pki.ca);
    let port = relay.port();
    let (status, body) = request(&tls, port, true, "GET", "/healthz", None)
        .await
        .expect("GET /healthz");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = request(&tls, port, true, "GET", "/readyz", None)
        .await
        .expect("GET /readyz");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    let permit = r#"{"type": "permit", "title": "Relay permit", "location": "Bay 1"}"#;
    let (status, body) = request(&tls, port, true, "POST", "/v1/entities", Some(permit))
        .await
        .expect("POST /v1/entities");
    assert_eq!(status, 201, "{body}");

    // `permitsync sync wss://... --ca-cert`: the device pushes its permit and
    // pulls the relay's
    let device = dir.path().join("device");
    let out = run_cli(&device, &["permit", "create", "--title", "Device permit"]);
    assert!(out.status.success(), "{out:?}");
    let out = run_cli(&device, &["sync", &relay.wss(), "--ca-cert", s(&pki.ca)]);
    assert!(
        out.status.success(),
        "sync over wss: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        relay.logs()
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("in sync with wss://"));
    let mut got = titles(&relay, &pki.ca).await;
    got.sort();
    assert_eq!(got, ["Device permit", "Relay permit"]);
    let out = run_cli(&device, &["--json", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("Relay permit"), "{listed}");

    // `permitsync status --url https://... --ca-cert`
    let out = run_cli(
        &device,
        &[
            "status",
            "--url",
            &relay.https(),
            "--token",
            TOKEN,
            "--ca-cert",
            s(&pki.ca),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("documents 2"),
        "{out:?}"
    );

    // `permitsync serve --connect wss://... --ca-cert`: a live device node
    // gets the relay's next permit
    let mut node = NodeProcess::start(
        &dir.path().join("live-device"),
        &["--connect", &relay.wss(), "--ca-cert", s(&pki.ca)],
    );
    let live = r#"{"type": "permit", "title": "Pushed live"}"#;
    let (status, _) = request(&tls, port, true, "POST", "/v1/entities", Some(live))
        .await
        .expect("POST");
    assert_eq!(status, 201);
    let url = format!("{}/v1/entities?type=permit", node.base);
    eventually(Duration::from_secs(30), "the live device's permits", || {
        let url = url.clone();
        async move {
            let body = reqwest::get(&url).await.ok()?.text().await.ok()?;
            (body.contains("Pushed live") && body.contains("Device permit")).then_some(())
        }
    })
    .await;
    assert!(node.alive(), "{}", node.log_tail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_ca_or_with_another_ca_is_refused_and_syncs_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path(), "site");
    let other = make_pki(dir.path(), "other");
    let relay = relay_with_tokens(dir.path(), &pki);
    let device = dir.path().join("device");
    let out = run_cli(&device, &["permit", "create", "--title", "Must not leak"]);
    assert!(out.status.success(), "{out:?}");

    for extra in [vec![], vec!["--ca-cert", s(&other.ca)]] {
        let mut args = vec!["sync", "--timeout", "20"];
        let wss = relay.wss();
        args.push(&wss);
        args.extend(extra.iter().copied());
        let out = run_cli(&device, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("TLS handshake with 127.0.0.1 failed: certificate error")
                && stderr.contains("UnknownIssuer")
                && stderr.contains("--ca-cert"),
            "{args:?}: {stderr}"
        );
        // the token in the URL is not shown
        assert!(!stderr.contains(TOKEN), "{stderr}");
    }
    let out = run_cli(
        &device,
        &["status", "--url", &relay.https(), "--token", TOKEN],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("certificate error"), "{stderr}");

    // a node dialing without the CA keeps failing and pushes nothing
    let mut node = NodeProcess::options(&dir.path().join("dialer"))
        .args(&["--connect", &relay.wss()])
        .log_level("warn,permitsync=info")
        .start();
    let log = eventually(Duration::from_secs(20), "a refused dial", || {
        let log = node.logs();
        async move { log.contains("UnknownIssuer").then_some(log) }
    })
    .await;
    assert!(log.contains("certificate error"), "{log}");
    assert!(node.alive());

    assert!(titles(&relay, &pki.ca).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_tls_port_fails_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path(), "site");
    let relay = relay_with_tokens(dir.path(), &pki);
    let plain = ClientTls::from_roots(rustls::RootCertStore::empty());

    let (status, body) = request(&plain, relay.port(), false, "GET", "/healthz", None)
        .await
        .expect("an answer");
    assert_eq!(status, 400, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["error"], "tls_required");

    let device = dir.path().join("device");
    let ws = format!("ws://{}/v1/sync?token={TOKEN}", relay.addr);
    let out = run_cli(&device, &["sync", "--timeout", "20", &ws]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("400"), "{stderr}");

    let http = format!("http://{}", relay.addr);
    let out = run_cli(&device, &["status", "--url", &http, "--token", TOKEN]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("400") && stderr.contains("https://"),
        "{stderr}"
    );

    // and the TLS side still works
    let (status, _) = request(
        &trusting(&pki.ca),
        relay.port(),
        true,
        "GET",
        "/healthz",
        None,
    )
    .await
    .expect("HTTPS after plain HTTP");
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_in_the_handshake_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path(), "site");
    let relay = TlsNode::start(
        &dir.path().join("relay"),
        &["--header-read-timeout-secs", "1"],
        &[
            ("PERMITSYNC_TLS_CERT", s(&pki.cert)),
            ("PERMITSYNC_TLS_KEY", s(&pki.key)),
        ],
    );
    // a TLS record header promising a ClientHello that never comes, and a
    // silent connection
    let mut stalled = tokio::net::TcpStream::connect(&relay.addr)
        .await
        .expect("connect");
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .expect("write");
    let mut silent = tokio::net::TcpStream::connect(&relay.addr)
        .await
        .expect("connect");
    let started = Instant::now();
    for (name, conn) in [("stalled", &mut stalled), ("silent", &mut silent)] {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the {name} connection is closed: {read:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // while a complete handshake still works
    let (status, _) = request(
        &trusting(&pki.ca),
        relay.port(),
        true,
        "GET",
        "/healthz",
        None,
    )
    .await
    .expect("HTTPS");
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_to_a_plain_node_says_the_port_does_not_speak_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = NodeProcess::start(&dir.path().join("plain"), &[]);
    let wss = format!("wss://{}/v1/sync", plain.addr());
    let out = run_cli(
        &dir.path().join("device"),
        &["sync", "--timeout", "20", &wss],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("TLS handshake with 127.0.0.1 failed")
            && stderr.contains("is the server speaking TLS on this port?"),
        "{stderr}"
    );
}

/// The end-entity certificate (DER) the node at `port` serves now, to a
/// client that trusts the CAs in `cas`.
async fn served_certificate(port: u16, cas: &[&Path]) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
            roots.add(cert.expect("CA PEM")).expect("CA");
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        #[allow(deprecated)]
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let certs = tls.get_ref().1.peer_certificates().expect("certificates");
    certs[0].as_ref().to_vec()
}

fn pem_certificate(path: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_file(path)
        .expect("certificate PEM")
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = make_pki(dir.path(), "first");
    let second = make_pki(dir.path(), "second");
    // the node reads these two paths; the test replaces their contents
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(&first.cert, &cert).expect("copy");
    std::fs::copy(&first.key, &key).expect("copy");
    let node = TlsNode::start(
        &dir.path().join("relay"),
        &["--tls-cert", s(&cert), "--tls-key", s(&key)],
        &[("RUST_LOG", "info")],
    );
    let cas = [first.ca.as_path(), second.ca.as_path()];
    assert_eq!(
        served_certificate(node.port(), &cas).await,
        pem_certificate(&first.cert)
    );

    // new files, then SIGHUP: new handshakes get the new certificate
    std::fs::copy(&second.cert, &cert).expect("copy");
    std::fs::copy(&second.key, &key).expect("copy");
    assert_eq!(
        served_certificate(node.port(), &cas).await,
        pem_certificate(&first.cert),
        "nothing changes before the signal"
    );
    node.sighup();
    let want = pem_certificate(&second.cert);
    eventually(
        Duration::from_secs(10),
        "the new certificate served",
        || {
            let want = want.clone();
            let port = node.port();
            let cas = cas.map(Path::to_path_buf);
            async move {
                let cas: Vec<&Path> = cas.iter().map(PathBuf::as_path).collect();
                (served_certificate(port, &cas).await == want).then_some(())
            }
        },
    )
    .await;

    // a key that does not match the certificate: refused, the pair in use stays
    std::fs::copy(&first.key, &key).expect("copy");
    node.sighup();
    eventually(Duration::from_secs(10), "the refusal logged", || {
        let logs = node.logs();
        async move { logs.contains("TLS certificate not reloaded").then_some(()) }
    })
    .await;
    assert_eq!(served_certificate(node.port(), &cas).await, want);
    assert!(
        node.logs().contains("TLS certificate reloaded (SIGHUP)"),
        "{}",
        node.logs()
    );
}
