//! RabbitMQ for Minipay: the topology every service declares (idempotently) at start, a
//! publisher that waits for the broker's confirm and reconnects with backoff, and a consumer
//! loop with manual acks, a prefetch limit and reconnection.
//!
//! Event bodies are protobuf messages from `proto`; this crate only moves bytes.

mod connection;
mod consumer;
mod publisher;
mod topology;

pub use self::connection::{CONNECT_TIMEOUT, connect};
pub use self::consumer::{Message, Verdict, run_consumer};
pub use self::publisher::{Declare, PublishError, Publisher};
pub use self::topology::{
    EVENT_TYPE_HEADER, ORDER_CLOSED, ORDER_PAID, ORDER_REFUNDED, PAYMENT_FAILED, PAYMENT_SUCCEEDED,
    REFUND_SETTLED, Topology,
};
