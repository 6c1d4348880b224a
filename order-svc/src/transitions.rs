//! The order state machine applied to stored orders. Each transition runs inside the
//! caller's transaction: the order row is locked, the decision is taken from what is stored,
//! the status moves by a guarded UPDATE (`crate::store::orders`), and the outbox event is
//! written in the same transaction, so a transition and its announcement commit together or
//! not at all, and a duplicate can never apply twice. A notification that contradicts its
//! order changes nothing here: it is handed back so that WeChat is asked first.

use std::collections::HashMap;

use prost::Message as _;
use sqlx::PgConnection;
use tracing::Span;
use uuid::Uuid;

use crate::convert;
use crate::domain::{CloseReason, ExpectedMerchant, Order, OrderStatus, PaymentFacts, Source};
use crate::error::AppError;
use crate::store::outbox::{self, OutboxEvent};
use crate::store::{anomalies, history, orders};

/// What applying a payment did.
#[derive(Debug)]
pub enum Applied {
    /// PENDING → PAID (and an `order.paid` event in the outbox).
    Paid(Order),
    /// Already PAID by this same transaction: nothing changed, nothing emitted.
    Duplicate(Order),
    /// WeChat's own answer contradicts the order, which went to REVIEW.
    Review(Order, &'static str),
    /// The payment cannot apply and the order was not changed (unknown order, another
    /// merchant, a second payment, an order already under review).
    Rejected(&'static str),
    /// This same contradicting payment was recorded before: nothing more to do.
    AlreadyRecorded,
    /// A notification contradicts the order (amount, merchant, currency, paid after close):
    /// nothing was changed or recorded; WeChat must be asked (`crate::checkout`).
    Contradicts(&'static str),
    /// WeChat's answer refuted a contradicting notification: the notification was recorded
    /// as an anomaly (`first`: now, not before) and changed nothing; `truth` is what applying
    /// WeChat's answer did, when WeChat says the order was paid.
    Refuted {
        /// How the notification contradicted the order.
        reason: &'static str,
        /// Whether it was recorded now (a repeat of it was recorded before otherwise).
        first: bool,
        /// WeChat's answer applied.
        truth: Option<Box<Applied>>,
    },
}

impl Applied {
    /// The order as it is now, if applying changed it (what the cache must hear about).
    pub fn changed(&self) -> Option<&Order> {
        match self {
            Applied::Paid(o) | Applied::Review(o, _) => Some(o),
            Applied::Refuted { truth, .. } => truth.as_deref().and_then(Applied::changed),
            Applied::Duplicate(_)
            | Applied::Rejected(_)
            | Applied::AlreadyRecorded
            | Applied::Contradicts(_) => None,
        }
    }
}

/// Writes an event to the outbox, stamped with the current trace id.
pub(crate) async fn announce(
    conn: &mut PgConnection,
    routing_key: &str,
    event_id: Uuid,
    payload: Vec<u8>,
) -> Result<(), AppError> {
    let event = OutboxEvent {
        id: event_id,
        routing_key: routing_key.to_owned(),
        payload,
        trace_id: service_runtime::telemetry::current_trace_id().unwrap_or_default(),
    };
    outbox::write(conn, std::slice::from_ref(&event)).await?;
    Ok(())
}

/// Records a contradicting payment (a metric and an error log line with it); `false` when
/// this same payment was recorded before.
async fn record_anomaly(
    conn: &mut PgConnection,
    facts: &PaymentFacts,
    order: Option<&Order>,
    reason: &'static str,
) -> Result<bool, AppError> {
    if !anomalies::record(conn, facts, order.map(|o| o.id), reason).await? {
        return Ok(false);
    }
    metrics::counter!("payment_anomalies_total", "reason" => reason, "source" => facts.source.as_str()).increment(1);
    tracing::error!(transaction_id = %facts.transaction_id, amount_fen = facts.amount.get(), reason, source = facts.source.as_str(), "payment contradicts the order");
    Ok(true)
}

async fn reject(
    conn: &mut PgConnection,
    facts: &PaymentFacts,
    order: Option<&Order>,
    reason: &'static str,
) -> Result<Applied, AppError> {
    Ok(if record_anomaly(conn, facts, order, reason).await? {
        Applied::Rejected(reason)
    } else {
        Applied::AlreadyRecorded
    })
}

async fn to_review(
    conn: &mut PgConnection,
    order: &Order,
    facts: &PaymentFacts,
    reason: &'static str,
) -> Result<Applied, AppError> {
    if !record_anomaly(conn, facts, Some(order), reason).await? {
        return Ok(Applied::AlreadyRecorded);
    }
    Ok(match orders::mark_review(conn, order, reason).await? {
        Some(order) => Applied::Review(order, reason),
        None => Applied::Rejected(reason),
    })
}

/// A payment that contradicts the order. A notification changes nothing and is handed back
/// (`Applied::Contradicts`) so that WeChat is asked; WeChat's own answer (a query) is the
/// truth: a PENDING or CLOSED order it contradicts goes to REVIEW, anything else is recorded.
async fn contradiction(
    conn: &mut PgConnection,
    facts: &PaymentFacts,
    order: Option<&Order>,
    reason: &'static str,
) -> Result<Applied, AppError> {
    match (facts.source, order) {
        (Source::Notification, _) => Ok(Applied::Contradicts(reason)),
        (Source::Query, Some(o))
            if matches!(o.status, OrderStatus::Pending | OrderStatus::Closed) =>
        {
            to_review(conn, o, facts, reason).await
        }
        (Source::Query, order) => reject(conn, facts, order, reason).await,
    }
}

/// How `facts` contradict `order` (which they are for and may still apply to), if they do.
fn contradicts(order: &Order, facts: &PaymentFacts) -> Option<&'static str> {
    if !facts.currency.is_cny() {
        Some("currency_mismatch")
    } else if order.amount != facts.amount {
        Some("amount_mismatch")
    } else if order.status == OrderStatus::Closed {
        Some("paid_after_close")
    } else {
        None
    }
}

/// Records a notification that WeChat's own answer refuted (it changes nothing), with its own
/// metric and an error log line: a validly signed notification WeChat did not send means the
/// key leaked or something is badly wrong. `false` when it was recorded before.
pub async fn record_refuted(
    conn: &mut PgConnection,
    claim: &PaymentFacts,
    reason: &'static str,
) -> Result<bool, AppError> {
    let order = orders::lock_by_number(conn, &claim.out_trade_no).await?;
    if !anomalies::record(conn, claim, order.map(|o| o.id), reason).await? {
        return Ok(false);
    }
    metrics::counter!("payment_notifications_refuted_total", "reason" => reason).increment(1);
    tracing::error!(transaction_id = %claim.transaction_id, amount_fen = claim.amount.get(), currency = %claim.currency, reason, "a signed notification contradicts WeChat's own answer (order query): the merchant key may have leaked");
    Ok(true)
}

/// What applying a payment did, in words, for the order's history.
pub fn describe(applied: &Applied, facts: &PaymentFacts) -> String {
    let payment = format!("transaction {}, {} fen", facts.transaction_id, facts.amount);
    match applied {
        Applied::Paid(_) => format!("paid ({payment})"),
        Applied::Duplicate(_) => format!("a repeat ({payment}): nothing to do"),
        Applied::Review(_, reason) => {
            format!("contradicts the order ({reason}; {payment}): REVIEW")
        }
        Applied::Rejected(reason) => format!("refused ({reason}; {payment})"),
        Applied::AlreadyRecorded => format!("a repeat of a recorded contradiction ({payment})"),
        Applied::Contradicts(reason) => {
            format!("contradicts the order ({reason}; {payment}): asking WeChat")
        }
        Applied::Refuted { reason, .. } => {
            format!("refuted by WeChat's order query ({reason}; {payment})")
        }
    }
}

/// Applies a payment to its order, inside the caller's transaction: the order is locked,
/// checked (merchant, currency, amount, state), and moved by a guarded UPDATE.
#[tracing::instrument(skip_all, fields(out_trade_no = %facts.out_trade_no, order_id))]
pub async fn apply_payment(
    conn: &mut PgConnection,
    facts: &PaymentFacts,
    merchant: &ExpectedMerchant,
) -> Result<Applied, AppError> {
    if !merchant.is_payee_of(facts) {
        return contradiction(conn, facts, None, "other_merchant").await;
    }
    let Some(order) = orders::lock_by_number(conn, &facts.out_trade_no).await? else {
        return reject(conn, facts, None, "unknown_order").await;
    };
    Span::current().record("order_id", tracing::field::display(order.id));
    let same_payment = order.transaction_id.as_ref() == Some(&facts.transaction_id);
    let applies = matches!(order.status, OrderStatus::Pending | OrderStatus::Closed)
        || (order.status.is_paid() && same_payment);
    if let Some(reason) = contradicts(&order, facts).filter(|_| applies) {
        return contradiction(conn, facts, Some(&order), reason).await;
    }
    match order.status {
        OrderStatus::Pending => {
            let paid = pay(conn, &order, facts)
                .await?
                .ok_or_else(|| AppError::internal("mark paid", "the locked order left PENDING"))?;
            metrics::counter!("orders_paid_total", "source" => facts.source.as_str()).increment(1);
            tracing::info!(transaction_id = %facts.transaction_id, source = facts.source.as_str(), "order paid");
            Ok(Applied::Paid(paid))
        }
        status if status.is_paid() && same_payment => Ok(Applied::Duplicate(order)),
        status if status.is_paid() => reject(conn, facts, Some(&order), "second_payment").await,
        _ => reject(conn, facts, Some(&order), "order_under_review").await,
    }
}

/// A notification to apply in a shared transaction ([`pay_together`]).
#[derive(Debug)]
pub struct Claim<'a> {
    /// What it says was paid.
    pub facts: &'a PaymentFacts,
    /// The trace id of the event that brought it (stamped on its `order.paid`).
    pub trace_id: &'a str,
}

/// Applies several notifications in the caller's transaction, taking only the plain case
/// (this merchant, a PENDING order the payment matches): those orders are locked together,
/// moved PENDING → PAID by one guarded UPDATE and announced by one outbox INSERT. Every other
/// claim (a duplicate, a second claim about the same order, anything [`apply_payment`] would
/// record, refuse or ask WeChat about) is left alone (`None`) for [`apply_payment`] to take in
/// its own transaction after this one commits: the rules stay in one place, and the shared
/// transaction only saves the round trips and the commits.
pub async fn pay_together(
    conn: &mut PgConnection,
    claims: &[Claim<'_>],
    merchant: &ExpectedMerchant,
) -> Result<Vec<Option<Order>>, AppError> {
    // The first claim about each order of this merchant, by number; a later one waits for
    // the commit.
    let mut firsts: HashMap<&str, usize> = HashMap::with_capacity(claims.len());
    for (i, claim) in claims.iter().enumerate() {
        if merchant.is_payee_of(claim.facts) {
            firsts.entry(claim.facts.out_trade_no.as_str()).or_insert(i);
        }
    }
    let numbers: Vec<&str> = firsts.keys().copied().collect();
    let locked = orders::lock_by_numbers(conn, &numbers).await?;
    let payments: Vec<orders::Payment<'_>> = locked
        .iter()
        .filter_map(|order| {
            let facts = claims[firsts[order.out_trade_no.as_str()]].facts;
            (order.status == OrderStatus::Pending && contradicts(order, facts).is_none()).then_some(
                orders::Payment {
                    order,
                    transaction_id: &facts.transaction_id,
                    paid_at: facts.paid_at,
                },
            )
        })
        .collect();
    let mut outcome: Vec<Option<Order>> = claims.iter().map(|_| None).collect();
    if payments.is_empty() {
        return Ok(outcome);
    }
    let paid = orders::mark_paid_many(conn, &payments).await?;
    if paid.len() != payments.len() {
        return Err(AppError::internal(
            "mark paid",
            "a locked order left PENDING",
        ));
    }
    let mut events = Vec::with_capacity(paid.len());
    let mut steps = Vec::with_capacity(paid.len());
    for order in paid {
        let i = firsts[order.out_trade_no.as_str()];
        let (facts, event_id) = (claims[i].facts, Uuid::now_v7());
        events.push(OutboxEvent {
            id: event_id,
            routing_key: messaging::ORDER_PAID.to_owned(),
            payload: convert::order_paid(&order, &event_id).encode_to_vec(),
            trace_id: claims[i].trace_id.to_owned(),
        });
        steps.push((
            order.id,
            format!(
                "paid (transaction {}, {} fen)",
                facts.transaction_id, facts.amount
            ),
        ));
        outcome[i] = Some(order);
    }
    outbox::write(conn, &events).await?;
    history::record_many(conn, Source::Notification.as_str(), &steps).await?;
    Ok(outcome)
}

/// → PAID with WeChat's payment `facts`, and its `order.paid` event, inside the caller's
/// transaction; `None` when the order left the status it was read in. The one place an order
/// becomes PAID one at a time (a notification or query, an operator's review resolution).
pub async fn pay(
    conn: &mut PgConnection,
    order: &Order,
    facts: &PaymentFacts,
) -> Result<Option<Order>, AppError> {
    let Some(paid) = orders::mark_paid(conn, order, &facts.transaction_id, facts.paid_at).await?
    else {
        return Ok(None);
    };
    let event_id = Uuid::now_v7();
    let event = convert::order_paid(&paid, &event_id);
    announce(conn, messaging::ORDER_PAID, event_id, event.encode_to_vec()).await?;
    Ok(Some(paid))
}

/// PENDING → CLOSED (and an `order.closed` event), inside the caller's transaction; `None`
/// when the order is no longer PENDING.
#[tracing::instrument(skip_all, fields(order_id = %order.id, out_trade_no = %order.out_trade_no))]
pub async fn close(
    conn: &mut PgConnection,
    order: &Order,
    reason: CloseReason,
) -> Result<Option<Order>, AppError> {
    let Some(closed) = orders::mark_closed(conn, order, reason).await? else {
        return Ok(None);
    };
    history::record(conn, closed.id, "closed", reason.as_str()).await?;
    let event_id = Uuid::now_v7();
    let event = convert::order_closed(&closed, reason, &event_id);
    announce(
        conn,
        messaging::ORDER_CLOSED,
        event_id,
        event.encode_to_vec(),
    )
    .await?;
    metrics::counter!("orders_closed_total", "reason" => reason.as_str()).increment(1);
    tracing::info!(reason = reason.as_str(), "order closed");
    Ok(Some(closed))
}
