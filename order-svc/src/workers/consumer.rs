//! The payment-event consumer: one verdict per event (ack, retry, dead-letter). A database
//! that cannot be reached is not the event's fault: the delivery is kept and applied again
//! in-process with capped backoff until the database answers (or shutdown), so an outage
//! never burns the queue's delivery limit; only what fails on a healthy database is retried
//! through the queue and, past the limit, dead-lettered.

use std::time::Duration;

use messaging::{Message, PAYMENT_FAILED, PAYMENT_SUCCEEDED, REFUND_SETTLED, Verdict};
use prost::Message as _;
use proto::events::v1::{PaymentFailed, PaymentSucceeded, RefundSettled};
use service_runtime::telemetry::{TRACE_ID_HEADER, error_chain, new_trace_id, with_trace_id};
use tracing::Instrument;

use super::Workers;
use crate::domain::{PaymentFacts, RefundResult};
use crate::error::AppError;
use crate::refunds::RefundApplied;
use crate::store::StoreError;
use crate::transitions::Applied;

/// Counts an event in hand for as long as it lives (also when its handling is dropped).
struct InHand<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InHand<'a> {
    fn enter(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        let now = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        #[allow(clippy::cast_precision_loss)] // at most the prefetch
        metrics::gauge!("payment_events_in_hand").set(now as f64);
        InHand(count)
    }
}

impl Drop for InHand<'_> {
    fn drop(&mut self) {
        let now = self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) - 1;
        #[allow(clippy::cast_precision_loss)] // at most the prefetch
        metrics::gauge!("payment_events_in_hand").set(now as f64);
    }
}

/// Longest pause between two attempts while the database is unreachable.
const MAX_OUTAGE_BACKOFF: Duration = Duration::from_secs(5);

impl Workers {
    /// Handles one payment event and says what to do with the message. The consumer runs up
    /// to its prefetch of these at once; correctness comes from the row lock and the guarded
    /// update, not from order.
    pub async fn handle_event(&self, message: Message) -> Verdict {
        let _in_hand = InHand::enter(&self.in_hand);
        let trace_id = message
            .header(TRACE_ID_HEADER)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(new_trace_id);
        let span = tracing::info_span!("payment_event", trace_id = %trace_id, routing_key = %message.routing_key, redelivered = message.redelivered, out_trade_no = tracing::field::Empty);
        let work = async {
            match message.routing_key.as_str() {
                PAYMENT_SUCCEEDED => self.payment_succeeded(&message).await,
                REFUND_SETTLED => self.refund_settled(&message).await,
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
        let facts = match PaymentFacts::try_from(event) {
            Ok(facts) => facts,
            Err(e) => return dead_letter("invalid_event", &error_chain(&e)),
        };
        tracing::Span::current()
            .record("out_trade_no", tracing::field::display(&facts.out_trade_no));
        let Some(result) = self
            .through_outages(|| self.checkout.apply_notification(&facts))
            .await
        else {
            // Stopping while the database is down: give it back, unfinished.
            return Verdict::Retry;
        };
        match result {
            Ok(Applied::Paid(_)) => Verdict::Ack,
            Ok(Applied::Duplicate(_) | Applied::AlreadyRecorded) => {
                tracing::info!("duplicate payment event: nothing to do");
                metrics::counter!("payment_events_total", "outcome" => "duplicate").increment(1);
                Verdict::Ack
            }
            Ok(Applied::Refuted { first: false, .. }) => {
                tracing::info!("a repeat of a refuted notification: recorded before");
                metrics::counter!("payment_events_total", "outcome" => "duplicate").increment(1);
                Verdict::Ack
            }
            Ok(
                Applied::Review(_, reason)
                | Applied::Rejected(reason)
                | Applied::Contradicts(reason)
                | Applied::Refuted { reason, .. },
            ) => dead_letter(reason, &facts.out_trade_no),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), delay = ?self.retry_delay, "payment event not applied; it will be redelivered");
                metrics::counter!("payment_events_total", "outcome" => "retry").increment(1);
                // A pause before giving it back, so a passing failure does not burn the
                // delivery limit in milliseconds.
                tokio::time::sleep(self.retry_delay).await;
                Verdict::Retry
            }
        }
    }

    /// A refund's final state from WeChat's notification: applied after WeChat's refund
    /// query confirmed it (`Refunds::notified`).
    async fn refund_settled(&self, message: &Message) -> Verdict {
        let event = match RefundSettled::decode(message.data.as_slice()) {
            Ok(e) => e,
            Err(e) => return dead_letter("undecodable", &e),
        };
        let claim = match RefundResult::try_from(event) {
            Ok(claim) => claim,
            Err(e) => return dead_letter("invalid_event", &error_chain(&e)),
        };
        tracing::Span::current()
            .record("out_trade_no", tracing::field::display(&claim.out_trade_no));
        let Some(result) = self.through_outages(|| self.refunds.notified(&claim)).await else {
            return Verdict::Retry;
        };
        match result {
            Ok(RefundApplied::Settled(_)) => Verdict::Ack,
            Ok(RefundApplied::Duplicate) => {
                tracing::info!(out_refund_no = %claim.out_refund_no, "duplicate refund event: nothing to do");
                Verdict::Ack
            }
            Ok(RefundApplied::NotYet) => {
                tracing::info!(out_refund_no = %claim.out_refund_no, "WeChat's refund is not final yet; the refund worker queries it");
                Verdict::Ack
            }
            Ok(RefundApplied::Unknown) => dead_letter("unknown_refund", &claim.out_refund_no),
            Ok(RefundApplied::Contradicts(reason)) => dead_letter(reason, &claim.out_refund_no),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), delay = ?self.retry_delay, "refund event not applied; it will be redelivered");
                tokio::time::sleep(self.retry_delay).await;
                Verdict::Retry
            }
        }
    }

    /// Runs `attempt`, trying again with capped exponential backoff for as long as the
    /// database or pay-gateway-svc (asked to settle a contradiction, or to confirm a refund)
    /// cannot be reached; `None` when shutdown came first. Neither outage counts toward the
    /// delivery limit: a "paid after close" claim dead-lettered because WeChat could not be
    /// asked would leave a charged buyer with no record, since nothing else looks at closed
    /// orders.
    async fn through_outages<T, F, Fut>(&self, attempt: F) -> Option<Result<T, AppError>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let mut backoff = self.retry_delay.min(MAX_OUTAGE_BACKOFF);
        loop {
            match attempt().await {
                Err(e) => match outage(&e) {
                    Some(outcome) => {
                        tracing::warn!(error = %error_chain(&e), retry_in = ?backoff, outcome, "a dependency is unreachable; keeping the event and trying again");
                        metrics::counter!("payment_events_total", "outcome" => outcome)
                            .increment(1);
                    }
                    None => return Some(Err(e)),
                },
                done => return Some(done),
            }
            let stopped = async {
                match &self.stop {
                    Some(stop) => stop.wait().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stopped => return None,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_OUTAGE_BACKOFF);
        }
    }
}

/// Which dependency `e` says could not be reached (the metric's `outcome`), if it is an
/// outage rather than a reason this event cannot be applied.
fn outage(e: &AppError) -> Option<&'static str> {
    match e {
        AppError::PaymentUnavailable(_) => Some("payment_gateway_unavailable"),
        _ if database_unreachable(e) => Some("database_unreachable"),
        _ => None,
    }
}

/// Whether `e` says the database could not be reached (down, restarting, refusing
/// connections, the pool exhausted), rather than that this event cannot be applied.
fn database_unreachable(e: &AppError) -> bool {
    let AppError::Store(StoreError::Query(e)) = e else {
        return false;
    };
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P0x: the server is shutting down or starting;
        // 53300: too many connections.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0") || c == "53300"),
        _ => false,
    }
}

fn dead_letter(reason: &'static str, detail: &dyn std::fmt::Display) -> Verdict {
    tracing::error!(reason, %detail, "payment event dead-lettered");
    metrics::counter!("payment_events_dead_lettered_total", "reason" => reason).increment(1);
    Verdict::DeadLetter
}
