//! The background work of order-svc: the payment-event consumer (`consumer`), the outbox
//! relay (`relay`), the expiry sweeper and the active query (both `crate::checkout`). Each
//! has a single-step function that tests drive; [`Workers::spawn`] runs them all in loops
//! until shutdown.

mod consumer;
mod relay;

use std::sync::Arc;
use std::time::Duration;

use messaging::{Publisher, Topology};
use secrecy::{ExposeSecret, SecretString};
use service_runtime::shutdown::Shutdown;
use service_runtime::telemetry::error_chain;

use crate::checkout::Checkout;
use crate::error::AppError;
use crate::settings::Settings;
use crate::store::Store;

/// How often the backlog gauges are sampled.
const BACKLOG_PERIOD: Duration = Duration::from_secs(5);

/// How often the daily reconciliation looks whether the previous day is due.
const RECONCILE_PERIOD: Duration = Duration::from_secs(60);

/// Dead letters taken off their queue at once.
const DEAD_LETTER_PREFETCH: u16 = 16;

/// Orders settled, queried or events relayed per step.
const BATCH: u32 = 50;

/// The workers, sharing the use cases.
#[derive(Debug, Clone)]
pub struct Workers {
    reconciler: Arc<crate::reconcile::Reconciler>,
    checkout: Arc<Checkout>,
    refunds: Arc<crate::refunds::Refunds>,
    dead_letters: Arc<crate::dead_letters::DeadLetters>,
    store: Store,
    publisher: Publisher,
    topology: Topology,
    amqp_url: SecretString,
    prefetch: u16,
    delivery_limit: i32,
    sweep_interval: Duration,
    retry_delay: Duration,
    /// The stop of the running consumer (set by [`Workers::spawn`]): ends the wait for a
    /// database that is down. Without it (tests driving single steps) the wait ends only
    /// when the database answers.
    stop: Option<Shutdown>,
    /// Set once the consumer has declared its queue: from then on payment events have
    /// somewhere to go (notify-svc publishes with `mandatory`).
    topology_declared: Arc<std::sync::atomic::AtomicBool>,
    /// Payment events being handled right now (the consumer handles up to its prefetch at
    /// once): the `payment_events_in_hand` gauge.
    in_hand: Arc<std::sync::atomic::AtomicUsize>,
}

impl Workers {
    /// Wires the workers.
    pub fn new(
        reconciler: Arc<crate::reconcile::Reconciler>,
        checkout: Arc<Checkout>,
        refunds: Arc<crate::refunds::Refunds>,
        dead_letters: Arc<crate::dead_letters::DeadLetters>,
        store: Store,
        settings: &Settings,
    ) -> Self {
        let topology = Topology::new(settings.amqp_prefix.clone());
        let declare_topology = topology.clone();
        let publisher = Publisher::new(
            settings.amqp_url.expose_secret(),
            "order-svc-outbox",
            Duration::from_secs(5),
            Arc::new(move |channel| {
                let topology = declare_topology.clone();
                Box::pin(async move { topology.declare_orders_exchange(&channel).await })
            }),
        );
        Workers {
            reconciler,
            checkout,
            refunds,
            dead_letters,
            store,
            publisher,
            topology,
            amqp_url: settings.amqp_url.clone(),
            prefetch: settings.amqp_prefetch,
            delivery_limit: settings.amqp_delivery_limit,
            sweep_interval: settings.sweep_interval,
            retry_delay: settings.amqp_retry_delay,
            stop: None,
            topology_declared: Arc::default(),
            in_hand: Arc::default(),
        }
    }

    /// Closes the outbox publisher (after the relay's last step) and the replay publisher.
    pub async fn close(&self) {
        self.publisher.close().await;
        self.dead_letters.close().await;
    }

    /// Whether the payment queue has been declared (it stays declared: durable).
    pub fn topology_declared(&self) -> bool {
        self.topology_declared
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// One sweep of expired orders.
    pub async fn expire_once(&self) -> Result<usize, AppError> {
        self.checkout.expire_once(BATCH as usize).await
    }

    /// One round of active queries.
    pub async fn query_once(&self) -> Result<usize, AppError> {
        self.checkout.query_once(BATCH).await
    }

    /// One round of the refund worker (resends refunds WeChat has not accepted, queries
    /// accepted ones).
    pub async fn refunds_once(&self) -> Result<usize, AppError> {
        self.refunds.work_once(BATCH).await
    }

    /// Runs the consumer and the loops until `stop` is triggered.
    pub fn spawn(&self, stop: &Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        self.publisher.spawn_keepalive(stop.wait());
        let mut consumer = self.clone();
        consumer.stop = Some(stop.clone());
        let queue = self.topology.order_payments_queue();
        let (topology, limit) = (self.topology.clone(), self.delivery_limit);
        let declared = Arc::clone(&self.topology_declared);
        tasks.push(tokio::spawn(messaging::run_consumer(
            self.amqp_url.expose_secret().to_owned(),
            crate::SERVICE.to_owned(),
            queue,
            self.prefetch,
            move |channel| {
                let (topology, declared) = (topology.clone(), Arc::clone(&declared));
                async move {
                    topology.declare_order_consumer(&channel, limit).await?;
                    declared.store(true, std::sync::atomic::Ordering::SeqCst);
                    Ok(())
                }
            },
            move |message| {
                let consumer = consumer.clone();
                async move { consumer.handle_event(message).await }
            },
            stop.wait(),
        )));
        // The dead-letter queue is emptied into PostgreSQL, where operators read and replay.
        let (topology, limit) = (self.topology.clone(), self.delivery_limit);
        let keeper = Arc::clone(&self.dead_letters);
        tasks.push(tokio::spawn(messaging::run_consumer(
            self.amqp_url.expose_secret().to_owned(),
            format!("{}-dead-letters", crate::SERVICE),
            self.topology.order_payments_dlq(),
            DEAD_LETTER_PREFETCH,
            move |channel| {
                let topology = topology.clone();
                async move { topology.declare_order_consumer(&channel, limit).await }
            },
            move |message| {
                let keeper = Arc::clone(&keeper);
                async move { keeper.keep(&message).await }
            },
            stop.wait(),
        )));
        tasks.push(tokio::spawn(self.clone().run_relay(stop.clone())));
        tasks.push(self.every(
            "expiry sweeper",
            self.sweep_interval,
            stop,
            |w| async move { w.expire_once().await },
        ));
        tasks.push(self.every(
            "active query",
            Duration::from_secs(1),
            stop,
            |w| async move { w.query_once().await },
        ));
        tasks.push(self.every(
            "refund worker",
            Duration::from_secs(1),
            stop,
            |w| async move { w.refunds_once().await },
        ));
        // The first look a period after start: a replica that just started (or restarts in
        // a loop) does not reach for WeChat's bill before anything else is up.
        let (workers, first_stop, daily_stop) = (self.clone(), stop.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            tokio::select! {
                () = first_stop.wait() => return,
                () = tokio::time::sleep(RECONCILE_PERIOD) => {}
            }
            let daily = workers.every(
                "reconciliation",
                RECONCILE_PERIOD,
                &daily_stop,
                |w| async move {
                    w.reconciler
                        .run_due_once(time::OffsetDateTime::now_utc())
                        .await
                },
            );
            let _ = daily.await;
        }));
        tasks.push(
            self.every("backlog gauges", BACKLOG_PERIOD, stop, |w| async move {
                let backlog = w.sample_backlog().await?;
                Ok(usize::try_from(backlog.outbox_pending).unwrap_or(usize::MAX))
            }),
        );
        tasks
    }

    /// The reconciliation (the admin API's, and tests').
    pub fn reconciler(&self) -> &crate::reconcile::Reconciler {
        &self.reconciler
    }

    /// How many payment events are being handled right now.
    pub fn events_in_hand(&self) -> usize {
        self.in_hand.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sets the backlog gauges: `orders_in_review`, `outbox_pending_events`,
    /// `outbox_oldest_pending_seconds` and `reconciliation_unhealed_differences` (every replica reports the same database; alert on
    /// `max`), and returns what it counted.
    pub async fn sample_backlog(&self) -> Result<crate::store::Backlog, AppError> {
        let backlog = self.store.backlog().await?;
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        {
            metrics::gauge!("orders_in_review").set(backlog.in_review as f64);
            metrics::gauge!("outbox_pending_events").set(backlog.outbox_pending as f64);
        }
        metrics::gauge!("outbox_oldest_pending_seconds").set(backlog.outbox_oldest_seconds);
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        metrics::gauge!("reconciliation_unhealed_differences")
            .set(backlog.unhealed_differences as f64);
        Ok(backlog)
    }

    fn every<F, Fut>(
        &self,
        name: &'static str,
        period: Duration,
        stop: &Shutdown,
        step: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn(Workers) -> Fut + Send + 'static,
        Fut: Future<Output = Result<usize, AppError>> + Send,
    {
        let (workers, stop) = (self.clone(), stop.clone());
        tokio::spawn(async move {
            let stopped = stop.wait();
            tokio::pin!(stopped);
            loop {
                if let Err(e) = step(workers.clone()).await {
                    tracing::warn!(worker = name, error = %error_chain(&e), "worker step failed; retrying next period");
                }
                tokio::select! {
                    () = &mut stopped => break,
                    () = tokio::time::sleep(period) => {}
                }
            }
            tracing::info!(worker = name, "stopped");
        })
    }
}
