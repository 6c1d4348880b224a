//! Reconciliation: every day after 10:00 Beijing time (WeChat makes day D's bill from 09:00
//! on D+1), and on an operator's request, WeChat's bill of the day (through pay-gateway-svc)
//! is compared with the books; each difference is reported with its kind, and the ones the
//! normal rules can settle are healed through the same code as notifications — only after
//! WeChat confirmed them with an order or refund query, never from the bill alone. A day is
//! leased in the database, so several replicas run it once; a failed run is tried again.
//!
//! It lives in order-svc because the books are order-svc's: healing is a payment or refund
//! transition, which only order-svc may make, and a service of its own would need order-svc's
//! database or a new API for each transition.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use wechat_pay::{OutRefundNo, OutTradeNo};

use crate::checkout::Checkout;
use crate::domain::reconciliation::{
    BookOrder, BookRefund, Books, Difference, DifferenceKind, Report, compare,
};
use crate::error::AppError;
use crate::payments::{Payments, RefundAtWeChat};
use crate::refunds::{RefundApplied, Refunds};
use crate::store::Store;
use crate::store::audit::AdminAction;

/// Beijing time.
const BEIJING: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// The first retry of a failed run; doubled each time, at most an hour.
const FIRST_RETRY: Duration = Duration::from_secs(60);

/// Settings of the daily run.
#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    /// The Beijing time of day after which the previous day is reconciled.
    pub after: Time,
    /// Whether the daily run is on (the operator's request always works).
    pub daily: bool,
}

/// Runs reconciliations.
#[derive(Debug, Clone)]
pub struct Reconciler {
    store: Store,
    payments: Payments,
    checkout: Arc<Checkout>,
    refunds: Arc<Refunds>,
    settings: ReconcileSettings,
    /// This replica's name on the lease.
    owner: String,
}

/// A day, from its first instant to the next day's, as instants.
pub fn day_bounds(day: Date) -> (OffsetDateTime, OffsetDateTime) {
    let start = PrimitiveDateTime::new(day, Time::MIDNIGHT).assume_offset(BEIJING);
    (start, start + time::Duration::DAY)
}

/// The Beijing-time day of `now`.
pub fn beijing_day(now: OffsetDateTime) -> Date {
    now.to_offset(BEIJING).date()
}

impl Reconciler {
    /// Wires it.
    pub fn new(
        store: Store,
        payments: Payments,
        checkout: Arc<Checkout>,
        refunds: Arc<Refunds>,
        settings: ReconcileSettings,
    ) -> Self {
        Reconciler {
            store,
            payments,
            checkout,
            refunds,
            settings,
            owner: format!("order-svc-{}", uuid::Uuid::now_v7()),
        }
    }

    /// The same reconciliation as another replica runs it (its own name on the lease), as a
    /// second process would have it.
    pub fn replica(&self) -> Reconciler {
        Reconciler {
            owner: format!("order-svc-{}", uuid::Uuid::now_v7()),
            ..self.clone()
        }
    }

    /// The report of `day`, if it was ever run.
    pub async fn report(&self, day: Date) -> Result<Option<Report>, AppError> {
        Ok(self.store.reconciliation(day).await?)
    }

    /// Runs `day` now (an operator's request, or `minipay reconcile`). `None` when another
    /// replica is running it at this moment.
    pub async fn run(&self, day: Date) -> Result<Option<Report>, AppError> {
        self.run_claimed(day, true).await
    }

    /// Runs `day` at `operator`'s request, recorded in the audit log with its outcome.
    pub async fn run_for(&self, operator: &str, day: Date) -> Result<Option<Report>, AppError> {
        let report = self.run(day).await?;
        let target = day.to_string();
        let outcome = report
            .as_ref()
            .map_or("refused:reconciliation_running", |r| r.status.as_str());
        self.store
            .record_action(&AdminAction {
                operator,
                action: "reconcile",
                order_id: None,
                target: Some(&target),
                reason: "requested",
                outcome,
            })
            .await?;
        Ok(report)
    }

    /// One step of the daily worker at `now`: after the configured time, the previous
    /// day, if it is not reconciled yet and its next attempt is due. Returns how many days
    /// it ran (0 or 1).
    pub async fn run_due_once(&self, now: OffsetDateTime) -> Result<usize, AppError> {
        if !self.settings.daily {
            return Ok(0);
        }
        let local = now.to_offset(BEIJING);
        if local.time() < self.settings.after {
            return Ok(0);
        }
        let Some(yesterday) = local.date().previous_day() else {
            return Ok(0);
        };
        Ok(usize::from(
            self.run_claimed(yesterday, false).await?.is_some(),
        ))
    }

    async fn run_claimed(&self, day: Date, forced: bool) -> Result<Option<Report>, AppError> {
        if self
            .store
            .claim_reconciliation(day, &self.owner, forced)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        match self.reconcile(day).await {
            Ok((totals, differences)) => {
                for d in &differences {
                    metrics::counter!("reconciliation_differences_total",
                        "kind" => d.kind.as_str(), "healed" => if d.healed { "true" } else { "false" })
                    .increment(1);
                }
                let unhealed = differences.iter().filter(|d| !d.healed).count();
                self.store
                    .finish_reconciliation(day, &self.owner, &totals, &differences)
                    .await?;
                metrics::counter!("reconciliation_runs_total", "outcome" => "done").increment(1);
                if unhealed > 0 {
                    tracing::error!(%day, differences = differences.len(), unhealed, "reconciliation found differences that wait for an operator");
                } else {
                    tracing::info!(%day, differences = differences.len(), "reconciliation done; every difference healed");
                }
            }
            Err(e) => {
                let attempts = self
                    .store
                    .reconciliation(day)
                    .await?
                    .map_or(1, |r| r.attempts.max(1));
                let factor = 2u32.saturating_pow(u32::try_from(attempts - 1).unwrap_or(0).min(6));
                let retry = FIRST_RETRY
                    .saturating_mul(factor)
                    .min(Duration::from_secs(3600));
                let error = service_runtime::telemetry::error_chain(&e);
                self.store
                    .fail_reconciliation(day, &self.owner, &error, retry.as_secs_f64())
                    .await?;
                metrics::counter!("reconciliation_runs_total", "outcome" => "failed").increment(1);
                tracing::warn!(%day, error, retry_in_s = retry.as_secs(), "reconciliation failed; it is tried again");
            }
        }
        self.report(day).await
    }

    /// Downloads, compares, heals; the totals and the differences.
    async fn reconcile(&self, day: Date) -> Result<(serde_json::Value, Vec<Difference>), AppError> {
        let (lines, bill_totals) = match self.payments.bill(day).await? {
            Some((lines, totals)) => (lines, Some(totals)),
            None => (Vec::new(), None),
        };
        let (from, to) = day_bounds(day);
        let mut books = Books::default();
        for number in self.store.paid_between(from, to).await? {
            books.paid_that_day.push(number.clone());
            self.know_order(&mut books, &number).await?;
        }
        for (number, order, fen, status) in self.store.refunds_between(from, to).await? {
            books.refunded_that_day.push(number.clone());
            books.refunds.insert(
                number.clone(),
                BookRefund {
                    out_refund_no: number,
                    out_trade_no: order,
                    status,
                    amount_fen: fen,
                },
            );
        }
        for line in &lines {
            self.know_order(&mut books, &line.out_trade_no).await?;
            if line.refund
                && !books.refunds.contains_key(&line.out_refund_no)
                && let Some((status, fen)) =
                    self.store.refund_by_number(&line.out_refund_no).await?
            {
                books.refunds.insert(
                    line.out_refund_no.clone(),
                    BookRefund {
                        out_refund_no: line.out_refund_no.clone(),
                        out_trade_no: line.out_trade_no.clone(),
                        status,
                        amount_fen: fen,
                    },
                );
            }
        }
        let mut differences = compare(&lines, &books);
        // Payments first: a refund can only be recorded on a paid order.
        differences.sort_by_key(|d| d.kind != DifferenceKind::PaidAtWechatNotHere);
        for d in &mut differences {
            if let Err(e) = self.heal(d, &books).await {
                d.detail.push_str(&format!(
                    "; not healed: {}",
                    service_runtime::telemetry::error_chain(&e)
                ));
            }
        }
        let paid_fen: i64 = books
            .paid_that_day
            .iter()
            .filter_map(|n| books.orders.get(n))
            .map(|o| o.amount_fen)
            .sum();
        let refunded_fen: i64 = books
            .refunded_that_day
            .iter()
            .filter_map(|n| books.refunds.get(n))
            .filter(|r| r.status == "SUCCESS")
            .map(|r| r.amount_fen)
            .sum();
        let bill = bill_totals.map_or(serde_json::Value::Null, |t| {
            json!({
                "lines": t.lines,
                "payments": lines.iter().filter(|l| !l.refund).count(),
                "refunds": lines.iter().filter(|l| l.refund).count(),
                "settlement_fen": t.settlement_fen,
                "refund_fen": t.refund_fen,
                "fee_e5": t.fee_e5,
                "order_fen": t.order_fen,
            })
        });
        let totals = json!({
            "bill": bill,
            "books": {
                "paid_orders": books.paid_that_day.len(),
                "paid_fen": paid_fen,
                "refunds": books.refunded_that_day.len(),
                "refunded_fen": refunded_fen,
            },
        });
        Ok((totals, differences))
    }

    /// Adds the order numbered `number` to `books` if it is here.
    async fn know_order(&self, books: &mut Books, number: &str) -> Result<(), AppError> {
        if books.orders.contains_key(number) {
            return Ok(());
        }
        let Ok(parsed) = OutTradeNo::parse(number) else {
            return Ok(());
        };
        if let Some(order) = self.store.order_by_number(&parsed).await? {
            books.orders.insert(
                number.to_owned(),
                BookOrder {
                    out_trade_no: number.to_owned(),
                    status: order.status.as_str().to_owned(),
                    amount_fen: order.amount.as_i64(),
                },
            );
        }
        Ok(())
    }

    /// Settles `d` when the normal rules can, after WeChat confirmed it; marks it healed.
    async fn heal(&self, d: &mut Difference, books: &Books) -> Result<(), AppError> {
        match d.kind {
            DifferenceKind::PaidAtWechatNotHere => {
                let Ok(number) = OutTradeNo::parse(&d.out_trade_no) else {
                    return Ok(());
                };
                // An order that is not here cannot be paid here (the books were looked up).
                if !books.orders.contains_key(&d.out_trade_no) {
                    return Ok(());
                }
                let Some(facts) = self.payments.paid_at_wechat(&number).await? else {
                    d.detail
                        .push_str("; WeChat's order query says it is not paid");
                    return Ok(());
                };
                self.checkout.apply_payment(&facts).await?;
                if let Some(now) = self.store.order_by_number(&number).await? {
                    let status = now.status.as_str();
                    if now.status.is_paid() || status == "REVIEW" {
                        d.healed = true;
                        d.detail.push_str(&format!(
                            "; confirmed by WeChat's order query: now {status}"
                        ));
                    }
                }
            }
            DifferenceKind::RefundUnknownHere | DifferenceKind::RefundDiffers => {
                let Ok(number) = OutRefundNo::parse(&d.out_refund_no) else {
                    return Ok(());
                };
                let truth = match self.payments.refund_at_wechat(&number).await? {
                    Some(RefundAtWeChat::Done(truth)) => truth,
                    Some(RefundAtWeChat::Processing) => {
                        d.detail.push_str("; WeChat's refund query says PROCESSING");
                        return Ok(());
                    }
                    None => {
                        d.detail
                            .push_str("; WeChat's refund query does not know it");
                        return Ok(());
                    }
                };
                let applied = if d.kind == DifferenceKind::RefundUnknownHere {
                    self.refunds.record_from_wechat(&truth, false).await?
                } else {
                    self.refunds.apply(&truth).await?
                };
                if let RefundApplied::Settled(_) = applied {
                    d.healed = true;
                    d.detail.push_str(&format!(
                        "; confirmed by WeChat's refund query: recorded {}",
                        truth.status.as_str()
                    ));
                }
            }
            DifferenceKind::PaidHereNotOnBill
            | DifferenceKind::AmountDiffers
            | DifferenceKind::DuplicateLine => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_beijing_days() {
        let day = time::macros::date!(2026 - 11 - 27);
        let (from, to) = day_bounds(day);
        assert_eq!(from, time::macros::datetime!(2026-11-26 16:00 UTC));
        assert_eq!(to, time::macros::datetime!(2026-11-27 16:00 UTC));
        assert_eq!(
            beijing_day(time::macros::datetime!(2026-11-26 16:00 UTC)),
            day
        );
        assert_eq!(
            beijing_day(time::macros::datetime!(2026-11-26 15:59:59 UTC)),
            time::macros::date!(2026 - 11 - 26)
        );
    }
}
