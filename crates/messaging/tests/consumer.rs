//! `run_consumer`'s stop, against the real RabbitMQ: up to the prefetch's worth of messages
//! are handled at once; once the stop future completes, no new delivery is taken, the
//! messages in hand are finished and acked, and the rest stays in the queue.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use messaging::{Message, Topology, Verdict, run_consumer};
use test_support::{
    AmqpCleanup, amqp_url, dead_addr, queue_state, require_rabbitmq, unique_id, wait_until,
};
use tokio::sync::{oneshot, watch};

const PATIENCE: Duration = Duration::from_secs(10);

/// A test topology with order-svc's payments queue declared, holding `n` messages.
async fn queue_with(n: usize) -> (AmqpCleanup, Topology) {
    let cleanup = AmqpCleanup::new(format!("m{}.", unique_id()));
    let topology = cleanup.topology.clone();
    let conn = require_rabbitmq().await;
    let ch = conn.create_channel().await.unwrap();
    topology.declare_order_consumer(&ch, 5).await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    for i in 0..n {
        ch.basic_publish(
            "",
            &topology.order_payments_queue(),
            BasicPublishOptions::default(),
            format!("message {i}").as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let _ = conn.close(200, "filled").await;
    (cleanup, topology)
}

async fn ready_messages(topology: &Topology) -> u32 {
    queue_state(&topology.order_payments_queue())
        .await
        .unwrap()
        .messages
}

#[tokio::test]
async fn a_stop_while_handling_finishes_and_acks_the_messages_in_hand_and_takes_no_more() {
    let (_cleanup, topology) = queue_with(5).await;
    let (started, handled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (release_tx, release_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let consumer = tokio::spawn(run_consumer(
        amqp_url(),
        "consumer-test".to_owned(),
        topology.order_payments_queue(),
        // Two in hand at once: the broker sends no more unacked than the prefetch.
        2,
        |_| async { Ok(()) },
        {
            let (started, handled) = (Arc::clone(&started), Arc::clone(&handled));
            move |_: Message| {
                let (started, handled) = (Arc::clone(&started), Arc::clone(&handled));
                let mut release = release_rx.clone();
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    let _ = release.wait_for(|&go| go).await;
                    handled.fetch_add(1, Ordering::SeqCst);
                    Verdict::Ack
                }
            }
        },
        async {
            let _ = stop_rx.await;
        },
    ));
    wait_until(PATIENCE, "two messages are in hand at once", || async {
        match started.load(Ordering::SeqCst) {
            2 => Ok(()),
            n => Err(n),
        }
    })
    .await;
    stop_tx.send(()).unwrap();
    // The stop is seen, but the messages in hand are still being handled: they finish.
    release_tx.send(true).unwrap();
    tokio::time::timeout(PATIENCE, consumer)
        .await
        .expect("the consumer stops")
        .unwrap();
    assert_eq!(
        (
            started.load(Ordering::SeqCst),
            handled.load(Ordering::SeqCst)
        ),
        (2, 2),
        "both in hand were finished, no delivery after the stop"
    );
    // The two in hand were acked; the other three are still in the queue.
    wait_until(PATIENCE, "three messages are ready", || async {
        match ready_messages(&topology).await {
            3 => Ok(()),
            n => Err(n),
        }
    })
    .await;
}

#[tokio::test]
async fn a_stop_already_complete_ends_the_consumer_without_handling_anything() {
    let (_cleanup, topology) = queue_with(1).await;
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&handled);
    tokio::time::timeout(
        PATIENCE,
        run_consumer(
            amqp_url(),
            "consumer-test".to_owned(),
            topology.order_payments_queue(),
            10,
            |_| async { Ok(()) },
            move |_: Message| {
                counter.fetch_add(1, Ordering::SeqCst);
                async { Verdict::Ack }
            },
            std::future::ready(()),
        ),
    )
    .await
    .expect("the consumer stops");
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    assert_eq!(ready_messages(&topology).await, 1);
}

#[tokio::test]
async fn a_stop_ends_the_reconnect_backoff() {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let nowhere = format!("amqp://guest:guest@{}/%2f", dead_addr());
    let consumer = tokio::spawn(run_consumer(
        nowhere,
        "consumer-test".to_owned(),
        "nothing".to_owned(),
        10,
        |_| async { Ok(()) },
        |_: Message| async { Verdict::Ack },
        async {
            let _ = stop_rx.await;
        },
    ));
    stop_tx.send(()).unwrap();
    tokio::time::timeout(PATIENCE, consumer)
        .await
        .expect("the consumer stops while it cannot connect")
        .unwrap();
}
