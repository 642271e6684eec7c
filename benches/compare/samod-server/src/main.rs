//! A samod sync server: `samod-server --listen 127.0.0.1:0 --data DIR`.
//!
//! The same process contract as the permitsync relay and the JavaScript
//! server of benches/compare: prints `listening on http://HOST:PORT` once
//! bound, serves the automerge-repo WebSocket protocol at `/v1/sync` (and
//! `/`), stores documents with samod's `FilesystemStorage` under DIR (the
//! automerge-repo-storage-nodefs layout), and does not announce documents to
//! peers that did not ask for them (like the JavaScript sync server).

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use samod::storage::TokioFilesystemStorage;
use samod::{AcceptorHandle, Repo, ShareConfig};

async fn sync(ws: WebSocketUpgrade, State(acceptor): State<AcceptorHandle>) -> impl IntoResponse {
    ws.max_message_size(64 << 20)
        .on_upgrade(move |socket| async move {
            // the repo drives the connection from here on
            let _ = acceptor.accept_axum(socket, None);
        })
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let listen = arg("--listen").unwrap_or_else(|| "127.0.0.1:0".into());
    let data = arg("--data").unwrap_or_else(|| "./samod-data".into());
    let repo = Repo::build_tokio()
        .with_storage(TokioFilesystemStorage::new(&data))
        .with_share_policy(ShareConfig::read_write().with_announce(false))
        .load()
        .await;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .expect("bind --listen");
    let addr = listener.local_addr().expect("local addr");
    let url = url::Url::parse(&format!("ws://{addr}/v1/sync")).expect("url");
    let acceptor = repo.make_acceptor(url).expect("acceptor");
    let app = Router::new()
        .route("/v1/sync", get(sync))
        .route("/", get(sync))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(acceptor);
    println!("listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("serve");
    repo.stop().await;
}
