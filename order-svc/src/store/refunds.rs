//! The `refunds` table, and the order's refund amounts. Every change of
//! a refund runs in the caller's transaction, after the order row was locked
//! ([`lock_order`]): one lock order (the order, then its refund) for every writer.

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
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

/// Locks the order numbered `out_trade_no` (in the caller's transaction).
pub async fn lock_order_by_number(
    conn: &mut PgConnection,
    out_trade_no: &wechat_pay::OutTradeNo,
) -> Result<Option<Order>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE out_trade_no = $1 FOR UPDATE"
    ))
    .bind(out_trade_no.as_str())
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
async fn order_of(
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

/// Locks the refund numbered `out_refund_no` and its order, the order first (the one lock
/// order of every refund writer).
pub async fn lock_with_order(
    conn: &mut PgConnection,
    out_refund_no: &OutRefundNo,
) -> Result<Option<(Order, Refund)>, StoreError> {
    let Some(order_id) = order_of(conn, out_refund_no).await? else {
        return Ok(None);
    };
    let Some(order) = lock_order(conn, order_id).await? else {
        return Ok(None);
    };
    Ok(lock(conn, out_refund_no)
        .await?
        .map(|refund| (order, refund)))
}

/// Moves `refund` of the locked `order` to its final `status` (with WeChat's number and,
/// for `FAILED`, why) and releases its reserved amount, counting it refunded on `SUCCESS`:
/// the refund and the order as they are now.
pub async fn settle(
    conn: &mut PgConnection,
    order: &Order,
    refund: &Refund,
    status: RefundStatus,
    refund_id: Option<&str>,
    failure: Option<&str>,
) -> Result<(Refund, Order), StoreError> {
    let refund = finish(conn, refund, status, refund_id, failure).await?;
    let inconsistent =
        || StoreError::corrupt("refunding_fen", "a refund larger than the amount reserved");
    let refunding = order
        .refunding
        .get()
        .checked_sub(refund.amount.get())
        .and_then(|v| Fen::new(v).ok())
        .ok_or_else(inconsistent)?;
    let refunded = if status == RefundStatus::Success {
        order
            .refunded
            .checked_add(refund.amount)
            .ok_or_else(inconsistent)?
    } else {
        order.refunded
    };
    let order = set_amounts(conn, order, refunded, refunding).await?;
    Ok((refund, order))
}

/// Moves a refund to the final `status` (with WeChat's number and, for `FAILED`, why).
async fn finish(
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
