//! RabbitMQ in tests: a guard that deletes a test's queues and exchanges, queue inspection,
//! a listener for order events, and a TCP proxy that plays a broker outage.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

use crate::services::{amqp_url, require_rabbitmq};

/// Deletes a test's queues and exchanges (those of its prefix) when dropped: when the test
/// ends, also when it fails.
#[derive(Debug)]
pub struct AmqpCleanup {
    /// The test's topology.
    pub topology: messaging::Topology,
}

impl AmqpCleanup {
    /// Cleans up the names under `prefix`.
    pub fn new(prefix: impl Into<String>) -> AmqpCleanup {
        AmqpCleanup {
            topology: messaging::Topology::new(prefix.into()),
        }
    }
}

impl Drop for AmqpCleanup {
    fn drop(&mut self) {
        // Drop cannot await, and may run inside a runtime: a thread with its own runtime.
        let topology = self.topology.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(conn) = messaging::connect(&amqp_url(), "tests-cleanup").await else {
                    return;
                };
                let Ok(ch) = conn.create_channel().await else {
                    return;
                };
                topology.delete_all(&ch).await;
                let _ = conn.close(200, "cleanup").await;
            });
        })
        .join();
    }
}

/// A queue as the broker sees it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    /// Messages ready for delivery.
    pub messages: u32,
    /// Consumers attached.
    pub consumers: u32,
}

/// The queue `name`, or `None` when it does not exist (yet).
pub async fn queue_state(name: &str) -> Option<QueueState> {
    let conn = require_rabbitmq().await;
    let ch = conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    // A passive declare of a missing queue closes the channel (and is an error).
    let state = ch
        .queue_declare(name, passive, FieldTable::default())
        .await
        .ok()
        .map(|q| QueueState {
            messages: q.message_count(),
            consumers: q.consumer_count(),
        });
    let _ = conn.close(200, "inspected").await;
    state
}

/// (routing key, body) of every event seen.
pub type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Collects every event published to the orders exchange (bound before anything is paid).
#[derive(Debug)]
pub struct OrderEvents {
    /// Everything seen so far.
    pub seen: Seen,
    _conn: lapin::Connection,
}

impl OrderEvents {
    /// Binds a private queue to `topology`'s orders exchange and starts collecting.
    pub async fn listen(topology: &messaging::Topology) -> OrderEvents {
        let conn = require_rabbitmq().await;
        let ch = conn.create_channel().await.unwrap();
        topology.declare_orders_exchange(&ch).await.unwrap();
        let private = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let q = ch
            .queue_declare("", private, FieldTable::default())
            .await
            .unwrap();
        ch.queue_bind(
            q.name().as_str(),
            &topology.orders_exchange(),
            "#",
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
        let no_ack = BasicConsumeOptions {
            no_ack: true,
            ..BasicConsumeOptions::default()
        };
        let mut consumer = ch
            .basic_consume(
                q.name().as_str(),
                "test-listener",
                no_ack,
                FieldTable::default(),
            )
            .await
            .unwrap();
        let seen: Seen = Seen::default();
        let sink = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                sink.lock()
                    .unwrap()
                    .push((d.routing_key.to_string(), d.data));
            }
        });
        OrderEvents { seen, _conn: conn }
    }

    /// How many events with this routing key were seen.
    pub fn count(&self, routing_key: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k == routing_key)
            .count()
    }
}

/// A TCP proxy to RabbitMQ that a test can cut and restore, to play a broker outage
/// without stopping the shared broker.
#[derive(Debug)]
pub struct Proxy {
    /// Where to connect instead of the broker.
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    /// A proxy to `upstream`, accepting connections.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (up2, gen2) = (Arc::clone(&up), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            up,
            generation,
        }
    }

    /// Cuts every connection and refuses new ones.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accepts connections again.
    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
