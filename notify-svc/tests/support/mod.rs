//! What notify-svc's test files share: a prefix of their own, and an exclusive queue bound to
//! every routing key of that prefix's payments exchange on the real RabbitMQ.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use messaging::Topology;

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A number that differs between calls (the clock's nanoseconds).
pub fn rand_id() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

/// The events notify-svc publishes under its own prefix.
pub struct Sink {
    /// The exchange and queue prefix notify-svc must be given (`AMQP_PREFIX`).
    pub prefix: String,
    ch: lapin::Channel,
    queue: String,
    exchange: String,
}

impl Sink {
    /// A fresh prefix (`tag` names the test file), its payments exchange, and the queue.
    pub async fn start(tag: &str) -> Sink {
        let prefix = format!("{tag}{}-{:08x}.", std::process::id(), rand_id());
        let conn = messaging::connect(AMQP_URL, tag)
            .await
            .expect("RabbitMQ at 127.0.0.1:5672 (start it with scripts/ensure-services.sh)");
        let ch = conn.create_channel().await.unwrap();
        let topology = Topology::new(prefix.clone());
        topology.declare_payments_exchange(&ch).await.unwrap();
        let queue = format!("{prefix}sink");
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        };
        ch.queue_declare(&queue, exclusive, FieldTable::default())
            .await
            .unwrap();
        let exchange = topology.payments_exchange();
        ch.queue_bind(
            &queue,
            &exchange,
            "#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        Sink {
            prefix,
            ch,
            queue,
            exchange,
        }
    }

    /// The next published event, if any.
    pub async fn next(&self) -> Option<lapin::message::BasicGetMessage> {
        self.ch
            .basic_get(&self.queue, BasicGetOptions { no_ack: true })
            .await
            .unwrap()
    }

    /// Removes the queue and the exchange.
    pub async fn cleanup(self) {
        self.ch
            .queue_delete(&self.queue, QueueDeleteOptions::default())
            .await
            .unwrap();
        self.ch
            .exchange_delete(&self.exchange, Default::default())
            .await
            .unwrap();
    }
}
