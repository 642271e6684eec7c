//! Drives one sync [`Session`] over a transport: frames from the peer and
//! events from the hub in, frames out. The session's work (storage, fsync)
//! runs on the blocking pool so the async workers stay free.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use super::hub::{Direction, HubEvent, PeerStats};
use super::state::NodeState;
use crate::model::Access;
use crate::sync::{Output, Session};
use crate::wire::{self, Message, PeerId};

/// A message-oriented, bidirectional transport (a WebSocket).
pub trait Transport: Send {
    /// The next binary frame, `None` when the peer closed. Text frames are
    /// passed as their bytes (and rejected by the decoder).
    fn recv(&mut self)
        -> impl std::future::Future<Output = Option<Result<Vec<u8>, String>>> + Send;
    /// Send one binary frame.
    fn send(
        &mut self,
        frame: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
    /// Close the connection.
    fn close(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

/// How a connection ended.
#[derive(Debug)]
pub struct Ended {
    /// Why.
    pub reason: String,
    /// Whether the session finished its round (everything in sync) at some point.
    pub was_idle: bool,
    /// Whether the handshake completed.
    pub handshake_done: bool,
}

/// Options of [`drive`].
pub struct DriveOptions {
    /// Who dialed.
    pub direction: Direction,
    /// The URL dialed (outbound).
    pub url: Option<String>,
    /// Stop as soon as the session's first round is done (one-shot sync).
    pub stop_when_idle: bool,
    /// Close the connection when the peer has not joined within this (inbound
    /// connections: a silent upgrade must not hold a slot for long).
    pub join_timeout: Option<std::time::Duration>,
    /// Close the connection when a frame cannot be sent within this (a peer
    /// that stopped reading).
    pub send_timeout: Option<std::time::Duration>,
}

/// Run `session` over `transport` until either side closes.
pub async fn drive<T: Transport>(
    state: Arc<NodeState>,
    mut session: Session,
    mut transport: T,
    access: Access,
    opts: DriveOptions,
) -> Ended {
    let stats = Arc::new(PeerStats::default());
    let mut registered: Option<(u64, tokio::sync::mpsc::UnboundedReceiver<HubEvent>)> = None;
    let started = Instant::now();
    let mut ended = Ended {
        reason: String::new(),
        was_idle: false,
        handshake_done: false,
    };
    // set when the peer closed right after a burst of frames: end once the
    // burst is answered
    let mut ends_after: Option<String> = None;
    let first = session.start();
    if let Err(reason) = send_all(
        &state,
        &stats,
        &mut transport,
        opts.send_timeout,
        first.send,
    )
    .await
    {
        ended.reason = reason;
        return ended;
    }
    loop {
        let event = match registered.as_mut() {
            Some((_, rx)) => {
                tokio::select! {
                    frame = transport.recv() => Input::Frame(frame),
                    ev = rx.recv() => Input::Event(ev),
                }
            }
            None => match opts.join_timeout {
                Some(t) => {
                    let deadline = tokio::time::Instant::from_std(started + t);
                    match tokio::time::timeout_at(deadline, transport.recv()).await {
                        Ok(frame) => Input::Frame(frame),
                        Err(_) => Input::JoinTimeout(t),
                    }
                }
                None => Input::Frame(transport.recv().await),
            },
        };
        let out = match event {
            Input::Frame(None) => {
                ended.reason = "peer closed the connection".into();
                break;
            }
            Input::Frame(Some(Err(e))) => {
                ended.reason = format!("transport error: {e}");
                break;
            }
            Input::Frame(Some(Ok(frame))) => {
                let (frames, end) = take_ready(&mut transport, frame);
                ends_after = end;
                for frame in &frames {
                    stats
                        .bytes_in
                        .fetch_add(frame.len() as u64, Ordering::Relaxed);
                    state.metrics.add_bytes_in(frame.len() as u64);
                    state.metrics.message_in();
                }
                stats
                    .messages_received
                    .fetch_add(frames.len() as u64, Ordering::Relaxed);
                let (s, out) = run_blocking(session, move |s| s.on_frames(&frames)).await;
                session = s;
                out
            }
            Input::Event(Some(HubEvent::DocChanged(id))) => {
                let (s, out) = run_blocking(session, move |s| s.on_doc_changed(id)).await;
                session = s;
                out
            }
            Input::Event(Some(HubEvent::IdentityChanged)) => {
                let (s, out) = run_blocking(session, move |s| s.on_identity_changed()).await;
                session = s;
                out
            }
            Input::Event(Some(HubEvent::Close(reason)))
            | Input::Event(Some(HubEvent::Shutdown(reason))) => {
                let _ = send_all(
                    &state,
                    &stats,
                    &mut transport,
                    opts.send_timeout,
                    vec![Message::Error {
                        message: reason.clone(),
                    }],
                )
                .await;
                ended.reason = reason;
                break;
            }
            Input::Event(None) => {
                ended.reason = "node shutting down".into();
                break;
            }
            Input::JoinTimeout(t) => {
                let reason = format!("no join within {t:?}");
                let message = Message::Error {
                    message: reason.clone(),
                };
                let _ = send_all(
                    &state,
                    &stats,
                    &mut transport,
                    opts.send_timeout,
                    vec![message],
                )
                .await;
                state.metrics.error("protocol");
                ended.reason = reason;
                break;
            }
        };
        if registered.is_none()
            && session.is_ready()
            && !state.auth.is_open()
            && state.devices.is_blocked(&access.tenant, &access.device)
        {
            // upgraded before the device was removed, joined after: the
            // removal closed only the connections it could see
            let reason = "device removed".to_string();
            let message = Message::Error {
                message: reason.clone(),
            };
            let _ = send_all(
                &state,
                &stats,
                &mut transport,
                opts.send_timeout,
                vec![message],
            )
            .await;
            ended.reason = reason;
            break;
        }
        if registered.is_none() && session.is_ready() {
            let peer = session
                .remote_peer()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            registered = Some(state.hub.register(
                peer,
                access.clone(),
                opts.direction,
                opts.url.clone(),
                stats.clone(),
            ));
            state.devices.seen(&access, state.clock.now_ms());
            ended.handshake_done = true;
            if let Some((conn, _)) = &registered {
                // a permitsync peer learns of new documents of its tenant live
                state
                    .hub
                    .set_wants_all(*conn, session.remote_extensions().feed);
            }
        }
        let conn = registered.as_ref().map(|(c, _)| *c);
        if out.identity_changed {
            state.hub.identity_changed(conn);
        }
        if let Some(c) = conn {
            // the documents this connection exchanges messages about
            let docs = out
                .send
                .iter()
                .filter_map(|m| m.document_id())
                .map(|d| crate::model::EntityId::from(uuid::Uuid::from(*d)));
            state.hub.follow(c, docs.chain(out.changed.iter().copied()));
        }
        let close = account(&state, &access, &stats, &out, conn);
        let had_changes = out.changes_applied > 0;
        if let Err(reason) =
            send_all(&state, &stats, &mut transport, opts.send_timeout, out.send).await
        {
            ended.reason = reason;
            break;
        }
        stats
            .docs_pending
            .store(session.pending() as u64, Ordering::Relaxed);
        stats
            .docs_sent
            .store(session.docs_sent() as u64, Ordering::Relaxed);
        if had_changes || session.is_idle() {
            stats
                .last_sync_ms
                .store(state.clock.now_ms().max(0) as u64, Ordering::Relaxed);
            state.devices.synced(&access, state.clock.now_ms());
        }
        if let Some(reason) = close.or(ends_after.take()) {
            ended.reason = reason;
            break;
        }
        if session.is_idle() && !ended.was_idle {
            ended.was_idle = true;
            if opts.direction == Direction::Outbound {
                // a round this node started: dial to everything in sync
                state
                    .metrics
                    .observe_sync_duration(started.elapsed().as_secs_f64());
            }
            if opts.stop_when_idle {
                let me = PeerId::new(state.peer_id.clone());
                let _ = send_all(
                    &state,
                    &stats,
                    &mut transport,
                    opts.send_timeout,
                    vec![Message::Leave { sender_id: me }],
                )
                .await;
                ended.reason = "in sync".into();
                break;
            }
        }
    }
    if let Some((conn, _)) = registered {
        state.hub.unregister(conn);
    }
    transport.close().await;
    ended
}

/// Most frames, and bytes, answered as one burst (one flush).
const BURST_FRAMES: usize = 256;
const BURST_BYTES: usize = 4 * 1024 * 1024;

/// `first` and the frames the transport already holds after it (without
/// waiting), up to the burst limits. The second value is set when the peer
/// closed or the transport failed right after them.
fn take_ready<T: Transport>(transport: &mut T, first: Vec<u8>) -> (Vec<Vec<u8>>, Option<String>) {
    let mut bytes = first.len();
    let mut frames = vec![first];
    while frames.len() < BURST_FRAMES && bytes < BURST_BYTES {
        match transport.recv().now_or_never() {
            None => break, // nothing more right now
            Some(Some(Ok(frame))) => {
                bytes += frame.len();
                frames.push(frame);
            }
            Some(None) => return (frames, Some("peer closed the connection".into())),
            Some(Some(Err(e))) => return (frames, Some(format!("transport error: {e}"))),
        }
    }
    (frames, None)
}

enum Input {
    Frame(Option<Result<Vec<u8>, String>>),
    Event(Option<HubEvent>),
    JoinTimeout(std::time::Duration),
}

/// Record an output's effects in metrics and the hub; returns the close reason.
fn account(
    state: &NodeState,
    access: &Access,
    stats: &PeerStats,
    out: &Output,
    conn: Option<u64>,
) -> Option<String> {
    if out.changes_applied > 0 {
        state
            .metrics
            .add_changes_applied(out.changes_applied as u64);
        stats
            .docs_received
            .fetch_add(out.changed.len() as u64, Ordering::Relaxed);
    }
    if out.rejected > 0 {
        state.metrics.add_rejected(out.rejected as u64);
        stats
            .rejected
            .fetch_add(out.rejected as u64, Ordering::Relaxed);
    }
    stats
        .conflicts
        .fetch_add(out.conflicts as u64, Ordering::Relaxed);
    for id in &out.changed {
        state.doc_changed(access, *id, conn);
    }
    // an `error` sent to the peer is a protocol problem; a peer's `leave` is not
    if out.send.iter().any(|m| matches!(m, Message::Error { .. })) {
        state.metrics.error("protocol");
    }
    out.close.clone()
}

/// Send `messages` in order. With `timeout`, a frame the peer does not take
/// within it (a peer that stopped reading, its buffers full) ends the
/// connection instead of holding its task for ever.
async fn send_all<T: Transport>(
    state: &NodeState,
    stats: &PeerStats,
    transport: &mut T,
    timeout: Option<Duration>,
    messages: Vec<Message>,
) -> Result<(), String> {
    for m in messages {
        tracing::debug!(peer = %state.peer_id, kind = m.type_name(), doc = ?m.document_id(), "send");
        let frame = wire::encode(&m);
        stats
            .bytes_out
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        stats.messages_sent.fetch_add(1, Ordering::Relaxed);
        state.metrics.add_bytes_out(frame.len() as u64);
        state.metrics.message_out();
        match timeout {
            None => transport.send(frame).await?,
            Some(limit) => tokio::time::timeout(limit, transport.send(frame))
                .await
                .map_err(|_| {
                    format!(
                        "the peer took no data for {} s (it stopped reading); closing",
                        limit.as_secs()
                    )
                })??,
        }
    }
    Ok(())
}

async fn run_blocking<F>(session: Session, f: F) -> (Session, Output)
where
    F: FnOnce(&mut Session) -> Output + Send + 'static,
{
    let handle = tokio::task::spawn_blocking(move || {
        let mut s = session;
        let out = f(&mut s);
        (s, out)
    });
    match handle.await {
        Ok(result) => result,
        Err(e) => {
            // the session panicked: nothing sensible can continue on this connection
            tracing::error!(error = %e, "sync session task failed");
            std::panic::resume_unwind(e.into_panic())
        }
    }
}
