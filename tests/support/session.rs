//! Sync sessions over an in-memory transport: [`session`] makes one with the
//! tests' defaults ([`config`]), [`pump`] moves frames, encoded and decoded as
//! on the wire, between a client and a server until both are quiet, and
//! [`Traffic`] tells what went through.

use std::fmt;

use permitsync::node::Access;
use permitsync::store::Store;
use permitsync::sync::{Output, Role, Session, SessionConfig};
use permitsync::wire::{self, Limits, Message, PeerId};

/// Feed entries asked for per page, unless a test says otherwise.
pub const FEED_PAGE: u64 = 500;

/// Rounds (every frame in flight delivered, then every answer) before
/// [`pump`] gives up on sessions that do not quiesce.
const MAX_ROUNDS: usize = 10_000;

/// The configuration of `peer`'s session on the `role` side, for a remote
/// peer with `access`: default frame limits and pages of [`FEED_PAGE`]
/// entries. Change a field with `SessionConfig { feed_page: 2, ..config(..) }`.
pub fn config(role: Role, peer: &str, access: Access) -> SessionConfig {
    SessionConfig {
        local_peer: PeerId::new(peer),
        role,
        access,
        limits: Limits::default(),
        feed_page: FEED_PAGE,
    }
}

/// `peer`'s session on `store`, on the `role` side, for a remote peer with
/// `access` (see [`config`]).
pub fn session(store: &Store, role: Role, peer: &str, access: Access) -> Session {
    Session::new(config(role, peer, access), store.clone())
}

/// Which end of a connection read a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// One frame read by one side, and what its session made of it.
pub struct Delivery {
    pub to: Side,
    pub message: Message,
    pub output: Output,
}

/// Every frame [`pump`] delivered, in order (each copy of a repeated frame
/// on its own).
#[derive(Default)]
pub struct Traffic {
    pub deliveries: Vec<Delivery>,
}

impl Traffic {
    /// Frames delivered.
    pub fn messages(&self) -> usize {
        self.deliveries.len()
    }

    /// `sync` and `request` frames delivered.
    pub fn sync_messages(&self) -> usize {
        self.deliveries
            .iter()
            .filter(|d| matches!(d.message, Message::Sync { .. } | Message::Request { .. }))
            .count()
    }

    /// Why either side closed the connection, every time, in order.
    pub fn closes(&self) -> Vec<String> {
        self.deliveries
            .iter()
            .filter_map(|d| d.output.close.clone())
            .collect()
    }

    /// The last reason either side closed the connection for.
    pub fn closed(&self) -> Option<String> {
        self.closes().pop()
    }

    /// The outputs of `side`'s session, in order.
    pub fn outputs(&self, side: Side) -> impl Iterator<Item = &Output> {
        self.deliveries
            .iter()
            .filter(move |d| d.to == side)
            .map(|d| &d.output)
    }

    /// The first output of the server that closed the connection.
    pub fn server_closed(&self) -> Option<&Output> {
        self.outputs(Side::Server).find(|o| o.close.is_some())
    }

    /// The last reason the client closed the connection for.
    pub fn client_closed(&self) -> Option<String> {
        self.outputs(Side::Client)
            .filter_map(|o| o.close.clone())
            .last()
    }
}

impl fmt::Debug for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frames: Vec<String> = self
            .deliveries
            .iter()
            .map(|d| format!("{:?} <- {}", d.to, d.message.type_name()))
            .collect();
        f.debug_struct("Traffic")
            .field("messages", &self.messages())
            .field("sync_messages", &self.sync_messages())
            .field("closes", &self.closes())
            .field("frames", &frames)
            .finish()
    }
}

/// Starts `client` and moves frames between the two sessions until neither
/// has anything to send: every frame in flight to the server, then every
/// answer to the client, and so on.
pub fn pump(client: &mut Session, server: &mut Session) -> Traffic {
    pump_with_duplicates(client, server, 1)
}

/// [`pump`] delivering every frame `copies` times in a row except the
/// handshake's `join` and `peer` (a second one is a protocol error), as a
/// network that repeats frames would.
pub fn pump_with_duplicates(client: &mut Session, server: &mut Session, copies: usize) -> Traffic {
    let mut traffic = Traffic::default();
    let mut to_server: Vec<Message> = client.start().send;
    for _ in 0..MAX_ROUNDS {
        if to_server.is_empty() {
            return traffic;
        }
        let to_client = deliver(server, Side::Server, to_server, copies, &mut traffic);
        to_server = deliver(client, Side::Client, to_client, copies, &mut traffic);
    }
    panic!("sessions did not quiesce in {MAX_ROUNDS} rounds");
}

/// Hands `inbox` to `session` (each frame `copies` times, the handshake's
/// once); returns the answers.
fn deliver(
    session: &mut Session,
    to: Side,
    inbox: Vec<Message>,
    copies: usize,
    traffic: &mut Traffic,
) -> Vec<Message> {
    let mut answers = Vec::new();
    for message in inbox {
        let n = match message {
            Message::Join { .. } | Message::Peer { .. } => 1,
            _ => copies,
        };
        for _ in 0..n {
            let output = session.on_frame(&wire::encode(&message));
            answers.extend(output.send.iter().cloned());
            traffic.deliveries.push(Delivery {
                to,
                message: message.clone(),
                output,
            });
        }
    }
    answers
}
