//! Exchange, queue and routing-key names, and their declarations. Every declaration is
//! idempotent (same name, same arguments), so every replica declares at start.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

/// notify-svc → order-svc: WeChat confirmed a payment.
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
/// notify-svc → order-svc: WeChat reported a failed payment.
pub const PAYMENT_FAILED: &str = "payment.failed";
/// notify-svc → order-svc: WeChat reported a refund's final state.
pub const REFUND_SETTLED: &str = "refund.settled";
/// order-svc (outbox) → anyone: money went back to the payer.
pub const ORDER_REFUNDED: &str = "order.refunded";
/// order-svc (outbox) → anyone: an order became PAID.
pub const ORDER_PAID: &str = "order.paid";
/// order-svc (outbox) → anyone: an order was closed unpaid.
pub const ORDER_CLOSED: &str = "order.closed";
/// The message header naming the event type (its routing key), for consumers that read
/// several types from one queue.
pub const EVENT_TYPE_HEADER: &str = "event-type";

/// The names, all behind one prefix (empty in production; tests use one per test).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
}

fn durable_topic() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

fn quorum(dead_letter_exchange: Option<&str>, delivery_limit: Option<i32>) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    if let Some(dlx) = dead_letter_exchange {
        args.insert(
            ShortString::from("x-dead-letter-exchange"),
            AMQPValue::LongString(LongString::from(dlx)),
        );
    }
    if let Some(limit) = delivery_limit {
        args.insert(
            ShortString::from("x-delivery-limit"),
            AMQPValue::LongInt(limit),
        );
    }
    args
}

impl Topology {
    /// Names behind `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Topology {
            prefix: prefix.into(),
        }
    }

    /// Topic exchange of payment events (from notify-svc).
    pub fn payments_exchange(&self) -> String {
        format!("{}minipay.payments", self.prefix)
    }

    /// Topic exchange of order events (from order-svc's outbox).
    pub fn orders_exchange(&self) -> String {
        format!("{}minipay.orders", self.prefix)
    }

    /// The orders exchange's alternate exchange: where the broker sends an order event no
    /// queue is bound for (instead of dropping it).
    pub fn orders_unrouted_exchange(&self) -> String {
        format!("{}minipay.orders.unrouted", self.prefix)
    }

    /// The durable queue of order events nobody was bound for, kept for inspection or replay.
    pub fn orders_unrouted_queue(&self) -> String {
        format!("{}minipay.orders.unrouted", self.prefix)
    }

    /// order-svc's queue of payment events.
    pub fn order_payments_queue(&self) -> String {
        format!("{}order-svc.payments", self.prefix)
    }

    /// Where order-svc's rejected payment events go.
    pub fn order_payments_dlx(&self) -> String {
        format!("{}order-svc.payments.dlx", self.prefix)
    }

    /// order-svc's dead-letter queue.
    pub fn order_payments_dlq(&self) -> String {
        format!("{}order-svc.payments.dlq", self.prefix)
    }

    /// Declares the payments exchange (notify-svc and order-svc both do).
    pub async fn declare_payments_exchange(&self, channel: &Channel) -> Result<(), lapin::Error> {
        channel
            .exchange_declare(
                &self.payments_exchange(),
                ExchangeKind::Topic,
                durable_topic(),
                FieldTable::default(),
            )
            .await
    }

    /// Declares the orders exchange with its alternate exchange (fanout) and the durable
    /// queue behind it, so an event no consumer is bound for is kept, never dropped.
    pub async fn declare_orders_exchange(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let unrouted = self.orders_unrouted_exchange();
        channel
            .exchange_declare(
                &unrouted,
                ExchangeKind::Fanout,
                durable_topic(),
                FieldTable::default(),
            )
            .await?;
        let queue = self.orders_unrouted_queue();
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(&queue, durable, quorum(None, None))
            .await?;
        channel
            .queue_bind(
                &queue,
                &unrouted,
                "",
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut args = FieldTable::default();
        args.insert(
            ShortString::from("alternate-exchange"),
            AMQPValue::LongString(LongString::from(unrouted)),
        );
        channel
            .exchange_declare(
                &self.orders_exchange(),
                ExchangeKind::Topic,
                durable_topic(),
                args,
            )
            .await
    }

    /// Declares order-svc's consumer side: the payments exchange, the dead-letter exchange
    /// and queue, and the quorum queue bound to `payment.*` and `refund.*` that dead-letters
    /// after `delivery_limit` redeliveries.
    pub async fn declare_order_consumer(
        &self,
        channel: &Channel,
        delivery_limit: i32,
    ) -> Result<(), lapin::Error> {
        self.declare_payments_exchange(channel).await?;
        let dlx = self.order_payments_dlx();
        channel
            .exchange_declare(
                &dlx,
                ExchangeKind::Fanout,
                durable_topic(),
                FieldTable::default(),
            )
            .await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let dlq = self.order_payments_dlq();
        channel
            .queue_declare(&dlq, durable, quorum(None, None))
            .await?;
        channel
            .queue_bind(
                &dlq,
                &dlx,
                "",
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let queue = self.order_payments_queue();
        channel
            .queue_declare(&queue, durable, quorum(Some(&dlx), Some(delivery_limit)))
            .await?;
        for pattern in ["payment.*", "refund.*"] {
            channel
                .queue_bind(
                    &queue,
                    &self.payments_exchange(),
                    pattern,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// Deletes every queue and exchange of this topology (tests clean up their prefix).
    pub async fn delete_all(&self, channel: &Channel) {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        for queue in [
            self.order_payments_queue(),
            self.order_payments_dlq(),
            self.orders_unrouted_queue(),
        ] {
            let _ = channel
                .queue_delete(&queue, QueueDeleteOptions::default())
                .await;
        }
        for exchange in [
            self.payments_exchange(),
            self.orders_exchange(),
            self.orders_unrouted_exchange(),
            self.order_payments_dlx(),
        ] {
            let _ = channel
                .exchange_delete(&exchange, ExchangeDeleteOptions::default())
                .await;
        }
    }
}
