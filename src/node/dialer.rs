//! Dialing other nodes: one connection per URL, reconnecting with
//! exponential backoff and jitter (1 s doubling to 32 s).

use std::sync::Arc;

use tokio::sync::watch;

use super::connection::{drive, DriveOptions, Ended};
use super::hub::Direction;
use super::state::NodeState;
use super::ws::ClientSocket;
use crate::model::Access;
use crate::sync::{backoff, Role, Session, SessionConfig};
use crate::wire::PeerId;

/// The URL without its query (which may hold a token), for logs and status.
pub fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

/// Connect once to `url` and run the sync session until it ends (or, with
/// `stop_when_idle`, until everything is in sync).
pub async fn connect(
    state: Arc<NodeState>,
    url: &str,
    stop_when_idle: bool,
) -> Result<Ended, String> {
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", redact(url)))?;
    // the peer we dial may see and send everything of our (default) tenant
    let access = Access::open(redact(url));
    let session = Session::new(
        SessionConfig {
            local_peer: PeerId::new(state.peer_id.clone()),
            role: Role::Client,
            access: access.clone(),
            limits: state.limits,
            feed_page: 1000,
        },
        state.store.clone(),
    )
    .with_receive_limits(state.quotas.receive);
    Ok(drive(
        state,
        session,
        ClientSocket(socket),
        access,
        DriveOptions {
            direction: Direction::Outbound,
            url: Some(redact(url)),
            stop_when_idle,
            join_timeout: None,
        },
    )
    .await)
}

/// Keep a connection to `url` open until `shutdown` turns true.
pub async fn dial_forever(state: Arc<NodeState>, url: String, mut shutdown: watch::Receiver<bool>) {
    let mut attempt: u32 = 0;
    loop {
        match connect(state.clone(), &url, false).await {
            Ok(ended) => {
                tracing::info!(url = %redact(&url), reason = %ended.reason, "connection ended");
                if ended.handshake_done {
                    attempt = 0;
                }
            }
            Err(e) => tracing::warn!(error = %e, "dial failed"),
        }
        if *shutdown.borrow() {
            return;
        }
        let delay = backoff::delay(attempt, rand::random_range(0.5..=1.0));
        attempt = attempt.saturating_add(1);
        tracing::info!(url = %redact(&url), ?delay, "reconnecting after a delay");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}
