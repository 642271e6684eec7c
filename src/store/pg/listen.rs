//! The listener: one connection of its own that `LISTEN`s on the channel
//! every checked write notifies (`checked.rs`), so that a commit through one
//! relay wakes the others at once. It reconnects after any failure (waiting
//! 0.1 s, doubling up to 30 s) and wakes its relay after each (re)connect,
//! since notifications sent meanwhile are lost. A notification is only a
//! hint: the relay reads the feed to know what changed, and polls it anyway.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::tokio_postgres::{AsyncMessage, Config, NoTls};
use futures_util::StreamExt;
use tokio::sync::{mpsc, Notify};

use super::checked::CHANNEL;
use super::error;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Listen on the database of `config` for ever, waking `wake` at every
/// notification and after every (re)connect.
pub(super) async fn listen_forever(config: Config, target: String, wake: Arc<Notify>) {
    let mut retry = FIRST_RETRY;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = mpsc::unbounded_channel::<()>();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => {
                                if tx.send(()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %error::chain(&e),
                                    "the database listener's connection failed");
                                return;
                            }
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        tracing::info!(database = %target, "listening for other relays' commits");
                        retry = FIRST_RETRY;
                        // what was committed while not listening
                        wake.notify_one();
                        while rx.recv().await.is_some() {
                            wake.notify_one();
                        }
                        tracing::warn!(database = %target,
                            "the database listener lost its connection; reconnecting \
                             (the feed poll goes on meanwhile)");
                    }
                    Err(e) => {
                        tracing::warn!(database = %target, error = %error::chain(&e),
                            "cannot LISTEN on the database");
                    }
                }
                drop(client);
                driver.abort();
            }
            Err(e) => {
                tracing::warn!(database = %target, error = %error::chain(&e),
                    retry_ms = retry.as_millis() as u64,
                    "the database listener cannot connect; retrying");
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}
