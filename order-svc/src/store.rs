//! PostgreSQL: the price list and the orders. Every status change is one guarded statement
//! (`... WHERE status = <expected>`), so no read-modify-write race can apply twice.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;
use wechat_pay::{Fen, OutTradeNo};

use crate::domain::{Order, OrderItem, Product};
use crate::error::AppError;

/// The columns every order query selects, in [`order_from_row`]'s order.
pub(crate) const ORDER_COLUMNS: &str = "id, out_trade_no, openid, status, amount_fen, items, created_at, expires_at, prepay_id, prepay_expires_at, paid_at, transaction_id";

/// Connects and applies the migrations.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// Reads an order row.
pub(crate) fn order_from_row(row: &PgRow) -> Result<Order, AppError> {
    let bad = |what: &str| AppError::internal("database row", format!("invalid {what}"));
    let status: String = row.try_get("status")?;
    let amount: i64 = row.try_get("amount_fen")?;
    let out_trade_no: String = row.try_get("out_trade_no")?;
    let Json(items): Json<Vec<OrderItem>> = row.try_get("items")?;
    Ok(Order {
        id: row.try_get("id")?,
        out_trade_no: OutTradeNo::parse(out_trade_no).map_err(|_| bad("out_trade_no"))?,
        openid: row.try_get("openid")?,
        status: status.parse().map_err(|_| bad("status"))?,
        amount: Fen::from_i64(amount).map_err(|_| bad("amount_fen"))?,
        items,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        prepay_id: row.try_get("prepay_id")?,
        prepay_expires_at: row.try_get("prepay_expires_at")?,
        paid_at: row.try_get("paid_at")?,
        transaction_id: row.try_get("transaction_id")?,
    })
}

/// Reads a product row.
fn product_from_row(row: &PgRow) -> Result<Product, AppError> {
    let price: i64 = row.try_get("price_fen")?;
    Ok(Product {
        sku: row.try_get("sku")?,
        name: row.try_get("name")?,
        price_fen: Fen::from_i64(price)
            .map_err(|_| AppError::internal("products", "negative price"))?,
    })
}

/// A new order to insert.
#[derive(Debug)]
pub struct NewOrder {
    /// The order.
    pub order: Order,
    /// `(Idempotency-Key, hash of the request)`, when the client sent a key.
    pub idempotency: Option<(String, String)>,
}

/// What inserting gave.
#[derive(Debug)]
pub enum Inserted {
    /// A new order.
    Created(Order),
    /// The key was used before, with the same request: that order.
    Replayed(Order),
}

/// The order store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Over this pool.
    pub fn new(pool: PgPool) -> Self {
        Store { pool }
    }

    /// The pool (readiness checks, tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The active price list.
    pub async fn products(&self) -> Result<Vec<Product>, AppError> {
        let rows =
            sqlx::query("SELECT sku, name, price_fen FROM products WHERE active ORDER BY sku")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(product_from_row).collect()
    }

    /// The active products among `skus`.
    pub async fn products_by_sku(
        &self,
        skus: &[String],
    ) -> Result<HashMap<String, Product>, AppError> {
        let rows =
            sqlx::query("SELECT sku, name, price_fen FROM products WHERE active AND sku = ANY($1)")
                .bind(skus)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(product_from_row)
            .map(|p| p.map(|p| (p.sku.clone(), p)))
            .collect()
    }

    /// Inserts an order, or finds the one created before under the same Idempotency-Key.
    pub async fn insert(&self, new: NewOrder) -> Result<Inserted, AppError> {
        let o = &new.order;
        let (key, hash) = new.idempotency.clone().unzip();
        let row = sqlx::query(&format!(
            "INSERT INTO orders (id, out_trade_no, openid, status, amount_fen, items, created_at, expires_at, updated_at, idempotency_key, request_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $9, $10)
             ON CONFLICT (openid, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING {ORDER_COLUMNS}"
        ))
        .bind(o.id)
        .bind(o.out_trade_no.as_str())
        .bind(&o.openid)
        .bind(o.status.as_str())
        .bind(o.amount.as_i64())
        .bind(Json(&o.items))
        .bind(o.created_at)
        .bind(o.expires_at)
        .bind(&key)
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(Inserted::Created(order_from_row(&row)?));
        }
        // The key exists: the same request gets the same order; another request is refused.
        let (Some(key), Some(hash)) = (key, hash) else {
            return Err(AppError::internal(
                "insert order",
                "conflict without an idempotency key",
            ));
        };
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS}, request_hash FROM orders WHERE openid = $1 AND idempotency_key = $2"))
            .bind(&o.openid)
            .bind(&key)
            .fetch_one(&self.pool)
            .await?;
        let stored_hash: String = row.try_get("request_hash")?;
        if stored_hash != hash {
            return Err(AppError::IdempotencyKeyReused);
        }
        Ok(Inserted::Replayed(order_from_row(&row)?))
    }

    /// The order `id` if it belongs to `openid` (another user's order is "not found").
    pub async fn order_for_owner(&self, id: Uuid, openid: &str) -> Result<Option<Order>, AppError> {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND openid = $2"
        ))
        .bind(id)
        .bind(openid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// The order `id`, whoever owns it (internal callers).
    pub async fn order(&self, id: Uuid) -> Result<Option<Order>, AppError> {
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// The order numbered `out_trade_no`.
    pub async fn order_by_number(&self, out_trade_no: &str) -> Result<Option<Order>, AppError> {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE out_trade_no = $1"
        ))
        .bind(out_trade_no)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// A page of orders, newest first, of `openid` (or everyone's), after `cursor`.
    pub async fn list(
        &self,
        openid: Option<&str>,
        limit: u32,
        cursor: Option<(OffsetDateTime, Uuid)>,
    ) -> Result<Vec<Order>, AppError> {
        let (after_time, after_id) = cursor.unzip();
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders
             WHERE ($1::text IS NULL OR openid = $1)
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
             ORDER BY created_at DESC, id DESC
             LIMIT $4"
        ))
        .bind(openid)
        .bind(after_time)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Records a prepay session on a still-PENDING order; `None` when the order left
    /// PENDING meanwhile.
    /// The first active query is due `query_after_secs` later.
    pub async fn set_prepay(
        &self,
        id: Uuid,
        prepay_id: &str,
        expires_at: OffsetDateTime,
        query_after_secs: f64,
    ) -> Result<Option<Order>, AppError> {
        let row = sqlx::query(&format!(
            "UPDATE orders SET prepay_id = $2, prepay_expires_at = $3, prepaid_at = COALESCE(prepaid_at, now()), updated_at = now(),
                    next_query_at = COALESCE(next_query_at, now() + make_interval(secs => $4))
             WHERE id = $1 AND status = 'PENDING'
             RETURNING {ORDER_COLUMNS}"
        ))
        .bind(id)
        .bind(prepay_id)
        .bind(expires_at)
        .bind(query_after_secs)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// Starts a transaction (for transitions that lock rows).
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, AppError> {
        Ok(self.pool.begin().await?)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| format!("PostgreSQL: {e}"))
    }
}
