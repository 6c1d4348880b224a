//! Dead letters: the events order-svc's queue gave up on (refused, or failing past the
//! delivery limit) are taken off its dead-letter queue into PostgreSQL (`keep`, acked only
//! after the row is in), so operators can read them (`list`) and send one back through the
//! normal consumer path (`replay`): the consumer's own idempotency makes a second replay, or
//! a replay of something applied meanwhile, change nothing.

use std::sync::Arc;
use std::time::Duration;

use messaging::{EVENT_TYPE_HEADER, Message, Publisher, Topology, Verdict};
use prost::Message as _;
use proto::events::v1::{PaymentFailed, PaymentSucceeded, RefundSettled};
use service_runtime::telemetry::{TRACE_ID_HEADER, error_chain};

use crate::error::AppError;
use crate::store::Store;
use crate::store::audit::AdminAction;
use crate::store::dead_letters::{DeadLetter, NewDeadLetter};

/// How many dead letters the admin API lists at most.
pub const LIST_LIMIT: u32 = 200;

/// The dead-letter use cases.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    store: Store,
    publisher: Publisher,
    topology: Topology,
}

/// The order number an event is about, if its body says.
pub fn out_trade_no_of(routing_key: &str, body: &[u8]) -> Option<String> {
    let number = match routing_key {
        messaging::PAYMENT_SUCCEEDED => PaymentSucceeded::decode(body).ok()?.out_trade_no,
        messaging::PAYMENT_FAILED => PaymentFailed::decode(body).ok()?.out_trade_no,
        messaging::REFUND_SETTLED => RefundSettled::decode(body).ok()?.out_trade_no,
        _ => return None,
    };
    Some(number).filter(|n| !n.is_empty())
}

impl DeadLetters {
    /// Over `store`, replaying to the payments exchange of `topology` at `amqp_url`.
    pub fn new(store: Store, amqp_url: &str, topology: Topology) -> Self {
        let declare = topology.clone();
        let publisher = Publisher::new(
            amqp_url,
            "order-svc-replay",
            Duration::from_secs(5),
            Arc::new(move |channel| {
                let topology = declare.clone();
                Box::pin(async move { topology.declare_payments_exchange(&channel).await })
            }),
        );
        DeadLetters {
            store,
            publisher,
            topology,
        }
    }

    /// Keeps one message of the dead-letter queue: acked once its row is committed, given
    /// back if the database cannot take it.
    pub async fn keep(&self, message: &Message) -> Verdict {
        let reason = message
            .header("x-first-death-reason")
            .unwrap_or_else(|| "unknown".to_owned());
        let message_id = message.message_id();
        let trace_id = message.header(TRACE_ID_HEADER);
        let letter = NewDeadLetter {
            routing_key: &message.routing_key,
            message_id: message_id.as_deref(),
            body: &message.data,
            reason: &reason,
            trace_id: trace_id.as_deref(),
        };
        match self.store.keep_dead_letter(&letter).await {
            Ok(id) => {
                tracing::warn!(dead_letter = id, routing_key = %message.routing_key, reason, out_trade_no = out_trade_no_of(&message.routing_key, &message.data).unwrap_or_default(), "dead letter kept for operators");
                metrics::counter!("dead_letters_kept_total").increment(1);
                Verdict::Ack
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "could not keep a dead letter; it stays in the queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                Verdict::Retry
            }
        }
    }

    /// The newest dead letters.
    pub async fn list(&self) -> Result<Vec<DeadLetter>, AppError> {
        Ok(self.store.dead_letters(LIST_LIMIT).await?)
    }

    /// Publishes dead letter `id` again, as it came (routing key, body, trace id), to the
    /// payments exchange with confirm; audited.
    pub async fn replay(
        &self,
        operator: &str,
        id: i64,
        reason: &str,
    ) -> Result<DeadLetter, AppError> {
        let letter = self
            .store
            .dead_letter(id)
            .await?
            .ok_or(AppError::DeadLetterNotFound)?;
        let message_id = letter
            .message_id
            .clone()
            .unwrap_or_else(|| format!("dead-letter-{id}"));
        let trace_id = letter.trace_id.clone().unwrap_or_default();
        let published = self
            .publisher
            .publish(
                &self.topology.payments_exchange(),
                &letter.routing_key,
                &letter.body,
                &message_id,
                &[
                    (TRACE_ID_HEADER, &trace_id),
                    (EVENT_TYPE_HEADER, &letter.routing_key),
                ],
                true,
            )
            .await;
        let outcome = if published.is_ok() {
            "replayed"
        } else {
            "refused:broker_unavailable"
        };
        self.store
            .record_action(&AdminAction {
                operator,
                action: "replay_dead_letter",
                order_id: None,
                target: Some(&format!("dead-letter {id}")),
                reason,
                outcome,
            })
            .await?;
        published.map_err(|e| AppError::BrokerUnavailable(Box::new(e)))?;
        tracing::info!(dead_letter = id, operator, "dead letter replayed");
        self.store
            .dead_letter_replayed(id, operator)
            .await?
            .ok_or(AppError::DeadLetterNotFound)
    }

    /// Closes the replay publisher.
    pub async fn close(&self) {
        self.publisher.close().await;
    }
}
