//! The `orders` table: inserting, reading, listing, the prepay record, the work lists of the
//! workers, and the guarded status changes.

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;
use wechat_pay::{Fen, OpenId, OutTradeNo, TransactionId};

use super::{Store, StoreError};
use crate::domain::{CloseReason, Cursor, IdempotencyKey, Order, OrderId, OrderItem, OrderStatus};

/// The columns every order query selects, in [`order_from_row`]'s order.
pub(super) const ORDER_COLUMNS: &str = "id, out_trade_no, openid, status, amount_fen, items, created_at, expires_at, prepay_id, prepay_expires_at, paid_at, transaction_id, refunded_fen, refunding_fen, version";

pub(super) fn order_from_row(row: &PgRow) -> Result<Order, StoreError> {
    let status: String = row.try_get("status")?;
    let amount: i64 = row.try_get("amount_fen")?;
    let out_trade_no: String = row.try_get("out_trade_no")?;
    let openid: String = row.try_get("openid")?;
    let transaction_id: Option<String> = row.try_get("transaction_id")?;
    let id: Uuid = row.try_get("id")?;
    let Json(items): Json<Vec<OrderItem>> = row.try_get("items")?;
    Ok(Order {
        id: OrderId::from(id),
        out_trade_no: OutTradeNo::parse(out_trade_no)
            .map_err(|e| StoreError::corrupt("out_trade_no", e))?,
        openid: OpenId::parse(openid).map_err(|e| StoreError::corrupt("openid", e))?,
        status: status
            .parse()
            .map_err(|e: crate::domain::UnknownStatus| StoreError::corrupt("status", e))?,
        amount: Fen::from_i64(amount).map_err(|e| StoreError::corrupt("amount_fen", e))?,
        items,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        prepay_id: row.try_get("prepay_id")?,
        prepay_expires_at: row.try_get("prepay_expires_at")?,
        paid_at: row.try_get("paid_at")?,
        transaction_id: transaction_id
            .map(TransactionId::parse)
            .transpose()
            .map_err(|e| StoreError::corrupt("transaction_id", e))?,
        refunded: fen(row, "refunded_fen")?,
        refunding: fen(row, "refunding_fen")?,
        version: row.try_get("version")?,
    })
}

pub(super) fn fen(row: &PgRow, column: &'static str) -> Result<Fen, StoreError> {
    let value: i64 = row.try_get(column)?;
    Fen::from_i64(value).map_err(|e| StoreError::corrupt(column, e))
}

pub(super) fn one(row: Option<PgRow>) -> Result<Option<Order>, StoreError> {
    row.as_ref().map(order_from_row).transpose()
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Whose orders a read may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Only this buyer's.
    User(OpenId),
    /// Anyone's (internal callers).
    Anyone,
}

impl Owner {
    fn openid(&self) -> Option<&str> {
        match self {
            Owner::User(openid) => Some(openid.as_str()),
            Owner::Anyone => None,
        }
    }
}

/// Which orders a listing returns: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// This buyer's.
    pub openid: Option<OpenId>,
    /// In this status.
    pub status: Option<OrderStatus>,
    /// With this number.
    pub out_trade_no: Option<OutTradeNo>,
    /// Paid by this WeChat payment.
    pub transaction_id: Option<TransactionId>,
    /// Created at or after.
    pub from: Option<OffsetDateTime>,
    /// Created before.
    pub to: Option<OffsetDateTime>,
}

impl OrderFilter {
    /// The orders `owner` may see.
    pub fn of(owner: &Owner) -> Self {
        OrderFilter {
            openid: match owner {
                Owner::User(openid) => Some(openid.clone()),
                Owner::Anyone => None,
            },
            ..OrderFilter::default()
        }
    }
}

/// A new order to insert.
#[derive(Debug)]
pub struct NewOrder {
    /// The order.
    pub order: Order,
    /// The Idempotency-Key and the fingerprint of the request, when the client sent a key.
    pub idempotency: Option<(IdempotencyKey, String)>,
}

/// What inserting gave.
#[derive(Debug)]
pub enum Inserted {
    /// A new order.
    Created(Order),
    /// The key was used before with the same request: that order.
    Replayed(Order),
    /// The key was used before with another request.
    KeyReused,
}

impl Store {
    /// Inserts an order, or finds the one created before under the same Idempotency-Key.
    pub async fn insert(&self, new: &NewOrder) -> Result<Inserted, StoreError> {
        let o = &new.order;
        let (key, fingerprint) = match &new.idempotency {
            Some((key, fingerprint)) => (Some(key.as_str()), Some(fingerprint.as_str())),
            None => (None, None),
        };
        let row = sqlx::query(&format!(
            "INSERT INTO orders (id, out_trade_no, openid, status, amount_fen, items, created_at, expires_at, updated_at, idempotency_key, request_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $9, $10)
             ON CONFLICT (openid, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING {ORDER_COLUMNS}"
        ))
        .bind(o.id.as_uuid())
        .bind(o.out_trade_no.as_str())
        .bind(o.openid.as_str())
        .bind(o.status.as_str())
        .bind(o.amount.as_i64())
        .bind(Json(&o.items))
        .bind(o.created_at)
        .bind(o.expires_at)
        .bind(key)
        .bind(fingerprint)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = row {
            return Ok(Inserted::Created(order_from_row(&row)?));
        }
        // Only the idempotency index can conflict: the same request gets the same order.
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS}, request_hash FROM orders WHERE openid = $1 AND idempotency_key = $2"
        ))
        .bind(o.openid.as_str())
        .bind(key)
        .fetch_one(self.pool())
        .await?;
        let stored: Option<String> = row.try_get("request_hash")?;
        if stored.as_deref() != fingerprint {
            return Ok(Inserted::KeyReused);
        }
        Ok(Inserted::Replayed(order_from_row(&row)?))
    }

    /// The order `id`, if `owner` may see it (another buyer's order is "not found").
    pub async fn order(&self, id: OrderId, owner: &Owner) -> Result<Option<Order>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND ($2::text IS NULL OR openid = $2)"
        ))
        .bind(id.as_uuid())
        .bind(owner.openid())
        .fetch_optional(self.pool())
        .await?;
        one(row)
    }

    /// The order numbered `out_trade_no`.
    pub async fn order_by_number(
        &self,
        out_trade_no: &OutTradeNo,
    ) -> Result<Option<Order>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE out_trade_no = $1"
        ))
        .bind(out_trade_no.as_str())
        .fetch_optional(self.pool())
        .await?;
        one(row)
    }

    /// Up to `limit` orders matching `filter`, newest first, after `after`.
    pub async fn list(
        &self,
        filter: &OrderFilter,
        limit: u32,
        after: Option<Cursor>,
    ) -> Result<Vec<Order>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders
             WHERE ($1::text IS NULL OR openid = $1)
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
               AND ($5::text IS NULL OR status = $5)
               AND ($6::text IS NULL OR out_trade_no = $6)
               AND ($7::text IS NULL OR transaction_id = $7)
               AND ($8::timestamptz IS NULL OR created_at >= $8)
               AND ($9::timestamptz IS NULL OR created_at < $9)
             ORDER BY created_at DESC, id DESC
             LIMIT $4"
        ))
        .bind(filter.openid.as_ref().map(OpenId::as_str))
        .bind(after.map(|c| c.created_at))
        .bind(after.map(|c| c.id.as_uuid()))
        .bind(i64::from(limit))
        .bind(filter.status.map(OrderStatus::as_str))
        .bind(filter.out_trade_no.as_ref().map(OutTradeNo::as_str))
        .bind(filter.transaction_id.as_ref().map(TransactionId::as_str))
        .bind(filter.from)
        .bind(filter.to)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Records a prepay session on a still-PENDING order, and schedules its first active
    /// query `query_after` later; `false` when the order left PENDING meanwhile.
    pub async fn set_prepay(
        &self,
        id: OrderId,
        prepay_id: &str,
        expires_at: OffsetDateTime,
        query_after: Duration,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE orders SET prepay_id = $2, prepay_expires_at = $3, prepaid_at = COALESCE(prepaid_at, now()), updated_at = now(),
                    next_query_at = COALESCE(next_query_at, now() + make_interval(secs => $4))
             WHERE id = $1 AND status = 'PENDING'",
        )
        .bind(id.as_uuid())
        .bind(prepay_id)
        .bind(expires_at)
        .bind(seconds(query_after))
        .execute(self.pool())
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Claims up to `limit` PENDING, unexpired orders whose active query is due, and
    /// reschedules each with exponential backoff (`first_after` doubling, capped at
    /// `max_interval`). Claimed rows are skipped by other replicas (`FOR UPDATE SKIP LOCKED`).
    pub async fn claim_due_queries(
        &self,
        first_after: Duration,
        max_interval: Duration,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        let rows = sqlx::query(&format!(
            "UPDATE orders SET query_attempts = query_attempts + 1,
                    next_query_at = now() + make_interval(secs => LEAST($1 * power(2, LEAST(query_attempts, 20)), $2))
             WHERE id IN (SELECT id FROM orders
                          WHERE status = 'PENDING' AND next_query_at <= now() AND expires_at > now()
                          ORDER BY next_query_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING {ORDER_COLUMNS}"
        ))
        .bind(seconds(first_after))
        .bind(seconds(max_interval))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(order_from_row).collect()
    }
}

/// Locks the order numbered `out_trade_no` for a transition.
pub async fn lock_by_number(
    conn: &mut PgConnection,
    out_trade_no: &OutTradeNo,
) -> Result<Option<Order>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE out_trade_no = $1 FOR UPDATE"
    ))
    .bind(out_trade_no.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    one(row)
}

/// Locks the orders numbered `numbers` (those that exist), in id order so that two
/// transactions locking overlapping sets never deadlock.
pub async fn lock_by_numbers(
    conn: &mut PgConnection,
    numbers: &[&str],
) -> Result<Vec<Order>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE out_trade_no = ANY($1) ORDER BY id FOR UPDATE"
    ))
    .bind(numbers)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(order_from_row).collect()
}

/// One PENDING order to mark PAID by [`mark_paid_many`].
#[derive(Debug)]
pub struct Payment<'a> {
    /// The locked PENDING order.
    pub order: &'a Order,
    /// WeChat's number for the payment.
    pub transaction_id: &'a TransactionId,
    /// When it was paid, if WeChat said.
    pub paid_at: Option<OffsetDateTime>,
}

/// PENDING → PAID for several locked orders in one statement (the guard and the unique
/// index as in [`mark_paid`]); returns the orders it changed, in no particular order.
pub async fn mark_paid_many(
    conn: &mut PgConnection,
    payments: &[Payment<'_>],
) -> Result<Vec<Order>, StoreError> {
    for p in payments {
        p.order.status.to(OrderStatus::Paid)?;
    }
    let ids: Vec<Uuid> = payments.iter().map(|p| p.order.id.as_uuid()).collect();
    let transaction_ids: Vec<&str> = payments.iter().map(|p| p.transaction_id.as_str()).collect();
    let paid_at: Vec<Option<OffsetDateTime>> = payments.iter().map(|p| p.paid_at).collect();
    let rows = sqlx::query(&format!(
        "UPDATE orders SET status = 'PAID', transaction_id = p.tx, paid_at = COALESCE(p.at, now()), next_query_at = NULL, updated_at = now()
         FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS p(oid, tx, at)
         WHERE orders.id = p.oid AND orders.status = 'PENDING' RETURNING {ORDER_COLUMNS}"
    ))
    .bind(&ids)
    .bind(&transaction_ids)
    .bind(&paid_at)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(order_from_row).collect()
}

/// PENDING → PAID with WeChat's number (the unique index on `transaction_id` refuses a
/// second order with the same payment).
pub async fn mark_paid(
    conn: &mut PgConnection,
    order: &Order,
    transaction_id: &TransactionId,
    paid_at: Option<OffsetDateTime>,
) -> Result<Option<Order>, StoreError> {
    order.status.to(OrderStatus::Paid)?;
    let row = sqlx::query(&format!(
        "UPDATE orders SET status = 'PAID', transaction_id = $3, paid_at = COALESCE($4, now()), next_query_at = NULL, updated_at = now()
         WHERE id = $1 AND status = $2 RETURNING {ORDER_COLUMNS}"
    ))
    .bind(order.id.as_uuid())
    .bind(order.status.as_str())
    .bind(transaction_id.as_str())
    .bind(paid_at)
    .fetch_optional(&mut *conn)
    .await?;
    one(row)
}

/// PENDING → CLOSED, saying why; `None` when the order is no longer PENDING.
pub async fn mark_closed(
    conn: &mut PgConnection,
    order: &Order,
    reason: CloseReason,
) -> Result<Option<Order>, StoreError> {
    order.status.to(OrderStatus::Closed)?;
    let row = sqlx::query(&format!(
        "UPDATE orders SET status = 'CLOSED', closed_at = now(), close_reason = $3, next_query_at = NULL, updated_at = now()
         WHERE id = $1 AND status = $2 RETURNING {ORDER_COLUMNS}"
    ))
    .bind(order.id.as_uuid())
    .bind(order.status.as_str())
    .bind(reason.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    one(row)
}

/// → REVIEW, saying why; `None` when the order left the status it was read in.
pub async fn mark_review(
    conn: &mut PgConnection,
    order: &Order,
    reason: &str,
) -> Result<Option<Order>, StoreError> {
    order.status.to(OrderStatus::Review)?;
    let row = sqlx::query(&format!(
        "UPDATE orders SET status = 'REVIEW', review_reason = $3, updated_at = now()
         WHERE id = $1 AND status = $2 RETURNING {ORDER_COLUMNS}"
    ))
    .bind(order.id.as_uuid())
    .bind(order.status.as_str())
    .bind(reason)
    .fetch_optional(&mut *conn)
    .await?;
    one(row)
}

impl Store {
    /// Claims the expired PENDING order that expired first and is not leased (nor in
    /// `skip`), by bumping its lease `lease` ahead, in one statement: the row lock lasts only
    /// as long as the statement (`FOR UPDATE SKIP LOCKED` keeps two replicas from claiming the
    /// same row), and the lease keeps others away while WeChat is asked.
    pub async fn claim_next_expired(
        &self,
        skip: &[OrderId],
        lease: Duration,
    ) -> Result<Option<Order>, StoreError> {
        let skip: Vec<Uuid> = skip.iter().map(|id| id.as_uuid()).collect();
        let row = sqlx::query(&format!(
            "UPDATE orders SET settle_lease_until = now() + make_interval(secs => $2)
             WHERE id = (SELECT id FROM orders
                         WHERE status = 'PENDING' AND expires_at <= now() AND NOT (id = ANY($1))
                           AND (settle_lease_until IS NULL OR settle_lease_until <= now())
                         ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING {ORDER_COLUMNS}"
        ))
        .bind(&skip)
        .bind(seconds(lease))
        .fetch_optional(self.pool())
        .await?;
        one(row)
    }

    /// Gives up a sweeper's claim on order `id` (settling it failed), so the next pass may
    /// try again.
    pub async fn release_settle_lease(&self, id: OrderId) -> Result<(), StoreError> {
        sqlx::query("UPDATE orders SET settle_lease_until = NULL WHERE id = $1")
            .bind(id.as_uuid())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
