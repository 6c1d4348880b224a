//! Refunds: an operator asks, the amount is reserved on the locked order (so concurrent
//! refunds never add up to more than was paid), WeChat is asked through pay-gateway-svc with
//! no transaction held, and WeChat's final word — by notification, confirmed by refund query,
//! or by the refund worker's own query — moves the money from "refunding" to "refunded" (or
//! back) and the order's status with it, in one transaction with its `order.refunded` event.
//!
//! A refund WeChat has not accepted yet stays `REQUESTED` and is sent again, with the same
//! `out_refund_no`, by the worker: WeChat treats the same number as the same refund, so a
//! retry never pays twice.

use std::time::Duration;

use prost::Message as _;
use uuid::Uuid;
use wechat_pay::Fen;

use crate::cache::OrderCache;
use crate::convert;
use crate::domain::{
    IdempotencyKey, Order, OrderId, Refund, RefundRequest, RefundResult, RefundStatus,
    new_out_refund_no,
};
use crate::error::AppError;
use crate::payments::{Payments, RefundAtWeChat, RefundSent};
use crate::store::audit::{self, AdminAction};
use crate::store::refunds::{self, NewRefund};
use crate::store::{Owner, Store};
use crate::transitions;

/// What applying WeChat's word about a refund did.
#[derive(Debug)]
#[must_use]
pub enum RefundApplied {
    /// The refund reached its final state; the order as it is now.
    Settled(Box<Order>),
    /// It was final already: nothing changed.
    Duplicate,
    /// WeChat's refund is not final yet.
    NotYet,
    /// We have no refund with that number (or WeChat has none): nothing changed.
    Unknown,
    /// The order number or the amount does not match our refund: nothing changed.
    Contradicts(&'static str),
}

/// What is left to refund of `order` (paid, less refunded and being refunded).
fn left_to_refund(order: &Order) -> u64 {
    order
        .amount
        .get()
        .saturating_sub(order.refunded.get())
        .saturating_sub(order.refunding.get())
}

/// A new refund, REQUESTED now.
fn requested(
    order_id: OrderId,
    out_refund_no: wechat_pay::OutRefundNo,
    amount: Fen,
    reason: &str,
    requested_by: &str,
) -> Refund {
    Refund {
        id: Uuid::now_v7(),
        order_id,
        out_refund_no,
        amount,
        reason: reason.to_owned(),
        requested_by: requested_by.to_owned(),
        status: RefundStatus::Requested,
        refund_id: None,
        failure: None,
        created_at: time::OffsetDateTime::now_utc(),
        settled_at: None,
    }
}

/// Settings of refunds.
#[derive(Debug, Clone)]
pub struct RefundSettings {
    /// First refund query (or resend) this long after a refund was asked or accepted.
    pub query_after: Duration,
    /// Longest gap between two refund queries.
    pub query_max_interval: Duration,
}

/// The refund use cases.
#[derive(Debug, Clone)]
pub struct Refunds {
    store: Store,
    cache: OrderCache,
    payments: Payments,
    settings: RefundSettings,
}

impl Refunds {
    /// Wires the use cases.
    pub fn new(
        store: Store,
        cache: OrderCache,
        payments: Payments,
        settings: RefundSettings,
    ) -> Self {
        Refunds {
            store,
            cache,
            payments,
            settings,
        }
    }

    /// An operator's refund of order `id`: reserved and recorded (with the audit line) in one
    /// transaction on the locked order, then sent to WeChat. The same Idempotency-Key with
    /// the same request answers the refund made before (`true`); with another request it is
    /// refused. A refusal (the order's state, more than is left) is audited too.
    pub async fn request(
        &self,
        operator: &str,
        id: OrderId,
        request: &RefundRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<(Refund, bool), AppError> {
        let mut tx = self.store.begin().await?;
        let order = refunds::lock_order(&mut tx, id)
            .await?
            .ok_or(AppError::OrderNotFound)?;
        if let Some(key) = &key
            && let Some((earlier, fingerprint)) = refunds::by_key(&mut tx, id, key).await?
        {
            drop(tx);
            if fingerprint != request.fingerprint() {
                return Err(AppError::IdempotencyKeyReused);
            }
            return Ok((earlier, true));
        }
        let left = left_to_refund(&order);
        // A paid order (a fully refunded one has nothing left: refused by the amount).
        let refusal = if !order.status.is_paid() {
            Some(AppError::OrderNotRefundable(format!(
                "the order is {}; only a paid order can be refunded",
                order.status
            )))
        } else if request.amount.get() > left {
            Some(AppError::RefundExceedsPaid(format!(
                "{} fen asked, {left} fen of {} left to refund ({} refunded, {} being refunded)",
                request.amount, order.amount, order.refunded, order.refunding
            )))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            drop(tx);
            self.store
                .record_action(&AdminAction {
                    operator,
                    action: "refund",
                    order_id: Some(id),
                    target: None,
                    reason: &request.reason,
                    outcome: &format!("refused:{}", refusal.code()),
                })
                .await?;
            return Err(refusal);
        }
        let refund = requested(
            id,
            new_out_refund_no(),
            request.amount,
            &request.reason,
            operator,
        );
        let idempotency = key.as_ref().map(|k| (k, request.fingerprint()));
        let order = self.reserve(&mut tx, &order, &refund, idempotency).await?;
        audit::record_action(
            &mut tx,
            &AdminAction {
                operator,
                action: "refund",
                order_id: Some(id),
                target: Some(refund.out_refund_no.as_str()),
                reason: &request.reason,
                outcome: "requested",
            },
        )
        .await?;
        tx.commit().await?;
        self.cache.put(&order).await;
        metrics::counter!("refunds_requested_total").increment(1);
        tracing::info!(order_id = %id, out_refund_no = %refund.out_refund_no, amount_fen = refund.amount.get(), operator, "refund requested");
        Ok((self.send(&order, refund).await, false))
    }

    /// Sends `refund` to WeChat and records the answer; a passing failure leaves it
    /// `REQUESTED` for the worker. Returns the refund as it is now.
    async fn send(&self, order: &Order, refund: Refund) -> Refund {
        let result = match self.payments.refund(order, &refund).await {
            Ok(RefundSent::Accepted { refund_id }) => self.accepted(&refund, &refund_id).await,
            Ok(RefundSent::Refused(why)) => self.failed(&refund, &why).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(Some(now)) => now,
            Ok(None) => refund,
            Err(e) => {
                tracing::warn!(out_refund_no = %refund.out_refund_no, error = %service_runtime::telemetry::error_chain(&e), "refund not sent to WeChat yet; the refund worker sends it again with the same number");
                metrics::counter!("refund_sends_total", "outcome" => "retry").increment(1);
                refund
            }
        }
    }

    async fn accepted(&self, refund: &Refund, refund_id: &str) -> Result<Option<Refund>, AppError> {
        let mut tx = self.store.begin().await?;
        let now = refunds::mark_accepted(&mut tx, refund.id, refund_id, self.settings.query_after)
            .await?;
        tx.commit().await?;
        metrics::counter!("refund_sends_total", "outcome" => "accepted").increment(1);
        tracing::info!(out_refund_no = %refund.out_refund_no, refund_id, "refund accepted by WeChat");
        Ok(now)
    }

    /// WeChat refused `refund` for good: `FAILED`, its amount no longer reserved.
    async fn failed(&self, refund: &Refund, why: &str) -> Result<Option<Refund>, AppError> {
        let mut tx = self.store.begin().await?;
        let Some((order, locked)) =
            refunds::lock_with_order(&mut tx, &refund.out_refund_no).await?
        else {
            return Ok(None);
        };
        if locked.status != RefundStatus::Requested {
            return Ok(Some(locked));
        }
        let (failed, order) = refunds::settle(
            &mut tx,
            &order,
            &locked,
            RefundStatus::Failed,
            None,
            Some(why),
        )
        .await?;
        tx.commit().await?;
        self.cache.put(&order).await;
        metrics::counter!("refund_sends_total", "outcome" => "refused").increment(1);
        tracing::error!(out_refund_no = %refund.out_refund_no, why, "WeChat refused the refund; nothing was refunded");
        Ok(Some(failed))
    }

    /// A refund notification (decrypted by notify-svc, not signed): WeChat is asked, and its
    /// answer is what is applied. A notification that disagrees with it is logged as an
    /// error (someone holding the key, or a bug).
    pub async fn notified(&self, claim: &RefundResult) -> Result<RefundApplied, AppError> {
        match self.payments.refund_at_wechat(&claim.out_refund_no).await? {
            None => {
                tracing::error!(out_refund_no = %claim.out_refund_no, "a refund notification names a refund WeChat does not know");
                Ok(RefundApplied::Unknown)
            }
            Some(RefundAtWeChat::Processing) => Ok(RefundApplied::NotYet),
            Some(RefundAtWeChat::Done(truth)) => {
                if truth != *claim {
                    tracing::error!(out_refund_no = %claim.out_refund_no, claimed = claim.status.as_str(), wechat = truth.status.as_str(), "a refund notification contradicts WeChat's refund query; applying WeChat's answer");
                    metrics::counter!("refund_notifications_refuted_total").increment(1);
                }
                self.apply(&truth).await
            }
        }
    }

    /// Records a refund WeChat made that the books do not know (in the merchant portal,
    /// say), as WeChat's refund query reports it: the refund is inserted as accepted, its
    /// amount reserved, then, when WeChat says it is final, settled as any refund is.
    /// `Unknown` when its order is not here; `Contradicts` when it does not fit what is
    /// left to refund (an operator's case).
    pub async fn record_from_wechat(
        &self,
        truth: &RefundResult,
        processing: bool,
    ) -> Result<RefundApplied, AppError> {
        let mut tx = self.store.begin().await?;
        let Some(order) = refunds::lock_order_by_number(&mut tx, &truth.out_trade_no).await? else {
            return Ok(RefundApplied::Unknown);
        };
        if !order.status.is_paid() || truth.amount.get() > left_to_refund(&order) {
            return Ok(RefundApplied::Contradicts("refund_does_not_fit"));
        }
        let refund = requested(
            order.id,
            truth.out_refund_no.clone(),
            truth.amount,
            "made at WeChat; found by reconciliation",
            "wechat",
        );
        let order = self.reserve(&mut tx, &order, &refund, None).await?;
        refunds::mark_accepted(
            &mut tx,
            refund.id,
            &truth.refund_id,
            self.settings.query_after,
        )
        .await?;
        tx.commit().await?;
        self.cache.put(&order).await;
        tracing::warn!(out_refund_no = %truth.out_refund_no, amount_fen = truth.amount.get(), "a refund made at WeChat was recorded");
        if processing {
            return Ok(RefundApplied::NotYet);
        }
        self.apply(truth).await
    }

    /// Inserts `refund` (REQUESTED) of the locked `order` and reserves its amount; the order
    /// as it is now.
    async fn reserve(
        &self,
        tx: &mut crate::store::Tx,
        order: &Order,
        refund: &Refund,
        idempotency: Option<(&IdempotencyKey, String)>,
    ) -> Result<Order, AppError> {
        refunds::insert(
            tx,
            &NewRefund {
                refund,
                idempotency,
                retry_after: self.settings.query_after,
            },
        )
        .await?;
        let refunding = add(order.refunding, refund.amount)?;
        Ok(refunds::set_amounts(tx, order, order.refunded, refunding).await?)
    }

    /// Applies WeChat's final word on a refund, in one transaction: the refund's state, the
    /// order's amounts and status, and `order.refunded` when money went back.
    pub async fn apply(&self, result: &RefundResult) -> Result<RefundApplied, AppError> {
        let mut tx = self.store.begin().await?;
        let Some((order, refund)) =
            refunds::lock_with_order(&mut tx, &result.out_refund_no).await?
        else {
            return Ok(RefundApplied::Unknown);
        };
        if order.out_trade_no != result.out_trade_no {
            return Ok(RefundApplied::Contradicts("refund_order_mismatch"));
        }
        if refund.amount != result.amount {
            return Ok(RefundApplied::Contradicts("refund_amount_mismatch"));
        }
        if refund.status.is_final() {
            if refund.status != result.status {
                tracing::error!(out_refund_no = %refund.out_refund_no, ours = refund.status.as_str(), wechat = result.status.as_str(), "WeChat reports another final state for a settled refund");
            }
            return Ok(RefundApplied::Duplicate);
        }
        let (refund, order) = refunds::settle(
            &mut tx,
            &order,
            &refund,
            result.status,
            Some(&result.refund_id),
            None,
        )
        .await?;
        if result.status == RefundStatus::Success {
            let event_id = Uuid::now_v7();
            let event = convert::order_refunded(&order, &refund, &event_id);
            transitions::announce(
                &mut tx,
                messaging::ORDER_REFUNDED,
                event_id,
                event.encode_to_vec(),
            )
            .await?;
        }
        tx.commit().await?;
        if result.status == RefundStatus::Success {
            self.store.outbox_committed();
        }
        self.cache.put(&order).await;
        metrics::counter!("refunds_settled_total", "status" => result.status.as_str()).increment(1);
        if result.status == RefundStatus::Change {
            tracing::error!(out_refund_no = %refund.out_refund_no, "WeChat could not pay the refund back (CHANGE): handle it at the merchant platform");
        } else {
            tracing::info!(out_refund_no = %refund.out_refund_no, status = result.status.as_str(), refunded_fen = order.refunded.get(), "refund settled");
        }
        Ok(RefundApplied::Settled(Box::new(order)))
    }

    /// One round of the refund worker: up to `limit` refunds that are due, each claimed with
    /// backoff; one not yet accepted is sent again (same number), one accepted is queried
    /// and settled when WeChat says it is final. Returns how many it moved on.
    pub async fn work_once(&self, limit: u32) -> Result<usize, AppError> {
        let due = self
            .store
            .claim_due_refunds(
                limit,
                self.settings.query_after,
                self.settings.query_max_interval,
            )
            .await?;
        let mut moved = 0;
        for refund in due {
            let number = refund.out_refund_no.clone();
            // One refund's trouble does not hold up the others: it is logged, and its
            // next turn comes after its backoff.
            match self.work_on(refund).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(out_refund_no = %number, error = %service_runtime::telemetry::error_chain(&e), "refund worker: trying this refund again later");
                    metrics::counter!("refund_worker_failures_total").increment(1);
                }
            }
        }
        Ok(moved)
    }

    /// Sends one claimed refund again or queries it; whether it moved on.
    async fn work_on(&self, refund: Refund) -> Result<bool, AppError> {
        match refund.status {
            RefundStatus::Requested => {
                let order = self
                    .store
                    .order(refund.order_id, &Owner::Anyone)
                    .await?
                    .ok_or_else(|| AppError::internal("refund", "a refund without its order"))?;
                Ok(self.send(&order, refund).await.status != RefundStatus::Requested)
            }
            RefundStatus::Processing => match self
                .payments
                .refund_at_wechat(&refund.out_refund_no)
                .await?
            {
                Some(RefundAtWeChat::Done(result)) => {
                    let settled = matches!(self.apply(&result).await?, RefundApplied::Settled(_));
                    if settled {
                        tracing::info!(out_refund_no = %refund.out_refund_no, "refund settled by refund query (no notification yet)");
                    }
                    Ok(settled)
                }
                Some(RefundAtWeChat::Processing) => Ok(false),
                None => {
                    tracing::error!(out_refund_no = %refund.out_refund_no, "WeChat accepted this refund but does not know it now");
                    Ok(false)
                }
            },
            _ => Ok(false),
        }
    }

    /// The refunds of order `id`, oldest first.
    pub async fn of_order(&self, id: OrderId) -> Result<Vec<Refund>, AppError> {
        Ok(self.store.refunds_of(id).await?)
    }
}

fn add(a: Fen, b: Fen) -> Result<Fen, AppError> {
    a.checked_add(b)
        .ok_or_else(|| AppError::internal("refund", "amount overflow"))
}
