//! The background work of order-svc: the payment-event consumer, the outbox relay, the
//! expiry sweeper and the active query. Each has a single-step function that tests drive;
//! [`Workers::spawn`] runs them all in loops until shutdown.

use std::sync::Arc;
use std::time::Duration;

use messaging::{Message, PAYMENT_FAILED, PAYMENT_SUCCEEDED, Publisher, Topology, Verdict};
use prost::Message as _;
use proto::events::v1::{PaymentFailed, PaymentSucceeded};
use secrecy::{ExposeSecret, SecretString};
use service_runtime::shutdown::Shutdown;
use service_runtime::telemetry::{new_trace_id, with_trace_id};
use sqlx::Row;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::AppError;
use crate::orders::Orders;
use crate::settings::Settings;
use crate::transitions::{Applied, PaymentFacts, Source};

/// Orders settled or relayed per step.
const BATCH: usize = 50;

/// The workers, sharing the use cases.
#[derive(Debug, Clone)]
pub struct Workers {
    orders: Arc<Orders>,
    publisher: Publisher,
    topology: Topology,
    amqp_url: SecretString,
    prefetch: u16,
    delivery_limit: i32,
    sweep_interval: Duration,
    retry_delay: Duration,
    /// Set once the consumer has declared its queue: from then on payment events have
    /// somewhere to go (notify-svc publishes with `mandatory`).
    topology_declared: Arc<std::sync::atomic::AtomicBool>,
}

impl Workers {
    /// Wires the workers.
    pub fn new(orders: Arc<Orders>, settings: &Settings) -> Self {
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
            orders,
            publisher,
            topology,
            amqp_url: settings.amqp_url.clone(),
            prefetch: settings.amqp_prefetch,
            delivery_limit: settings.amqp_delivery_limit,
            sweep_interval: settings.sweep_interval,
            retry_delay: settings.amqp_retry_delay,
            topology_declared: Arc::default(),
        }
    }

    /// Handles one payment event and says what to do with the message.
    pub async fn handle_event(&self, message: Message) -> Verdict {
        let trace_id = message
            .header("x-trace-id")
            .filter(|t| !t.is_empty())
            .unwrap_or_else(new_trace_id);
        let span = tracing::info_span!("payment_event", trace_id = %trace_id, routing_key = %message.routing_key, redelivered = message.redelivered);
        let work = async {
            match message.routing_key.as_str() {
                PAYMENT_SUCCEEDED => self.payment_succeeded(&message).await,
                PAYMENT_FAILED => match PaymentFailed::decode(message.data.as_slice()) {
                    Ok(e) => {
                        tracing::info!(out_trade_no = %e.out_trade_no, err_code = %e.err_code, "WeChat reports a failed payment; the order stays payable");
                        Verdict::Ack
                    }
                    Err(e) => dead_letter("undecodable", &e),
                },
                other => dead_letter("unknown_routing_key", &other),
            }
        };
        with_trace_id(trace_id, work.instrument(span)).await
    }

    async fn payment_succeeded(&self, message: &Message) -> Verdict {
        let event = match PaymentSucceeded::decode(message.data.as_slice()) {
            Ok(e) => e,
            Err(e) => return dead_letter("undecodable", &e),
        };
        let facts = PaymentFacts {
            out_trade_no: event.out_trade_no,
            transaction_id: event.transaction_id,
            amount_fen: event.amount_fen,
            appid: event.appid,
            mch_id: event.mch_id,
            paid_at_unix: event.paid_at_unix,
            event_id: Some(event.event_id),
            source: Source::Notification,
        };
        match self.orders.apply_payment(&facts).await {
            Ok(Applied::Paid(_)) => Verdict::Ack,
            Ok(Applied::Duplicate(_) | Applied::AlreadyRecorded) => {
                tracing::info!(out_trade_no = %facts.out_trade_no, "duplicate payment event: nothing to do");
                metrics::counter!("payment_events_total", "outcome" => "duplicate").increment(1);
                Verdict::Ack
            }
            Ok(Applied::Review(_, reason) | Applied::Rejected(reason)) => {
                dead_letter(reason, &facts.out_trade_no)
            }
            Err(e) => {
                tracing::warn!(out_trade_no = %facts.out_trade_no, error = %e, delay = ?self.retry_delay, "payment event not applied; it will be redelivered");
                metrics::counter!("payment_events_total", "outcome" => "retry").increment(1);
                // A pause before giving it back, so a short database outage does not burn the
                // delivery limit in milliseconds.
                tokio::time::sleep(self.retry_delay).await;
                Verdict::Retry
            }
        }
    }

    /// Publishes up to a batch of unpublished outbox events, with confirms; rows are locked
    /// with `FOR UPDATE SKIP LOCKED`, so several replicas never publish the same batch at
    /// once. Returns how many were published.
    pub async fn relay_once(&self) -> Result<usize, AppError> {
        let mut tx = self.orders.store().begin().await?;
        let rows = sqlx::query(
            "SELECT id, routing_key, payload, trace_id FROM outbox WHERE published_at IS NULL
             ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::try_from(BATCH).unwrap_or(50))
        .fetch_all(&mut *tx)
        .await?;
        let mut published: Vec<Uuid> = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = row.try_get("id")?;
            let routing_key: String = row.try_get("routing_key")?;
            let payload: Vec<u8> = row.try_get("payload")?;
            let trace_id: String = row.try_get("trace_id")?;
            let sent = self
                .publisher
                .publish(
                    &self.topology.orders_exchange(),
                    &routing_key,
                    &payload,
                    &id.to_string(),
                    &[("x-trace-id", &trace_id), ("event-type", &routing_key)],
                    false,
                )
                .await;
            match sent {
                Ok(()) => published.push(id),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay paused: event not confirmed");
                    break;
                }
            }
        }
        if !published.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
                .bind(&published)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(published.len())
    }

    /// Closes the outbox publisher (after the relay's last step).
    pub async fn close(&self) {
        self.publisher.close().await;
    }

    /// Whether the payment queue has been declared (it stays declared: durable).
    pub fn topology_declared(&self) -> bool {
        self.topology_declared
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// One sweep of expired orders.
    pub async fn expire_once(&self) -> Result<usize, AppError> {
        self.orders.expire_once(BATCH).await
    }

    /// One round of active queries.
    pub async fn query_once(&self) -> Result<usize, AppError> {
        self.orders
            .query_once(i64::try_from(BATCH).unwrap_or(50))
            .await
    }

    /// Runs the consumer and the three loops until `stop` is triggered.
    pub fn spawn(&self, stop: &Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        self.publisher.spawn_keepalive(stop.wait());
        let consumer = self.clone();
        let queue = self.topology.order_payments_queue();
        let (topology, limit) = (self.topology.clone(), self.delivery_limit);
        let declared = Arc::clone(&self.topology_declared);
        tasks.push(tokio::spawn(messaging::run_consumer(
            self.amqp_url.expose_secret().to_owned(),
            "order-svc".to_owned(),
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
        tasks.push(self.every(
            "outbox relay",
            Duration::from_millis(200),
            stop,
            |w| async move { w.relay_once().await },
        ));
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
        tasks
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
                    tracing::warn!(worker = name, error = %e, "worker step failed; retrying next period");
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

fn dead_letter(reason: &'static str, detail: &dyn std::fmt::Display) -> Verdict {
    tracing::error!(reason, %detail, "payment event dead-lettered");
    metrics::counter!("payment_events_dead_lettered_total", "reason" => reason).increment(1);
    Verdict::DeadLetter
}
