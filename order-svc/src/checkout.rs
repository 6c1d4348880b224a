//! Checkout: the prepay, applying a payment, and settling unpaid orders (cancel on request,
//! the expiry sweep, the active query). Every status change goes through
//! `crate::transitions`; the cache hears about it after the commit. No connection or
//! transaction is held across a call to pay-gateway-svc: decide from a read, call, then
//! apply in a short transaction whose guarded UPDATE refuses a row that changed meanwhile.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proto::paygateway::v1::RequestPayment;
use time::OffsetDateTime;
use wechat_pay::OpenId;

use crate::cache::OrderCache;
use crate::domain::{
    CloseReason, ExpectedMerchant, Order, OrderId, OrderStatus, PaymentFacts, time_span,
};
use crate::error::AppError;
use crate::payments::{CloseOutcome, Payments};
use crate::store::{Owner, Store, StoreError, history};
use crate::transitions::{self, Applied, Claim};

/// Most notifications applied in one shared transaction (`Checkout::apply_notification`).
const MAX_TOGETHER: usize = 128;

/// A prepay_id is reused only while it has at least this long left.
const PREPAY_REUSE_MARGIN: Duration = Duration::from_secs(5 * 60);
/// WeChat needs at least this long between now and `time_expire`.
const MIN_PAY_WINDOW: Duration = Duration::from_secs(61);

/// How long a sweeper's claim on an expired order keeps other replicas away: far above the
/// three pay-gateway calls settling takes (each bounded by `PAY_GATEWAY_TIMEOUT`). A replica
/// that dies mid-settle delays that order by at most this long.
const SETTLE_LEASE: Duration = Duration::from_secs(120);

fn not_cancellable(status: OrderStatus) -> AppError {
    AppError::OrderNotPayable(format!("the order is {status}; it cannot be cancelled"))
}

/// How an unpaid order was settled.
#[derive(Debug)]
#[must_use]
pub enum Settled {
    /// Closed at WeChat (if it knew the order) and here.
    Closed(Order),
    /// WeChat says it was paid after all: it is PAID (or in REVIEW) now.
    Paid(Applied),
    /// It had already left PENDING.
    Unchanged,
}

impl Settled {
    /// The order as it is now, if settling changed it (what the cache must hear about).
    pub fn changed(&self) -> Option<&Order> {
        match self {
            Settled::Closed(o) => Some(o),
            Settled::Paid(applied) => applied.changed(),
            Settled::Unchanged => None,
        }
    }
}

/// One shared transaction of [`transitions::pay_together`].
async fn pay_together_once(
    store: &Store,
    claims: &[Claim<'_>],
    merchant: &ExpectedMerchant,
) -> Result<Vec<Option<Order>>, AppError> {
    let mut tx = store.begin().await?;
    let outcome = transitions::pay_together(&mut tx, claims, merchant).await?;
    tx.commit().await?;
    // Their ratio is the mean batch size.
    metrics::counter!("payment_batches_total").increment(1);
    metrics::counter!("payment_batch_notifications_total").increment(claims.len() as u64);
    Ok(outcome)
}

/// Whether `e` is a constraint that one of the claims broke (class 23: a payment whose
/// transaction id another order holds, say), so that the others may still share one.
fn broken_by_a_claim(e: &AppError) -> bool {
    matches!(e, AppError::Store(StoreError::Query(sqlx::Error::Database(db)))
        if db.code().is_some_and(|c| c.starts_with("23")))
}

/// Applies `claims` in shared transactions: all in one or, when one of them broke a
/// constraint, each half in its own, down to single claims, which are left to the
/// one-by-one path (it gives them their verdict). A poison event thus costs its batch about
/// twice log2(batch) more transactions, not one per notification. Any other failure (the
/// database is away, say) leaves the whole batch to the one-by-one path, which waits out
/// outages.
fn pay_splitting<'a>(
    store: &'a Store,
    claims: &'a [Claim<'a>],
    merchant: &'a ExpectedMerchant,
) -> std::pin::Pin<Box<dyn Future<Output = Vec<Option<Order>>> + Send + 'a>> {
    Box::pin(async move {
        match pay_together_once(store, claims, merchant).await {
            Ok(outcome) => {
                if outcome.iter().any(Option::is_some) {
                    store.outbox_committed();
                }
                outcome
            }
            Err(e) if claims.len() > 1 && broken_by_a_claim(&e) => {
                tracing::debug!(error = %service_runtime::telemetry::error_chain(&e), notifications = claims.len(), "a shared payment transaction broke a constraint; splitting it");
                metrics::counter!("payment_batches_split_total").increment(1);
                let (first, second) = claims.split_at(claims.len() / 2);
                let mut outcome = pay_splitting(store, first, merchant).await;
                outcome.extend(pay_splitting(store, second, merchant).await);
                outcome
            }
            Err(e) => {
                if !broken_by_a_claim(&e) {
                    tracing::warn!(error = %service_runtime::telemetry::error_chain(&e), notifications = claims.len(), "a shared payment transaction failed; applying its notifications one by one");
                }
                metrics::counter!("payment_batches_failed_total").increment(1);
                claims.iter().map(|_| None).collect()
            }
        }
    })
}

/// Settings of checkout.
#[derive(Debug, Clone)]
pub struct CheckoutSettings {
    /// The `body` WeChat shows the payer.
    pub description: String,
    /// The merchant every payment must be for.
    pub merchant: ExpectedMerchant,
    /// First active query this long after a prepay without notification.
    pub query_after: Duration,
    /// Longest gap between active queries.
    pub query_max_interval: Duration,
}

/// A notification waiting for a shared transaction, and where its outcome goes: the order
/// it paid, or `None` when it was left for a transaction of its own.
#[derive(Debug)]
struct Together {
    facts: PaymentFacts,
    trace_id: String,
    reply: tokio::sync::oneshot::Sender<Option<Order>>,
}

/// The checkout use cases, over the store, the cache and pay-gateway-svc.
#[derive(Debug, Clone)]
pub struct Checkout {
    store: Store,
    cache: OrderCache,
    payments: Payments,
    settings: CheckoutSettings,
    /// The queue of the task that applies notifications together, started on first use.
    together: Arc<OnceLock<tokio::sync::mpsc::Sender<Together>>>,
}

impl Checkout {
    /// Wires the use cases.
    pub fn new(
        store: Store,
        cache: OrderCache,
        payments: Payments,
        settings: CheckoutSettings,
    ) -> Self {
        Checkout {
            store,
            cache,
            payments,
            settings,
            together: Arc::default(),
        }
    }

    /// Applies a notification from the payment queue. The plain case (a PENDING order of
    /// this merchant that the payment matches) shares its transaction with the other
    /// notifications handled meanwhile ([`transitions::pay_together`]): one lock statement,
    /// one UPDATE, one outbox INSERT and one commit for all of them. Anything else, or a
    /// shared transaction that failed, goes through [`Checkout::apply_payment`] alone. Returns
    /// only after the change is committed.
    pub async fn apply_notification(&self, facts: &PaymentFacts) -> Result<Applied, AppError> {
        let Some(paid) = self.pay_together(facts).await else {
            return self.apply_payment(facts).await;
        };
        self.cache.put(&paid).await;
        metrics::counter!("orders_paid_total", "source" => facts.source.as_str()).increment(1);
        tracing::info!(order_id = %paid.id, transaction_id = %facts.transaction_id, source = facts.source.as_str(), "order paid");
        Ok(Applied::Paid(paid))
    }

    /// Hands `facts` to the shared-transaction task and waits for its commit: the order it
    /// paid, or `None` if it was left alone (or the task is gone).
    async fn pay_together(&self, facts: &PaymentFacts) -> Option<Order> {
        let queue = self.together.get_or_init(|| self.start_together());
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let job = Together {
            facts: facts.clone(),
            trace_id: service_runtime::telemetry::current_trace_id().unwrap_or_default(),
            reply,
        };
        queue.send(job).await.ok()?;
        outcome.await.ok().flatten()
    }

    /// Starts the task that applies notifications together: it takes whatever has queued up
    /// (at most [`MAX_TOGETHER`]) while the previous transaction ran, so the batches grow
    /// with the load and a lone notification waits for nobody. It ends when the last
    /// `Checkout` is dropped.
    fn start_together(&self) -> tokio::sync::mpsc::Sender<Together> {
        let (queue, mut jobs) = tokio::sync::mpsc::channel::<Together>(MAX_TOGETHER * 4);
        let (store, merchant) = (self.store.clone(), self.settings.merchant.clone());
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_TOGETHER);
            while jobs.recv_many(&mut batch, MAX_TOGETHER).await > 0 {
                let claims: Vec<Claim<'_>> = batch
                    .iter()
                    .map(|j| Claim {
                        facts: &j.facts,
                        trace_id: &j.trace_id,
                    })
                    .collect();
                let outcome = pay_splitting(&store, &claims, &merchant).await;
                drop(claims);
                let mut outcome = outcome.into_iter();
                for job in batch.drain(..) {
                    // A handler that gave up waiting (shutdown) leaves its event unacked: it
                    // comes back as a duplicate.
                    let _ = job.reply.send(outcome.next().flatten());
                }
            }
        });
        queue
    }

    /// The `wx.requestPayment` object for the caller's order: a fresh prepay, or the valid
    /// one the order already has, re-signed.
    #[tracing::instrument(skip_all, fields(order_id = %id, out_trade_no))]
    pub async fn pay(&self, openid: &OpenId, id: OrderId) -> Result<RequestPayment, AppError> {
        let order = self
            .store
            .order(id, &Owner::User(openid.clone()))
            .await?
            .ok_or(AppError::OrderNotFound)?;
        tracing::Span::current()
            .record("out_trade_no", tracing::field::display(&order.out_trade_no));
        if order.status != OrderStatus::Pending {
            return Err(AppError::OrderNotPayable(format!(
                "the order is {}",
                order.status
            )));
        }
        let now = OffsetDateTime::now_utc();
        if order.expires_at - now < time_span(MIN_PAY_WINDOW) {
            return Err(AppError::OrderNotPayable(
                "the order has expired or is about to".into(),
            ));
        }
        let reuse = match (&order.prepay_id, order.prepay_expires_at) {
            (Some(p), Some(exp)) if exp - now > time_span(PREPAY_REUSE_MARGIN) => Some(p.as_str()),
            _ => None,
        };
        let prepay = self
            .payments
            .create_prepay(&order, &self.settings.description, reuse)
            .await?;
        if reuse.is_none() {
            let recorded = self
                .store
                .set_prepay(
                    order.id,
                    &prepay.prepay_id,
                    prepay.expires_at,
                    self.settings.query_after,
                )
                .await?;
            if !recorded {
                return Err(AppError::OrderNotPayable(
                    "the order is no longer pending".into(),
                ));
            }
            tracing::info!("prepay created");
            self.step(
                order.id,
                "prepay",
                &format!("prepay {} created", prepay.prepay_id),
            )
            .await;
        } else {
            self.step(
                order.id,
                "prepay_reused",
                &format!("prepay {} signed again", prepay.prepay_id),
            )
            .await;
        }
        Ok(prepay.payment)
    }

    /// Applies a payment (from a notification or a query). A notification that contradicts
    /// its order (amount, merchant, currency, paid after close) changes nothing until WeChat
    /// was asked: its signed answer is the truth (`settle_contradiction`).
    pub async fn apply_payment(&self, facts: &PaymentFacts) -> Result<Applied, AppError> {
        match self.apply_in_tx(facts).await? {
            Applied::Contradicts(reason) => self.settle_contradiction(facts, reason).await,
            applied => Ok(applied),
        }
    }

    /// Applies a payment in its own short transaction; the cache is updated after the commit.
    async fn apply_in_tx(&self, facts: &PaymentFacts) -> Result<Applied, AppError> {
        let mut tx = self.store.begin().await?;
        let applied = transitions::apply_payment(&mut tx, facts, &self.settings.merchant).await?;
        history::record_by_number(
            &mut tx,
            &facts.out_trade_no,
            facts.source.as_str(),
            &transitions::describe(&applied, facts),
        )
        .await?;
        tx.commit().await?;
        if let Some(order) = applied.changed() {
            self.store.outbox_committed();
            self.cache.put(order).await;
        } else if let Applied::Duplicate(order) = &applied {
            // A repeat after a commit whose cache write was lost (the process died, the
            // commit's answer never came): the entry may still say PENDING. A fill writes
            // only if it is newer than what Redis holds.
            self.cache.fill(order).await;
        }
        Ok(applied)
    }

    /// A notification contradicted its order: asks WeChat (no connection held meanwhile).
    /// When WeChat says the same, its answer goes through the normal transition (and may put
    /// the order in REVIEW); otherwise WeChat's answer, if paid, is applied and the
    /// notification is recorded as an anomaly without changing the order.
    #[tracing::instrument(skip_all, fields(reason))]
    async fn settle_contradiction(
        &self,
        claim: &PaymentFacts,
        reason: &'static str,
    ) -> Result<Applied, AppError> {
        tracing::warn!(
            reason,
            "a notification contradicts the order; asking WeChat"
        );
        let truth = self.payments.paid_at_wechat(&claim.out_trade_no).await?;
        match truth {
            Some(truth) if truth.agrees_with(claim) => self.apply_in_tx(&truth).await,
            truth => {
                let truth = match truth {
                    Some(t) => Some(Box::new(self.apply_in_tx(&t).await?)),
                    None => None,
                };
                let mut tx = self.store.begin().await?;
                let first = transitions::record_refuted(&mut tx, claim, reason).await?;
                tx.commit().await?;
                Ok(Applied::Refuted {
                    reason,
                    first,
                    truth,
                })
            }
        }
    }

    /// Records a step of the order's history; a failure to record is logged, never the
    /// caller's failure (the change it describes stands).
    async fn step(&self, id: OrderId, kind: &str, detail: &str) {
        if let Err(e) = self.store.record_step(id, kind, detail).await {
            tracing::warn!(error = %service_runtime::telemetry::error_chain(&e), kind, "could not record an order's history step");
        }
    }

    /// Settles an unpaid order without holding a connection or a lock across WeChat's calls:
    /// asks WeChat (it may have been paid), closes it there, then applies the outcome in a
    /// short transaction. The close is a guarded UPDATE from `order`'s PENDING: an order that
    /// left PENDING meanwhile (paid, or settled by another request) is left alone.
    async fn settle_unpaid(&self, order: &Order, reason: CloseReason) -> Result<Settled, AppError> {
        // Asked even without a recorded prepay_id: a unified order may have succeeded at
        // WeChat while its answer was lost. An order WeChat never saw is simply not found.
        if let Some(facts) = self.payments.paid_at_wechat(&order.out_trade_no).await? {
            return Ok(Settled::Paid(self.apply_in_tx(&facts).await?));
        }
        if self.payments.close_payment(&order.out_trade_no).await? == CloseOutcome::AlreadyPaid {
            let facts = self
                .payments
                .paid_at_wechat(&order.out_trade_no)
                .await?
                .ok_or_else(|| {
                    AppError::internal("close order", "WeChat says paid, its query says not")
                })?;
            return Ok(Settled::Paid(self.apply_in_tx(&facts).await?));
        }
        let mut tx = self.store.begin().await?;
        let closed = transitions::close(&mut tx, order, reason).await?;
        tx.commit().await?;
        if let Some(closed) = &closed {
            self.store.outbox_committed();
            self.cache.put(closed).await;
        }
        Ok(closed.map_or(Settled::Unchanged, Settled::Closed))
    }

    /// Closes the caller's order on request (`POST /orders/{id}/cancel`).
    #[tracing::instrument(skip_all, fields(order_id = %id))]
    pub async fn cancel(&self, openid: &OpenId, id: OrderId) -> Result<Order, AppError> {
        let owner = Owner::User(openid.clone());
        let order = self
            .store
            .order(id, &owner)
            .await?
            .ok_or(AppError::OrderNotFound)?;
        match order.status {
            OrderStatus::Closed => return Ok(order),
            OrderStatus::Pending => {}
            other => return Err(not_cancellable(other)),
        }
        match self.settle_unpaid(&order, CloseReason::Cancelled).await? {
            Settled::Closed(closed) => Ok(closed),
            Settled::Paid(_) => Err(AppError::OrderNotPayable(
                "the order was paid; it cannot be cancelled".into(),
            )),
            // Settled meanwhile by another request or the sweeper: answer with what it is.
            Settled::Unchanged => {
                let now = self
                    .store
                    .order(id, &owner)
                    .await?
                    .ok_or(AppError::OrderNotFound)?;
                // Whoever settled it may have missed the cache; a fill is only written if newer.
                self.cache.fill(&now).await;
                match now.status {
                    OrderStatus::Closed => Ok(now),
                    other => Err(not_cancellable(other)),
                }
            }
        }
    }

    /// Settles up to `limit` expired PENDING orders. Each is claimed by a short lease
    /// (`SETTLE_LEASE`, bumped in one statement that skips rows another replica is claiming),
    /// so several replicas never settle one order at once and never skip one, and no
    /// connection is held while WeChat is asked. Returns how many orders were settled.
    pub async fn expire_once(&self, limit: usize) -> Result<usize, AppError> {
        let mut settled = 0;
        // Orders that failed this pass (WeChat unavailable, a refusal): skipped for the rest
        // of the pass so one bad order cannot stall the others; retried next pass.
        let mut failed: Vec<OrderId> = Vec::new();
        for _ in 0..limit {
            let Some(order) = self.store.claim_next_expired(&failed, SETTLE_LEASE).await? else {
                break;
            };
            if let Err(e) = self.settle_unpaid(&order, CloseReason::Expired).await {
                tracing::warn!(order_id = %order.id, out_trade_no = %order.out_trade_no, error = %service_runtime::telemetry::error_chain(&e), "could not settle an expired order; retrying next pass");
                metrics::counter!("sweeper_failures_total").increment(1);
                failed.push(order.id);
                // Next pass may try again at once; should this fail, the lease runs out.
                if let Err(e) = self.store.release_settle_lease(order.id).await {
                    tracing::warn!(order_id = %order.id, error = %service_runtime::telemetry::error_chain(&e), "could not release a settle lease; it runs out by itself");
                }
                continue;
            }
            settled += 1;
        }
        Ok(settled)
    }

    /// Queries WeChat about up to `limit` PENDING orders whose prepay got no notification
    /// yet, each claimed and rescheduled with exponential backoff; a paid one goes through
    /// the same transition as a notification.
    pub async fn query_once(&self, limit: u32) -> Result<usize, AppError> {
        let due = self
            .store
            .claim_due_queries(
                self.settings.query_after,
                self.settings.query_max_interval,
                limit,
            )
            .await?;
        let mut applied = 0;
        for order in &due {
            let paid = self.payments.paid_at_wechat(&order.out_trade_no).await?;
            if paid.is_none() {
                self.step(order.id, "query", "order query: WeChat says not paid yet")
                    .await;
            }
            if let Some(facts) = paid {
                tracing::info!(out_trade_no = %order.out_trade_no, "payment found by order query (no notification yet)");
                self.apply_payment(&facts).await?;
                applied += 1;
            }
        }
        Ok(applied)
    }
}
