//! A client's round: push what changed here since the last completed
//! round, then read the peer's feed, then save both cursors once everything
//! the round touched is in sync.

use super::{Output, Phase, Role, Session, LOCAL_PUSHED, REMOTE_FEED};
use crate::error::Error;
use crate::sync::extension;
use crate::sync::storage::SyncStore;

impl<S: SyncStore> Session<S> {
    /// A client's first round: ask for what changed on the peer, push what
    /// changed here.
    pub(super) fn begin_round(&mut self, out: &mut Output) -> Result<(), Error> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let key = remote.key.clone();
        let tenant = self.cfg.access.tenant.clone();
        // first push what changed here; ask for the peer's feed once that is in
        // sync, so the feed cursor ends up past our own uploads
        self.round.feed_done = !remote.ext.feed;
        // push every local document changed since the last completed round
        let since = if remote.ext.feed {
            self.store.peer_cursor(&key, LOCAL_PUSHED)?
        } else {
            0
        };
        let head = self.store.feed_head();
        let mut cursor = since;
        loop {
            let page = self.store.tenant_feed_since(&tenant, cursor, 1000)?;
            let Some(&(last, _)) = page.last() else { break };
            for (_, id) in page {
                self.push_if_changed(id, out)?;
            }
            cursor = last;
        }
        self.round.local_pushed = Some(head.max(cursor));
        self.advance_round(out);
        Ok(())
    }

    /// Move the round on once every document it touched is in sync: a client
    /// then asks for the peer's feed (once), and when that is read to its end
    /// too, saves the round's cursors.
    pub(super) fn advance_round(&mut self, out: &mut Output) {
        if !self.pending.is_empty() || self.phase != Phase::Ready {
            return;
        }
        let Some(remote) = &self.remote else { return };
        let key = remote.key.clone();
        if self.cfg.role == Role::Client && remote.ext.feed && !self.round.feed_requested {
            self.round.feed_requested = true;
            let cursor = match self.store.peer_cursor(&key, REMOTE_FEED) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read a sync cursor");
                    0
                }
            };
            let req = self.next_feed_request(cursor);
            out.send.push(extension::feed_request(
                &self.cfg.local_peer,
                &remote.peer,
                req,
            ));
            return;
        }
        if !self.round.feed_done {
            return;
        }
        for (name, value) in [
            (REMOTE_FEED, self.round.remote_feed.take()),
            (LOCAL_PUSHED, self.round.local_pushed.take()),
        ] {
            if let Some(v) = value {
                if let Err(e) = self.store.set_peer_cursor(&key, name, v) {
                    tracing::warn!(error = %e, "could not save a sync cursor");
                }
            }
        }
    }
}
