//! A publisher that counts a message as sent only when the broker confirms it, and that
//! reconnects (with backoff) whenever the connection is lost. lapin 2 does not recover
//! connections by itself; this does, so callers only ever see "published" or an error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use tokio::sync::Mutex;

use crate::connection::{close_in_order, connect};

/// Why a message was not published. In every case the broker did not confirm it: the caller
/// must treat it as not sent.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No connection to the broker (it is down, or we are backing off).
    #[error("RabbitMQ unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the message (nack).
    #[error("RabbitMQ refused the message")]
    Nacked,
    /// No queue is bound for this routing key: the broker returned the message.
    #[error("no queue takes routing key {0}")]
    Unroutable(String),
    /// No confirm within the timeout.
    #[error("no publisher confirm within {0:?}")]
    ConfirmTimeout(Duration),
    /// The channel failed during the publish.
    #[error("publish failed: {0}")]
    Channel(String),
}

/// Declares what a publisher needs on a fresh channel.
pub type Declare =
    Arc<dyn Fn(Channel) -> BoxFuture<'static, Result<(), lapin::Error>> + Send + Sync>;

struct State {
    connection: Option<Connection>,
    channel: Option<Channel>,
    /// Which connection `channel` belongs to: a failure seen on an older one must not drop a
    /// newer, healthy channel.
    generation: u64,
    failures: u32,
    retry_at: Option<Instant>,
    /// Set by [`Publisher::close`]: nothing reconnects after it (a keepalive tick racing the
    /// shutdown would otherwise open a connection that the exiting runtime tears down).
    closed: bool,
}

/// The publisher. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Publisher {
    url: Arc<str>,
    name: Arc<str>,
    declare: Declare,
    confirm_timeout: Duration,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Publisher {
    /// A publisher to `url` (never logged: it may hold a password) that runs `declare` on
    /// every new channel. Nothing is connected until first use.
    pub fn new(url: &str, name: &str, confirm_timeout: Duration, declare: Declare) -> Self {
        let state = State {
            connection: None,
            channel: None,
            generation: 0,
            failures: 0,
            retry_at: None,
            closed: false,
        };
        Publisher {
            url: url.into(),
            name: name.into(),
            declare,
            confirm_timeout,
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Whether a usable channel is open now.
    pub async fn is_connected(&self) -> bool {
        let state = self.state.lock().await;
        state
            .channel
            .as_ref()
            .is_some_and(|c| c.status().connected())
    }

    /// Connects now if not connected (and not backing off); true when connected after.
    pub async fn ensure_connected(&self) -> bool {
        self.channel().await.is_ok()
    }

    /// The open channel and its generation, connecting (and declaring) if needed; fails
    /// fast while backing off.
    async fn channel(&self) -> Result<(Channel, u64), PublishError> {
        let mut state = self.state.lock().await;
        if let Some(channel) = &state.channel
            && channel.status().connected()
        {
            return Ok((channel.clone(), state.generation));
        }
        if state.closed {
            return Err(PublishError::Unavailable("the publisher is closed".into()));
        }
        close_in_order(
            state.channel.take(),
            state.connection.take(),
            "reconnecting",
        )
        .await;
        if state.retry_at.is_some_and(|t| Instant::now() < t) {
            return Err(PublishError::Unavailable(
                "reconnecting (backing off)".into(),
            ));
        }
        match self.open().await {
            Ok((connection, channel)) => {
                if state.failures > 0 {
                    tracing::info!(publisher = %self.name, "RabbitMQ connection restored");
                }
                state.connection = Some(connection);
                state.channel = Some(channel.clone());
                state.generation += 1;
                state.failures = 0;
                state.retry_at = None;
                Ok((channel, state.generation))
            }
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                let backoff =
                    Duration::from_millis(100u64.saturating_mul(1 << state.failures.min(6)))
                        .min(MAX_BACKOFF);
                state.retry_at = Some(Instant::now() + backoff);
                tracing::warn!(publisher = %self.name, error = %e, ?backoff, "cannot connect to RabbitMQ");
                Err(PublishError::Unavailable(e.to_string()))
            }
        }
    }

    async fn open(&self) -> Result<(Connection, Channel), lapin::Error> {
        let connection = connect(&self.url, &self.name).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        (self.declare)(channel.clone()).await?;
        Ok((connection, channel))
    }

    /// Forgets the channel of `generation` so the next publish reconnects (a newer channel
    /// is left alone).
    async fn invalidate(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state.generation == generation {
            state.channel = None;
        }
    }

    /// Closes the channel, then the connection, and refuses to reconnect: call after the
    /// last publish (shutdown).
    pub async fn close(&self) {
        let mut state = self.state.lock().await;
        state.closed = true;
        close_in_order(
            state.channel.take(),
            state.connection.take(),
            "shutting down",
        )
        .await;
    }

    /// Publishes a persistent message and waits for the broker's confirm. `Ok` means the
    /// broker has it; with `mandatory`, also that it reached at least one queue (an
    /// unroutable message is an error instead of being dropped).
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        message_id: &str,
        headers: &[(&str, &str)],
        mandatory: bool,
    ) -> Result<(), PublishError> {
        let (channel, generation) = self.channel().await?;
        let mut table = FieldTable::default();
        for (k, v) in headers {
            table.insert(
                ShortString::from(k.to_string()),
                AMQPValue::LongString(LongString::from(v.to_string())),
            );
        }
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/x-protobuf"))
            .with_message_id(ShortString::from(message_id.to_owned()))
            .with_headers(table);
        let options = BasicPublishOptions {
            mandatory,
            ..BasicPublishOptions::default()
        };
        let confirm = tokio::time::timeout(self.confirm_timeout, async {
            channel
                .basic_publish(exchange, routing_key, options, payload, properties)
                .await?
                .await
        })
        .await;
        let result = match confirm {
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(_)))) => {
                Err(PublishError::Unroutable(routing_key.to_owned()))
            }
            Ok(Ok(Confirmation::Nack(_))) => Err(PublishError::Nacked),
            Ok(Ok(Confirmation::NotRequested)) => {
                Err(PublishError::Channel("confirms not enabled".into()))
            }
            Ok(Err(e)) => {
                self.invalidate(generation).await;
                Err(PublishError::Channel(e.to_string()))
            }
            Err(_) => {
                self.invalidate(generation).await;
                Err(PublishError::ConfirmTimeout(self.confirm_timeout))
            }
        };
        let outcome = match &result {
            Ok(()) => "confirmed",
            Err(PublishError::Unavailable(_)) => "unavailable",
            Err(PublishError::Nacked) => "nacked",
            Err(PublishError::Unroutable(_)) => "unroutable",
            Err(PublishError::ConfirmTimeout(_)) => "timeout",
            Err(PublishError::Channel(_)) => "channel_error",
        };
        metrics::counter!("amqp_publish_total", "exchange" => exchange.to_owned(), "outcome" => outcome).increment(1);
        result
    }

    /// Keeps the connection up in the background (so readiness is accurate and the first
    /// publish after an outage does not pay the reconnect), until `stop` completes. It does
    /// not close the connection: call [`Publisher::close`] after the last publish.
    pub fn spawn_keepalive(&self, stop: impl Future<Output = ()> + Send + 'static) {
        let publisher = self.clone();
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                publisher.ensure_connected().await;
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        });
    }
}
