//! The outbox relay against the real RabbitMQ: an event no consumer is bound for is kept in
//! the unrouted queue behind the orders exchange's alternate exchange, never dropped; a bound
//! consumer gets it instead.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use support::*;

/// Writes one `order.paid` event to the outbox, as a transition would.
async fn an_outbox_event(s: &Stack) {
    s.sql(&format!(
        "INSERT INTO outbox (id, routing_key, payload) VALUES ('{}', 'order.paid', '\\x0a01')",
        uuid::Uuid::now_v7()
    ))
    .await;
}

fn without_workers() -> Options {
    Options {
        workers: false,
        ..Options::default()
    }
}

async fn unrouted(s: &Stack) -> Option<u32> {
    queue_state(&s.topology.orders_unrouted_queue())
        .await
        .map(|q| q.messages)
}

#[tokio::test]
async fn an_event_nobody_is_bound_for_lands_in_the_unrouted_queue() {
    let s = stack_with(without_workers()).await;
    an_outbox_event(&s).await;
    assert_eq!(s.workers().relay_once().await.unwrap(), 1);
    wait_until(PATIENCE, "the event is in the unrouted queue", || async {
        unrouted(&s).await == Some(1)
    })
    .await;
    assert_eq!(
        s.sql_count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn the_backlog_gauges_count_what_waits_for_the_relay_and_for_an_operator() {
    let s = stack_with(without_workers()).await;
    let empty = s.workers().sample_backlog().await.unwrap();
    assert_eq!((empty.in_review, empty.outbox_pending), (0, 0));
    assert!(empty.outbox_oldest_seconds.abs() < f64::EPSILON);
    an_outbox_event(&s).await;
    s.sql("UPDATE outbox SET created_at = now() - interval '90 seconds'")
        .await;
    let waiting = s.workers().sample_backlog().await.unwrap();
    assert_eq!(waiting.outbox_pending, 1);
    assert!(
        (90.0..600.0).contains(&waiting.outbox_oldest_seconds),
        "{waiting:?}"
    );
    assert_eq!(s.workers().relay_once().await.unwrap(), 1);
    let relayed = s.workers().sample_backlog().await.unwrap();
    assert_eq!(relayed.outbox_pending, 0);
}

#[tokio::test]
async fn a_wake_up_given_while_the_relay_is_busy_is_kept_for_its_next_wait() {
    let s = stack_with(without_workers()).await;
    let pool = sqlx::PgPool::connect(&s.database_url).await.unwrap();
    let store = order_svc::store::Store::new(pool);
    // A wake-up given while no relay waits is kept for the next wait.
    store.outbox_committed();
    tokio::time::timeout(PATIENCE, store.outbox_committed_since())
        .await
        .expect("the relay is woken");
}

#[tokio::test]
async fn a_full_batch_is_published_with_pipelined_confirms_in_one_step() {
    let s = stack_with(without_workers()).await;
    let events = OrderEvents::listen(&s.topology).await;
    s.sql(
        "INSERT INTO outbox (id, routing_key, payload)
         SELECT gen_random_uuid(), 'order.paid', '\\x0a01' FROM generate_series(1, 600)",
    )
    .await;
    assert_eq!(s.workers().relay_once().await.unwrap(), 500);
    assert_eq!(s.workers().relay_once().await.unwrap(), 100);
    assert_eq!(s.workers().relay_once().await.unwrap(), 0);
    s.wait_events(&events, "order.paid", 600).await;
    assert_eq!(
        s.sql_count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn an_event_with_a_bound_queue_lands_there_not_in_the_unrouted_queue() {
    let s = stack_with(without_workers()).await;
    let events = OrderEvents::listen(&s.topology).await;
    an_outbox_event(&s).await;
    assert_eq!(s.workers().relay_once().await.unwrap(), 1);
    s.wait_events(&events, "order.paid", 1).await;
    assert_eq!(unrouted(&s).await, Some(0));
}

#[tokio::test]
async fn an_event_no_queue_at_all_takes_stays_in_the_outbox() {
    let s = stack_with(without_workers()).await;
    an_outbox_event(&s).await;
    assert_eq!(s.workers().relay_once().await.unwrap(), 1);
    // The unrouted queue disappears while the relay's channel stays open: the broker now has
    // nowhere to put an order event and, because the relay publishes `mandatory`, says so.
    let conn = require_rabbitmq().await;
    let ch = conn.create_channel().await.unwrap();
    ch.queue_delete(&s.topology.orders_unrouted_queue(), Default::default())
        .await
        .unwrap();
    an_outbox_event(&s).await;
    assert_eq!(s.workers().relay_once().await.unwrap(), 0);
    assert_eq!(
        s.sql_count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await,
        1
    );
}
