//! The `refunds` and `admin_actions` tables, and the order's refund amounts. Every change of
//! a refund runs in the caller's transaction, after the order row was locked
//! ([`lock_order`]): one lock order (the order, then its refund) for every writer.

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;
use wechat_pay::{Fen, OutRefundNo};

use super::orders::{ORDER_COLUMNS, fen, one, order_from_row};
use super::{Store, StoreError};
use crate::domain::{IdempotencyKey, Order, OrderId, Refund, RefundStatus, status_after_refunds};

/// The columns every refund query selects, in [`refund_from_row`]'s order.
const REFUND_COLUMNS: &str = "id, order_id, out_refund_no, amount_fen, reason, requested_by, status, refund_id, failure, created_at, settled_at";

fn refund_from_row(row: &PgRow) -> Result<Refund, StoreError> {
    let number: String = row.try_get("out_refund_no")?;
    let status: String = row.try_get("status")?;
    let order_id: Uuid = row.try_get("order_id")?;
    Ok(Refund {
        id: row.try_get("id")?,
        order_id: OrderId::from(order_id),
        out_refund_no: OutRefundNo::parse(number)
            .map_err(|e| StoreError::corrupt("out_refund_no", e))?,
        amount: fen(row, "amount_fen")?,
        reason: row.try_get("reason")?,
        requested_by: row.try_get("requested_by")?,
        status: status
            .parse()
            .map_err(|e: crate::domain::UnknownRefundStatus| StoreError::corrupt("status", e))?,
        refund_id: row.try_get("refund_id")?,
        failure: row.try_get("failure")?,
        created_at: row.try_get("created_at")?,
        settled_at: row.try_get("settled_at")?,
    })
}

/// Locks the order `id` (in the caller's transaction).
pub async fn lock_order(conn: &mut PgConnection, id: OrderId) -> Result<Option<Order>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.as_uuid())
    .fetch_optional(&mut *conn)
    .await?;
    one(row)
}

/// Sets the locked order's refund amounts and the status they give
/// ([`status_after_refunds`], allowed by the state machine, or unchanged).
pub async fn set_amounts(
    conn: &mut PgConnection,
    order: &Order,
    refunded: Fen,
    refunding: Fen,
) -> Result<Order, StoreError> {
    let status = status_after_refunds(order.amount, refunded, refunding);
    if status != order.status {
        order.status.to(status)?;
    }
    let row = sqlx::query(&format!(
        "UPDATE orders SET refunded_fen = $2, refunding_fen = $3, status = $4, updated_at = now()
         WHERE id = $1 AND status = $5 RETURNING {ORDER_COLUMNS}"
    ))
    .bind(order.id.as_uuid())
    .bind(refunded.as_i64())
    .bind(refunding.as_i64())
    .bind(status.as_str())
    .bind(order.status.as_str())
    .fetch_one(&mut *conn)
    .await?;
    order_from_row(&row)
}

/// A new refund to insert.
#[derive(Debug)]
pub struct NewRefund<'a> {
    /// The refund, `REQUESTED`.
    pub refund: &'a Refund,
    /// The Idempotency-Key and the request's fingerprint, when the operator sent a key.
    pub idempotency: Option<(&'a IdempotencyKey, String)>,
    /// When the worker first sends it again if WeChat has not accepted it by then.
    pub retry_after: Duration,
}

/// Inserts a refund (in the caller's transaction, the order locked).
pub async fn insert(conn: &mut PgConnection, new: &NewRefund<'_>) -> Result<(), StoreError> {
    let r = new.refund;
    let (key, hash) = match &new.idempotency {
        Some((key, hash)) => (Some(key.as_str()), Some(hash.as_str())),
        None => (None, None),
    };
    sqlx::query(
        "INSERT INTO refunds (id, order_id, out_refund_no, amount_fen, reason, requested_by, status, idempotency_key, request_hash, next_query_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10))",
    )
    .bind(r.id)
    .bind(r.order_id.as_uuid())
    .bind(r.out_refund_no.as_str())
    .bind(r.amount.as_i64())
    .bind(&r.reason)
    .bind(&r.requested_by)
    .bind(r.status.as_str())
    .bind(key)
    .bind(hash)
    .bind(new.retry_after.as_secs_f64())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The refund of order `order_id` made under Idempotency-Key `key`, with its request's
/// fingerprint.
pub async fn by_key(
    conn: &mut PgConnection,
    order_id: OrderId,
    key: &IdempotencyKey,
) -> Result<Option<(Refund, String)>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS}, request_hash FROM refunds WHERE order_id = $1 AND idempotency_key = $2"
    ))
    .bind(order_id.as_uuid())
    .bind(key.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| Ok((refund_from_row(&row)?, row.try_get("request_hash")?)))
        .transpose()
}

/// The order a refund number belongs to (to lock it first).
pub async fn order_of(
    conn: &mut PgConnection,
    out_refund_no: &OutRefundNo,
) -> Result<Option<OrderId>, StoreError> {
    let id: Option<(Uuid,)> =
        sqlx::query_as("SELECT order_id FROM refunds WHERE out_refund_no = $1")
            .bind(out_refund_no.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(id.map(|(id,)| OrderId::from(id)))
}

/// Locks the refund numbered `out_refund_no` (its order locked before).
pub async fn lock(
    conn: &mut PgConnection,
    out_refund_no: &OutRefundNo,
) -> Result<Option<Refund>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE out_refund_no = $1 FOR UPDATE"
    ))
    .bind(out_refund_no.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(refund_from_row).transpose()
}

/// WeChat accepted the refund: `PROCESSING` with its number, queried after `query_after`
/// (only from `REQUESTED`; `None` when it had moved on).
pub async fn mark_accepted(
    conn: &mut PgConnection,
    id: Uuid,
    refund_id: &str,
    query_after: Duration,
) -> Result<Option<Refund>, StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE refunds SET status = 'PROCESSING', refund_id = $2, updated_at = now(),
             next_query_at = now() + make_interval(secs => $3), query_attempts = 0
         WHERE id = $1 AND status = 'REQUESTED' RETURNING {REFUND_COLUMNS}"
    ))
    .bind(id)
    .bind(refund_id)
    .bind(query_after.as_secs_f64())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(refund_from_row).transpose()
}

/// Moves a refund from `from` to the final `status` (with WeChat's number and, for
/// `FAILED`, why).
pub async fn finish(
    conn: &mut PgConnection,
    refund: &Refund,
    status: RefundStatus,
    refund_id: Option<&str>,
    failure: Option<&str>,
) -> Result<Refund, StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE refunds SET status = $2, refund_id = COALESCE($3, refund_id), failure = $4,
             settled_at = now(), updated_at = now(), next_query_at = NULL
         WHERE id = $1 AND status = $5 RETURNING {REFUND_COLUMNS}"
    ))
    .bind(refund.id)
    .bind(status.as_str())
    .bind(refund_id)
    .bind(failure)
    .bind(refund.status.as_str())
    .fetch_one(&mut *conn)
    .await?;
    refund_from_row(&row)
}

/// Records an operator's action (in the caller's transaction when there is one).
pub async fn record_action(
    conn: &mut PgConnection,
    action: &AdminAction<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO admin_actions (operator, action, order_id, target, reason, outcome) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(action.operator)
    .bind(action.action)
    .bind(action.order_id.map(OrderId::as_uuid))
    .bind(action.target)
    .bind(action.reason)
    .bind(action.outcome)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One line of the audit log.
#[derive(Debug)]
pub struct AdminAction<'a> {
    /// Who.
    pub operator: &'a str,
    /// What (`refund`, `resolve:accept_payment`, ...).
    pub action: &'a str,
    /// On which order.
    pub order_id: Option<OrderId>,
    /// What else it named (a refund number, a dead letter).
    pub target: Option<&'a str>,
    /// Why, in the operator's words.
    pub reason: &'a str,
    /// What came of it (`requested`, `refused:refund_exceeds_paid`, ...).
    pub outcome: &'a str,
}

/// A line of the audit log as stored.
#[derive(Debug, Clone)]
pub struct LoggedAction {
    /// Who.
    pub operator: String,
    /// What.
    pub action: String,
    /// What else it named.
    pub target: Option<String>,
    /// Why.
    pub reason: String,
    /// What came of it.
    pub outcome: String,
    /// When.
    pub at: OffsetDateTime,
}

impl Store {
    /// The refunds of order `id`, oldest first.
    pub async fn refunds_of(&self, id: OrderId) -> Result<Vec<Refund>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE order_id = $1 ORDER BY created_at, id"
        ))
        .bind(id.as_uuid())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(refund_from_row).collect()
    }

    /// The orders in REVIEW (at most 200, the longest waiting first), each with the latest
    /// anomaly recorded for it.
    pub async fn in_review(&self) -> Result<Vec<crate::reviews::InReview>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS}, review_reason, anomaly_reason, anomaly_transaction_id, anomaly_amount_fen, anomaly_source
             FROM orders LEFT JOIN LATERAL (
                 SELECT reason AS anomaly_reason, transaction_id AS anomaly_transaction_id,
                        amount_fen AS anomaly_amount_fen, source AS anomaly_source
                 FROM payment_anomalies WHERE payment_anomalies.order_id = orders.id
                 ORDER BY created_at DESC, payment_anomalies.id DESC LIMIT 1) latest ON true
             WHERE status = 'REVIEW' ORDER BY updated_at, orders.id LIMIT 200"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let review_reason: Option<String> = row.try_get("review_reason")?;
                let anomaly_reason: Option<String> = row.try_get("anomaly_reason")?;
                Ok(crate::reviews::InReview {
                    order: order_from_row(row)?,
                    reason: anomaly_reason.or(review_reason).unwrap_or_default(),
                    transaction_id: row.try_get("anomaly_transaction_id")?,
                    amount_fen: row.try_get("anomaly_amount_fen")?,
                    source: row.try_get("anomaly_source")?,
                })
            })
            .collect()
    }

    /// The audit log of order `id`, oldest first.
    pub async fn actions_on(&self, id: OrderId) -> Result<Vec<LoggedAction>, StoreError> {
        let rows = sqlx::query(
            "SELECT operator, action, target, reason, outcome, at FROM admin_actions WHERE order_id = $1 ORDER BY at, id",
        )
        .bind(id.as_uuid())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LoggedAction {
                    operator: row.try_get("operator")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    reason: row.try_get("reason")?,
                    outcome: row.try_get("outcome")?,
                    at: row.try_get("at")?,
                })
            })
            .collect()
    }

    /// Records an operator's action on its own.
    pub async fn record_action(&self, action: &AdminAction<'_>) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        record_action(&mut conn, action).await
    }

    /// Claims up to `limit` refunds that are due (not yet accepted by WeChat, or accepted and
    /// not yet final), pushing each one's next turn back by `backoff(attempts)` so another
    /// replica does not take it meanwhile; locked rows are skipped.
    pub async fn claim_due_refunds(
        &self,
        limit: u32,
        first: Duration,
        max: Duration,
    ) -> Result<Vec<Refund>, StoreError> {
        let rows = sqlx::query(&format!(
            "UPDATE refunds SET query_attempts = query_attempts + 1,
                 next_query_at = now() + make_interval(secs => LEAST($2 * power(2, LEAST(query_attempts, 20)), $3))
             WHERE id IN (SELECT id FROM refunds WHERE status IN ('REQUESTED', 'PROCESSING') AND next_query_at <= now()
                          ORDER BY next_query_at LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING {REFUND_COLUMNS}"
        ))
        .bind(i64::from(limit))
        .bind(first.as_secs_f64())
        .bind(max.as_secs_f64())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(refund_from_row).collect()
    }
}
