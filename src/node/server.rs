//! Assembling and running a node: its state, the listener, the dialers and
//! graceful shutdown (the routes are merged in [`super::routes`]). The caller binds the listener (tests bind port 0) and
//! owns the shutdown signal.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::admin_token::AdminToken;
use super::auth::Auth;
use super::cluster;
use super::devices::Devices;
use super::dialer;
use super::hub::Hub;
use super::listener;
use super::metrics::Metrics;
use super::quotas::{Quotas, RateLimiter};
use super::role_config::{apply_role_tables, read_role_table_file};
use super::routes::app;
use super::state::NodeState;
use super::tls::{ClientTls, ServerTls};
use crate::error::{Error, Result};
use crate::store::{Store, SystemClock};
use crate::wire::Limits;

/// How to set up a node.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// A tokens file; without one every client has full access to the default tenant.
    pub tokens: Option<PathBuf>,
    /// Frame limits for peers.
    pub limits: Limits,
    /// The peer id on the wire (default: derived from the store's actor id, stable).
    pub peer_id: Option<String>,
    /// Abuse limits.
    pub quotas: Quotas,
    /// A file holding the admin token of `/v1/admin/...` (backups); without
    /// one those routes answer 403 `admin_disabled`.
    pub admin_token_file: Option<PathBuf>,
    /// The tenant authority's key file (`permitsync authority init`), shared
    /// by several relays; without it a node with tokens makes its own.
    pub authority_key: Option<PathBuf>,
    /// The tenants' role tables (`serve --role-table`), signed at start by
    /// this node as their authority; needs `tokens`.
    pub role_table: Option<PathBuf>,
}

/// Build the shared state of a node over `store`.
pub fn build_state(store: Store, opts: &NodeOptions) -> Result<Arc<NodeState>> {
    let auth = match &opts.tokens {
        Some(path) => Auth::from_file(path)
            .map_err(|e| Error::InvalidInput(format!("tokens file {}: {e}", path.display())))?,
        None => Auth::open(),
    };
    let admin_token = match &opts.admin_token_file {
        Some(path) => Some(AdminToken::from_file(path)?),
        None => None,
    };
    if !auth.is_open() {
        // a relay with tokens is the authority of its tenants
        let public = match &opts.authority_key {
            Some(path) => store.use_authority_key(read_authority_key(path)?)?,
            None => store.ensure_authority()?,
        };
        tracing::info!(authority = %public, "tenant authority");
    }
    if let Some(path) = &opts.role_table {
        if auth.is_open() {
            return Err(Error::InvalidInput(
                "--role-table needs --tokens: only a tenant authority signs role tables".into(),
            ));
        }
        let file = read_role_table_file(path).map_err(|e| Error::InvalidInput(e.to_string()))?;
        apply_role_tables(&store, &file)?;
    }
    let devices = Devices::load(&store)?;
    let peer_id = opts
        .peer_id
        .clone()
        .unwrap_or_else(|| format!("permitsync-{}", &store.node_id().to_hex_string()[..12]));
    Ok(Arc::new(NodeState {
        store,
        auth,
        hub: Hub::new(),
        metrics: Metrics::default(),
        devices,
        peer_id,
        limits: opts.limits,
        clock: Arc::new(SystemClock),
        quotas: opts.quotas,
        rate: RateLimiter::new(),
        admin_token,
        cluster: Default::default(),
    }))
}

/// Read an authority key file: the 32-byte secret as 64 hex digits (what
/// `permitsync authority init` writes).
pub fn read_authority_key(path: &std::path::Path) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::InvalidInput(format!("cannot read authority key {}: {e}", path.display()))
    })?;
    let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() == 32);
    bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
        Error::InvalidInput(format!(
            "authority key {} is not 64 hex digits (make one with `permitsync authority init`)",
            path.display()
        ))
    })
}

/// What [`run_with`] dials and how it serves.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Sync URLs to keep a connection to (`ws://` or `wss://`); one entry
    /// may name the relays of one cluster, separated by commas: one
    /// connection is kept to one of them, failing over to the next.
    pub connect: Vec<String>,
    /// Whom the dialers trust for `wss://` (default: the system's roots).
    pub client_tls: Option<ClientTls>,
    /// Serve HTTPS and WSS with this certificate instead of plain HTTP.
    pub server_tls: Option<ServerTls>,
    /// On a database shared with other relays: how often the feed is read
    /// for their writes when no notification came (zero: the default,
    /// [`super::cluster::DEFAULT_CLUSTER_POLL`]).
    pub cluster_poll: Duration,
}

/// Serve `state` on `listener` (within the node's network limits, see
/// [`super::listener`]), dial every URL in `connect`, and stop when `shutdown`
/// completes: live sync connections are told, connections drain, dialers
/// stop, and the store is flushed.
pub async fn run(
    listener: TcpListener,
    state: Arc<NodeState>,
    connect: Vec<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let opts = RunOptions {
        connect,
        ..RunOptions::default()
    };
    run_with(listener, state, opts, shutdown).await
}

/// [`run`] with TLS: over `opts.server_tls` the listener speaks only HTTPS
/// and WSS, and the dialers trust `opts.client_tls`.
pub async fn run_with(
    listener: TcpListener,
    state: Arc<NodeState>,
    opts: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let client_tls = opts.client_tls.unwrap_or_else(ClientTls::system);
    let mut dialers = Vec::new();
    for cluster in opts.connect {
        dialers.push(tokio::spawn(dialer::dial_forever(
            state.clone(),
            dialer::cluster_urls(&cluster),
            client_tls.clone(),
            stop_rx.clone(),
        )));
    }
    let address = listener
        .local_addr()
        .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    let cluster = tokio::spawn(cluster::follow(
        state.clone(),
        opts.cluster_poll,
        address,
        stop_rx.clone(),
    ));
    let app = app(state.clone());
    let server = tokio::spawn(listener::serve(
        listener,
        app,
        state.quotas.net,
        opts.server_tls.map(|t| t.acceptor().clone()),
        stop_rx.clone(),
    ));
    shutdown.await;
    tracing::info!("shutting down");
    state.hub.shutdown_all("node shutting down");
    let _ = stop_tx.send(true);
    let result = server.await.map_err(std::io::Error::other);
    for d in dialers {
        let _ = d.await;
    }
    let _ = cluster.await;
    let store = state.store.clone();
    let _ = tokio::task::spawn_blocking(move || store.flush()).await;
    result
}
