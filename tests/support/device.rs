//! A device in the test process: its own sled store and node state, syncing
//! with relays once ([`Device::sync`]) or staying connected
//! ([`Device::live`], [`Device::dial`]).

use std::sync::Arc;
use std::time::Duration;

use permitsync::model::EntityId;
use permitsync::node::{self, ClientTls, NodeOptions, NodeState};
use permitsync::store::Store;
use permitsync::write::{Edit, NewPermit};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A device: its own sled store, syncing with relays.
pub struct Device {
    /// Its node state (store, hub).
    pub state: Arc<NodeState>,
    _dir: tempfile::TempDir,
}

impl Default for Device {
    fn default() -> Self {
        Device::new()
    }
}

impl Device {
    /// A device with an empty store.
    pub fn new() -> Device {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("device store");
        let state = node::build_state(store, &NodeOptions::default()).expect("state");
        Device { state, _dir: dir }
    }

    /// Its store.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// One sync round; `Ok` once both sides are in sync (the relay then
    /// holds, committed, everything the device has).
    pub async fn sync(&self, url: &str) -> Result<(), String> {
        let ended = tokio::time::timeout(
            Duration::from_secs(60),
            node::connect(self.state.clone(), url, true),
        )
        .await
        .map_err(|_| "no end of sync within 60 s".to_string())??;
        if ended.was_idle {
            Ok(())
        } else {
            Err(ended.reason)
        }
    }

    /// One connection to `url`, kept open (no reconnect): ends when the
    /// connection does.
    pub fn live(&self, url: &str) -> JoinHandle<Result<node::Ended, String>> {
        let (state, url) = (self.state.clone(), url.to_string());
        tokio::spawn(async move { node::connect(state, &url, false).await })
    }

    /// A connection to one of `urls` kept open as `serve --connect` keeps
    /// it (failing over, reconnecting), until the sender is dropped or set.
    pub fn dial(&self, urls: &[String]) -> (watch::Sender<bool>, JoinHandle<()>) {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(node::dial_forever(
            self.state.clone(),
            urls.to_vec(),
            ClientTls::system(),
            stopped,
        ));
        (stop, task)
    }

    /// `n` new permits (every second one edited once), titled by `round`.
    pub fn permits(&self, n: usize, round: usize) -> Vec<EntityId> {
        (0..n)
            .map(|i| {
                let id = self
                    .store()
                    .create_permit(NewPermit {
                        title: format!("round {round} permit {i}"),
                        location: "Bay 4".into(),
                        safety_checklist: vec!["isolation".into()],
                        ..Default::default()
                    })
                    .expect("permit");
                if i % 2 == 0 {
                    self.store()
                        .edit(
                            id,
                            Edit::SetText {
                                field: "description".into(),
                                text: format!("edited in round {round}"),
                            },
                        )
                        .expect("edit");
                }
                id
            })
            .collect()
    }

    /// Whether the device holds every one of `ids`.
    pub fn has_all(&self, ids: &[EntityId]) -> bool {
        ids.iter()
            .all(|id| self.store().contains(*id).unwrap_or(false))
    }
}

/// Every document of `writer` is on `reader`, with the same view.
pub fn same_documents(writer: &Store, reader: &Store, ids: &[EntityId]) {
    for id in ids {
        assert_eq!(
            writer.view(*id).expect("writer").to_json_string(),
            reader
                .view(*id)
                .map(|v| v.to_json_string())
                .unwrap_or_else(|e| {
                    panic!("{id} was acknowledged by a relay but is missing: {e}")
                }),
            "{id}"
        );
    }
}
