//! Reloading the tokens file while the node runs: on `SIGHUP`, and when the
//! file's modification time or size changes (polled every [`POLL`]). New and
//! changed tokens work at once; the sync connections and event streams of a
//! device that lost an access (its token removed, or its mode changed) are
//! closed, and no other device's. A file that cannot be read or parsed is
//! logged and changes nothing: the node keeps the tokens it had.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::state::NodeState;

/// How often the tokens file's modification time is looked at.
pub const POLL: Duration = Duration::from_secs(1);

/// What identifies a version of the file without reading it.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Start watching the node's tokens file (if it has one). Must run inside a
/// tokio runtime; `SIGHUP` is handled from the moment this returns, so call
/// it before announcing that the node listens.
pub fn watch_tokens(state: Arc<NodeState>) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(path) = state.auth.path().map(Path::to_path_buf) else {
        return Ok(None);
    };
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(Some(tokio::spawn(async move {
        let mut seen = stamp(&path);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let why = tokio::select! {
                _ = hup.recv() => "SIGHUP",
                _ = tick.tick() => "file changed",
            };
            #[cfg(not(unix))]
            let why = {
                tick.tick().await;
                "file changed"
            };
            let now = stamp(&path);
            if why == "file changed" && now == seen {
                continue;
            }
            seen = now;
            reload(&state, &path, why);
        }
    })))
}

/// Read the tokens file again and close what lost its access.
pub fn reload(state: &NodeState, path: &Path, why: &str) {
    match state.auth.reload() {
        Ok(lost) => {
            let mut closed = 0;
            for access in &lost {
                closed += state
                    .hub
                    .revoke(&access.tenant, &access.device, "token revoked");
                // a device no token grants any more loses its certificates
                if !state.auth.grants_device(&access.tenant, &access.device) {
                    revoke_certificates(state, &access.tenant, &access.device);
                }
            }
            tracing::info!(file = %path.display(), why, tokens = state.auth.len(),
                revoked = lost.len(), closed, "tokens reloaded");
        }
        Err(e) => tracing::error!(file = %path.display(), why, error = %e,
            "tokens file not reloaded; keeping the tokens in use"),
    }
}

/// Revoke every certificate of `device` in `tenant` (on a tenant authority):
/// what it signed loses its authority on every replica that learns the new
/// revocation list. Over a database other relays share, the certificates
/// are read again first (another relay may have certified the device a
/// moment ago), and the list stored afterwards is checked: when another
/// relay's revocation of the same version replaced it, this one is made
/// again on top of that.
pub fn revoke_certificates(state: &NodeState, tenant: &str, device: &str) {
    let store = &state.store;
    let shared = store.backend().shared();
    for attempt in 1..=REVOKE_ATTEMPTS {
        if let Err(e) = store.reload_identity() {
            tracing::error!(tenant, device, error = %e, "certificates not revoked");
            return;
        }
        let list = match store.revoke_device(tenant, device) {
            Ok(Some(list)) => list,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(tenant, device, error = %e, "certificates not revoked");
                return;
            }
        };
        let kept = !shared
            || store.revocation_list(tenant).is_ok_and(|stored| {
                stored.is_some_and(|s| s.list.serials.is_superset(&list.list.serials))
            });
        if kept {
            tracing::info!(
                tenant,
                device,
                version = list.list.version,
                "certificates revoked"
            );
            state.hub.identity_changed(None);
            return;
        }
        tracing::info!(
            tenant,
            device,
            attempt,
            "another relay revoked at the same time; again"
        );
    }
    tracing::error!(
        tenant,
        device,
        "certificates not revoked: the revocation list keeps changing"
    );
}

/// How often [`revoke_certificates`] tries when other relays revoke too.
const REVOKE_ATTEMPTS: u32 = 5;
