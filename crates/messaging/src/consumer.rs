//! A consumer loop: manual acks, up to a prefetch's worth of deliveries handled at once (each
//! settled when its own handling ends), reconnection with backoff, and a clean stop that
//! finishes the messages in hand and acks nothing unfinished.

use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures_util::future::Fuse;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::acker::Acker;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};

use crate::connection::{close_in_order, connect};

/// One delivered message.
#[derive(Debug, Clone)]
pub struct Message {
    /// The body.
    pub data: Vec<u8>,
    /// The routing key it was published with.
    pub routing_key: String,
    /// Whether the broker delivered it before.
    pub redelivered: bool,
    /// Its properties (message id, headers, ...).
    pub properties: BasicProperties,
}

impl Message {
    /// A string header.
    pub fn header(&self, name: &str) -> Option<String> {
        let headers = self.properties.headers().as_ref()?;
        match headers.inner().get(name)? {
            AMQPValue::LongString(s) => Some(s.to_string()),
            AMQPValue::ShortString(s) => Some(s.to_string()),
            _ => None,
        }
    }

    /// The message id.
    pub fn message_id(&self) -> Option<String> {
        self.properties
            .message_id()
            .as_ref()
            .map(ToString::to_string)
    }
}

/// What to do with a message once handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Done (applied, or a harmless duplicate).
    Ack,
    /// A passing failure: give it back for redelivery (the queue's delivery limit eventually
    /// dead-letters a message that keeps failing).
    Retry,
    /// Must not be applied: to the dead-letter queue.
    DeadLetter,
}

/// Consumes `queue` until `stop` completes, reconnecting with backoff. `setup` declares the
/// topology on each new channel; `handle` decides each message's fate, for up to `prefetch`
/// messages at once (so it must be correct when two deliveries about the same thing run
/// together). Once `stop` completes no new delivery is taken; the messages in hand are
/// finished and settled first.
pub async fn run_consumer<S, SF, H, HF>(
    url: String,
    name: String,
    queue: String,
    prefetch: u16,
    setup: S,
    handle: H,
    stop: impl Future<Output = ()>,
) where
    S: Fn(Channel) -> SF,
    SF: Future<Output = Result<(), lapin::Error>>,
    H: Fn(Message) -> HF,
    HF: Future<Output = Verdict>,
{
    // Polled by every session and every backoff: fused, so it is never polled after it
    // completed (the loop ends then anyway).
    let stop = futures_util::FutureExt::fuse(stop);
    tokio::pin!(stop);
    let mut failures: u32 = 0;
    loop {
        if completed(stop.as_mut()).await {
            break;
        }
        match session(
            &url,
            &name,
            &queue,
            prefetch,
            &setup,
            &handle,
            stop.as_mut(),
        )
        .await
        {
            Ok(()) => break,
            Err(e) => {
                failures = failures.saturating_add(1);
                let backoff = Duration::from_millis(200u64.saturating_mul(1 << failures.min(5)))
                    .min(Duration::from_secs(5));
                tracing::warn!(consumer = %name, error = %e, ?backoff, "consumer disconnected; reconnecting");
                tokio::select! {
                    biased;
                    () = &mut stop => break,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    tracing::info!(consumer = %name, "consumer stopped");
}

/// Whether `stop` has completed, without waiting for it.
async fn completed(mut stop: Pin<&mut impl Future<Output = ()>>) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(stop.as_mut().poll(cx).is_ready())).await
}

async fn session<S, SF, H, HF>(
    url: &str,
    name: &str,
    queue: &str,
    prefetch: u16,
    setup: &S,
    handle: &H,
    mut stop: Pin<&mut Fuse<impl Future<Output = ()>>>,
) -> Result<(), lapin::Error>
where
    S: Fn(Channel) -> SF,
    SF: Future<Output = Result<(), lapin::Error>>,
    H: Fn(Message) -> HF,
    HF: Future<Output = Verdict>,
{
    let connection = connect(url, name).await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    setup(channel.clone()).await?;
    let mut consumer = channel
        .basic_consume(
            queue,
            name,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(consumer = %name, queue, prefetch, "consuming");
    // Up to `prefetch` deliveries are handled at once (the broker sends no more unacked than
    // that); each is settled as soon as its own handling ends, in whatever order they finish.
    let limit = usize::from(prefetch.max(1));
    let mut in_flight = FuturesUnordered::new();
    loop {
        // Biased: when the stop and a delivery are both ready, the stop wins; finished work
        // is settled before a new delivery is taken.
        tokio::select! {
            biased;
            () = &mut stop => {
                // Stop taking deliveries; finish and settle what is in hand. What was
                // prefetched but not started is not acked and goes back to the queue when the
                // channel closes.
                let _ = channel.basic_cancel(name, BasicCancelOptions::default()).await;
                while let Some((acker, verdict)) = in_flight.next().await {
                    settle(queue, &acker, verdict).await?;
                }
                drop(consumer);
                close_in_order(Some(channel), Some(connection), "shutting down").await;
                return Ok(());
            }
            Some((acker, verdict)) = in_flight.next(), if !in_flight.is_empty() => {
                settle(queue, &acker, verdict).await?;
            }
            next = consumer.next(), if in_flight.len() < limit => {
                let delivery = match next {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => return Err(e),
                    None => return Err(lapin::Error::InvalidChannelState(lapin::ChannelState::Closed)),
                };
                // The body moves into the message; the acker travels with the handling to
                // settle it once the verdict is known.
                let lapin::message::Delivery { data, routing_key, redelivered, properties, acker, .. } = delivery;
                let message = Message { data, routing_key: routing_key.to_string(), redelivered, properties };
                let handling = handle(message);
                in_flight.push(async move { (acker, handling.await) });
            }
        }
    }
}

/// Acks, requeues or dead-letters one delivery by its verdict.
async fn settle(queue: &str, acker: &Acker, verdict: Verdict) -> Result<(), lapin::Error> {
    let label = match verdict {
        Verdict::Ack => {
            acker.ack(BasicAckOptions::default()).await?;
            "ack"
        }
        Verdict::Retry => {
            acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await?;
            "retry"
        }
        Verdict::DeadLetter => {
            acker.reject(BasicRejectOptions { requeue: false }).await?;
            "dead_letter"
        }
    };
    metrics::counter!("amqp_consumed_total", "queue" => queue.to_owned(), "verdict" => label)
        .increment(1);
    Ok(())
}
