//! The accept loop: every TCP connection is counted against
//! [`NetLimits::max_connections`] before it costs anything, and each is
//! watched so that a client cannot hold it without using it.
//!
//! - Up to `max_connections`, a connection is served by the node's app
//!   (HTTP/1.1 with upgrades to WebSocket, or HTTP/2).
//! - The next [`NetLimits::overflow_connections`] are read only briefly: they
//!   get `/healthz` (so monitoring sees a live, busy node) or `503 busy`, then
//!   are closed.
//! - Beyond those, a connection gets a canned `503` written without waiting,
//!   and is closed.
//!
//! With TLS, the handshake runs after the budget check and within the header
//! read timeout: a client that stalls in the handshake is closed like one that
//! stalls in its headers. A plain HTTP request on a TLS port gets a plain
//! `400` that says so; connections beyond every budget are closed unanswered.
//!
//! A watchdog per connection closes it when its first request's headers have
//! not arrived within the header read timeout (slowloris), and closes it
//! gracefully when no request has started for the idle timeout. Upgraded
//! (WebSocket) connections leave the watchdog: the sync connection keeps its
//! own join timeout and pings. The peer's address is put in each request's
//! extensions as [`ConnectInfo`] for the failed-login throttle.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::address_slots::{AddressSlot, AddressSlots};
use super::net_limits::NetLimits;

/// How long a connection above the cap may take to send its request and read the answer.
const OVERFLOW_TIMEOUT: Duration = Duration::from_secs(2);

/// The answer for a connection beyond every budget, written without waiting.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 68\r\n\r\n\
{\"error\":\"busy\",\"detail\":\"too many connections; retry in a moment\"}\n";

/// The answer to a plain HTTP request on a TLS port.
const PLAIN_ON_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
connection: close\r\ncontent-length: 81\r\n\r\n\
{\"error\":\"tls_required\",\"detail\":\"this port speaks TLS: use https:// or wss://\"}\n";

/// The first byte of a TLS connection (a handshake record).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// How long a stopping node waits for its connections to end.
const DRAIN: Duration = Duration::from_secs(10);

/// A connection's place in the node's connection budget and in its network's
/// (`--max-connections-per-address`). Every request of the
/// connection carries a clone; a WebSocket upgrade keeps one for as long as
/// the socket lives (the HTTP connection's task ends at the upgrade).
#[derive(Clone)]
pub(super) struct ConnHold(#[allow(dead_code)] Arc<(OwnedSemaphorePermit, AddressSlot)>);

/// The request's [`ConnHold`] (absent without the node's listener).
pub(super) struct Held(pub(super) Option<ConnHold>);

impl<S: Send + Sync> FromRequestParts<S> for Held {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Held(parts.extensions.get::<ConnHold>().cloned()))
    }
}

/// Accept connections on `listener` and serve `app` on them (over TLS with
/// `tls`) until `stop` turns true; then wait (up to [`DRAIN`]) for the live
/// connections to end.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: NetLimits,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = AddressSlots::new(limits.max_connections_per_address);
    let overflow = Arc::new(Semaphore::new(limits.overflow_connections()));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // out of descriptors (or a connection reset before accept):
                // wait a little instead of spinning
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        // one network may not hold the whole budget: beyond its share it is
        // refused at once, like a connection beyond every budget
        let Some(address_slot) = per_address.take(peer.ip()) else {
            tracing::debug!(%peer, "connections per address exceeded; refused");
            refuse_now(tcp, tls.is_some());
            continue;
        };
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            let (app, stop) = (app.clone(), stop.clone());
            let hold = ConnHold(Arc::new((slot, address_slot)));
            let tls = tls.clone();
            tokio::spawn(serve_connection(tcp, peer, hold, app, limits, tls, stop));
        } else if let Ok(slot) = overflow.clone().try_acquire_owned() {
            let tls = tls.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(OVERFLOW_TIMEOUT, serve_overflow(tcp, tls)).await;
                drop((slot, address_slot));
            });
        } else {
            refuse_now(tcp, tls.is_some());
        }
    }
    drop(listener);
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            left = all as usize - slots.available_permits(),
            "connections still open after {DRAIN:?}; stopping anyway"
        );
    }
}

/// When a connection last started or finished a request, and how many are in flight.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
    started: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection is due to be closed, if nothing happens before.
    fn deadline(&self, limits: &NetLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        if self.started.load(Ordering::Relaxed) == 0 {
            return Some(self.opened + limits.header_read_timeout);
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.opened + last + limits.idle_timeout)
    }
}

/// A request in flight on a connection, from its headers until its response
/// body is finished (or dropped, when the connection goes).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A response body that keeps its request in flight while it is sent.
struct GuardedBody {
    body: Body,
    /// Dropped with the body.
    _guard: InFlight,
}

impl hyper::body::Body for GuardedBody {
    type Data = <Body as hyper::body::Body>::Data;
    type Error = <Body as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The TLS handshake on an accepted connection. A client that sends plain
/// HTTP instead gets [`PLAIN_ON_TLS`]; `None` when the connection is closed.
async fn accept_tls(
    acceptor: &TlsAcceptor,
    mut tcp: TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match tcp.peek(&mut first).await {
        Ok(1..) if first[0] != TLS_HANDSHAKE_RECORD => {
            tracing::debug!(%peer, "plain HTTP on the TLS port");
            let _ = tcp.write_all(PLAIN_ON_TLS).await;
            let _ = tcp.shutdown().await;
            return None;
        }
        Ok(1..) => {}
        _ => return None,
    }
    match acceptor.accept(tcp).await {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    hold: ConnHold,
    app: Router,
    limits: NetLimits,
    tls: Option<TlsAcceptor>,
    stop: watch::Receiver<bool>,
) {
    // the header read timeout runs from the accept, over the handshake too
    let activity = Arc::new(Activity::new());
    let Some(acceptor) = tls else {
        return serve_io(tcp, peer, hold, app, limits, activity, stop).await;
    };
    let deadline = activity.opened + limits.header_read_timeout;
    match tokio::time::timeout_at(deadline.into(), accept_tls(&acceptor, tcp, peer)).await {
        Ok(Some(stream)) => serve_io(stream, peer, hold, app, limits, activity, stop).await,
        Ok(None) => {}
        Err(_) => {
            tracing::debug!(%peer, "closing a connection that did not finish its TLS handshake in time")
        }
    }
}

async fn serve_io<I>(
    io: I,
    peer: SocketAddr,
    hold: ConnHold,
    app: Router,
    limits: NetLimits,
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let act = activity.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (app, act) = (app.clone(), act.clone());
        act.started.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight::start(act);
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(hold.clone());
        async move {
            let response = app.oneshot(req).await;
            // in flight until the body is sent: an event stream or a long
            // download is not an idle connection
            response.map(|r| {
                r.map(|body| {
                    Body::new(GuardedBody {
                        body,
                        _guard: guard,
                    })
                })
            })
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    // a request's head must fit in 32 KiB: hyper's default lets a connection
    // buffer about 400 KiB of unfinished headers
    builder.http1().max_buf_size(32 * 1024);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let deadline = activity.deadline(&limits);
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                // a request in flight: look again later
                None => tokio::time::sleep(limits.idle_timeout).await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = sleep => {
                let Some(d) = activity.deadline(&limits) else { continue };
                if Instant::now() < d {
                    continue; // a request came in meanwhile
                }
                if activity.started.load(Ordering::Relaxed) == 0 || closing {
                    tracing::debug!(%peer, "closing a connection that sent no request in time");
                    return; // dropping the connection closes it
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = stop.wait_for(|s| *s), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A connection above the cap: `/healthz` is answered, anything else gets
/// `503 busy` (the caller bounds the whole of it, TLS handshake included).
/// Refuse a connection beyond every budget without waiting for anything: read
/// what already arrived (closing with unread bytes would reset the connection
/// before the client reads the answer), one non-blocking write of a `503`,
/// then close. On a TLS port a canned answer would not be TLS: close at once.
fn refuse_now(tcp: TcpStream, tls: bool) {
    if tls {
        return;
    }
    let mut scratch = [0u8; 4096];
    let _ = tcp.try_read(&mut scratch);
    let _ = tcp.try_write(REFUSED);
}

async fn serve_overflow(tcp: TcpStream, tls: Option<TlsAcceptor>) {
    let peer = tcp.peer_addr().ok();
    match (tls, peer) {
        (None, _) => answer_overflow(tcp).await,
        (Some(acceptor), Some(peer)) => {
            if let Some(stream) = accept_tls(&acceptor, tcp, peer).await {
                answer_overflow(stream).await;
            }
        }
        (Some(_), None) => {}
    }
}

async fn answer_overflow<I>(io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
        let (status, body) = if req.uri().path() == "/healthz" {
            (StatusCode::OK, r#"{"status":"ok"}"#)
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"busy","detail":"too many connections; retry in a moment"}"#,
            )
        };
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("retry-after", "1")
            .header("connection", "close")
            .body(Body::from(body));
        Ok::<_, Infallible>(response.unwrap_or_else(|_| Response::new(Body::empty())))
    });
    let builder = Builder::new(TokioExecutor::new());
    let _ = builder.serve_connection(TokioIo::new(io), service).await;
}

#[cfg(test)]
mod tests {
    use super::{PLAIN_ON_TLS, REFUSED};

    /// The canned answers' `content-length` is their body's length.
    #[test]
    fn canned_answers_have_the_right_length() {
        for raw in [REFUSED, PLAIN_ON_TLS] {
            let text = std::str::from_utf8(raw).expect("ASCII");
            let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .expect("a content-length");
            assert_eq!(length.parse::<usize>().ok(), Some(body.len()), "{text}");
        }
    }
}
