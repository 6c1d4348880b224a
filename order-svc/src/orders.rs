//! The order use cases behind the HTTP and gRPC APIs: login, price list, create, read,
//! list, prepay.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proto::paygateway::v1 as pb;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;
use wechat_pay::Fen;
use wechat_pay::v2::RequestPayment;

use crate::cache::OrderCache;
use crate::domain::{Order, OrderItem, OrderStatus, Product, new_out_trade_no};
use crate::error::AppError;
use crate::payments::{CloseOutcome, Payments, QueryOutcome};
use crate::session::{Sessions, TokenError};
use crate::settings::Settings;
use crate::store::{Inserted, NewOrder, ORDER_COLUMNS, Store, order_from_row};
use crate::transitions::{self, Applied, ExpectedMerchant, PaymentFacts, Source};

/// Most lines in one order.
pub const MAX_LINES: usize = 20;
/// Most units of one sku in one order.
pub const MAX_QUANTITY: u32 = 99;
/// A prepay_id is reused only while it has at least this long left.
const PREPAY_REUSE_MARGIN: Duration = Duration::from_secs(5 * 60);
/// WeChat needs at least this long between now and `time_expire`.
const MIN_PAY_WINDOW: Duration = Duration::from_secs(61);
/// Fields that would carry an amount: refused, the server computes amounts.
const AMOUNT_FIELDS: &[&str] = &[
    "amount",
    "amount_fen",
    "price",
    "price_fen",
    "unit_price_fen",
    "total",
    "total_fee",
    "total_fen",
];

/// A page of orders.
#[derive(Debug)]
pub struct Page {
    /// Newest first.
    pub orders: Vec<Order>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOrderBody {
    items: Vec<ItemBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    sku: String,
    quantity: u32,
}

/// The use cases, over the store, the cache, pay-gateway-svc and the session signer.
#[derive(Debug, Clone)]
pub struct Orders {
    store: Store,
    cache: OrderCache,
    payments: Payments,
    sessions: Sessions,
    session_ttl: Duration,
    order_ttl: Duration,
    description: String,
    merchant: ExpectedMerchant,
    query_after: Duration,
    query_max_interval: Duration,
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
            Settled::Closed(o) | Settled::Paid(Applied::Paid(o) | Applied::Review(o, _)) => Some(o),
            _ => None,
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn offset(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

impl Orders {
    /// Wires the use cases.
    pub fn new(store: Store, cache: OrderCache, payments: Payments, settings: &Settings) -> Self {
        Orders {
            store,
            cache,
            payments,
            sessions: Sessions::new(settings.session_secret.clone()),
            session_ttl: settings.session_ttl,
            order_ttl: settings.order_ttl,
            description: settings.payment_description.clone(),
            merchant: ExpectedMerchant {
                appid: settings.wechat_appid.clone(),
                mch_id: settings.wechat_mch_id.clone(),
            },
            query_after: settings.payment_query_after,
            query_max_interval: settings.payment_query_max_interval,
        }
    }

    /// The store (readiness, gRPC).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `wx.login` code → session token and its lifetime in seconds.
    pub async fn login(&self, code: &str) -> Result<(String, u64), AppError> {
        if code.is_empty() || code.len() > 128 || !code.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AppError::InvalidRequest(
                "`code` must be the code returned by wx.login".into(),
            ));
        }
        let session = self.payments.code2session(code).await?;
        let ttl = self.session_ttl.as_secs();
        let expires = unix_now().saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
        tracing::info!("session issued");
        Ok((self.sessions.issue(&session.openid, expires), ttl))
    }

    /// The openid of a bearer token.
    pub fn authenticate(&self, token: &str) -> Result<String, AppError> {
        self.sessions
            .verify(token, unix_now())
            .map_err(|e| match e {
                TokenError::Invalid => AppError::Unauthenticated("invalid session token"),
                TokenError::Expired => {
                    AppError::Unauthenticated("session token expired; log in again")
                }
            })
    }

    /// The price list.
    pub async fn products(&self) -> Result<Vec<Product>, AppError> {
        self.store.products().await
    }

    /// Creates an order from a raw JSON body, priced from the price list. With an
    /// Idempotency-Key, a retry returns the same order (`true` = replayed).
    pub async fn create(
        &self,
        openid: &str,
        body: &[u8],
        idempotency_key: Option<&str>,
    ) -> Result<(Order, bool), AppError> {
        let request = parse_create(body)?;
        if let Some(key) = idempotency_key
            && (key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(AppError::InvalidRequest(
                "Idempotency-Key must be 1 to 64 visible ASCII characters".into(),
            ));
        }
        let skus: Vec<String> = request.items.iter().map(|i| i.sku.clone()).collect();
        let products = self.store.products_by_sku(&skus).await?;
        let mut items = Vec::with_capacity(request.items.len());
        let mut amount = Fen::ZERO;
        for line in &request.items {
            let product = products
                .get(&line.sku)
                .ok_or_else(|| AppError::UnknownSku(line.sku.clone()))?;
            let line_total = product.price_fen.checked_mul(u64::from(line.quantity));
            amount = line_total
                .and_then(|t| amount.checked_add(t))
                .ok_or_else(|| AppError::InvalidRequest("the order total is too large".into()))?;
            items.push(OrderItem {
                sku: product.sku.clone(),
                name: product.name.clone(),
                quantity: line.quantity,
                unit_price_fen: product.price_fen,
            });
        }
        // WeChat's total_fee is a 32-bit integer.
        if amount.get() > i32::MAX as u64 {
            return Err(AppError::InvalidRequest(
                "the order total is too large".into(),
            ));
        }
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let order = Order {
            id: Uuid::now_v7(),
            out_trade_no: new_out_trade_no(),
            openid: openid.to_owned(),
            status: OrderStatus::Pending,
            amount,
            items,
            created_at: now,
            expires_at: now + offset(self.order_ttl),
            prepay_id: None,
            prepay_expires_at: None,
            paid_at: None,
            transaction_id: None,
        };
        let idempotency = idempotency_key.map(|k| (k.to_owned(), request_hash(&request)));
        let (order, replayed) = match self.store.insert(NewOrder { order, idempotency }).await? {
            Inserted::Created(o) => (o, false),
            Inserted::Replayed(o) => (o, true),
        };
        if !replayed {
            tracing::info!(order_id = %order.id, out_trade_no = %order.out_trade_no, amount_fen = order.amount.get(), "order created");
            self.cache.put(&order).await;
        }
        Ok((order, replayed))
    }

    /// The caller's order `id`: from the cache, else from PostgreSQL.
    pub async fn get(&self, openid: &str, id: &str) -> Result<Order, AppError> {
        let id: Uuid = id.parse().map_err(|_| AppError::OrderNotFound)?;
        if let Some(order) = self.cache.get(id).await {
            return if order.openid == openid {
                Ok(order)
            } else {
                Err(AppError::OrderNotFound)
            };
        }
        let order = self.store.order(id).await?.ok_or(AppError::OrderNotFound)?;
        self.cache.fill(&order).await;
        if order.openid == openid {
            Ok(order)
        } else {
            Err(AppError::OrderNotFound)
        }
    }

    /// A page of the caller's orders (or everyone's, for internal callers).
    pub async fn list(
        &self,
        openid: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page, AppError> {
        let limit = match limit {
            None | Some(0) => 20,
            Some(l) if l <= 100 => l,
            Some(_) => {
                return Err(AppError::InvalidRequest(
                    "limit must be between 1 and 100".into(),
                ));
            }
        };
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(decode_cursor)
            .transpose()?;
        let mut orders = self.store.list(openid, limit + 1, after).await?;
        let next_cursor = if orders.len() > limit as usize {
            orders.truncate(limit as usize);
            orders.last().map(encode_cursor)
        } else {
            None
        };
        Ok(Page {
            orders,
            next_cursor,
        })
    }

    /// The `wx.requestPayment` object for the caller's order: a fresh prepay, or the valid
    /// one the order already has, re-signed.
    pub async fn pay(&self, openid: &str, id: &str) -> Result<RequestPayment, AppError> {
        let id: Uuid = id.parse().map_err(|_| AppError::OrderNotFound)?;
        let order = self
            .store
            .order_for_owner(id, openid)
            .await?
            .ok_or(AppError::OrderNotFound)?;
        if order.status != OrderStatus::Pending {
            return Err(AppError::OrderNotPayable(format!(
                "the order is {}",
                order.status
            )));
        }
        let now = OffsetDateTime::now_utc();
        if order.expires_at - now < offset(MIN_PAY_WINDOW) {
            return Err(AppError::OrderNotPayable(
                "the order has expired or is about to".into(),
            ));
        }
        let reuse = match (&order.prepay_id, order.prepay_expires_at) {
            (Some(p), Some(exp)) if exp - now > offset(PREPAY_REUSE_MARGIN) => p.clone(),
            _ => String::new(),
        };
        let reused = !reuse.is_empty();
        let answer = self
            .payments
            .create_prepay(pb::CreatePrepayRequest {
                out_trade_no: order.out_trade_no.to_string(),
                amount_fen: order.amount.as_i64(),
                description: self.description.clone(),
                openid: order.openid.clone(),
                client_ip: String::new(),
                time_start_unix: order.created_at.unix_timestamp(),
                time_expire_unix: order.expires_at.unix_timestamp(),
                reuse_prepay_id: reuse,
            })
            .await?;
        if !reused {
            let expires = OffsetDateTime::from_unix_timestamp(answer.prepay_expires_at_unix)
                .map_err(|e| AppError::internal("prepay expiry", e))?;
            let updated = self
                .store
                .set_prepay(
                    order.id,
                    &answer.prepay_id,
                    expires,
                    self.query_after.as_secs_f64(),
                )
                .await?;
            if updated.is_none() {
                return Err(AppError::OrderNotPayable(
                    "the order is no longer pending".into(),
                ));
            }
            tracing::info!(order_id = %order.id, out_trade_no = %order.out_trade_no, "prepay created");
        }
        let p = answer.payment.ok_or_else(|| {
            AppError::internal("prepay", "pay-gateway-svc sent no payment object")
        })?;
        Ok(RequestPayment {
            app_id: p.app_id,
            time_stamp: p.time_stamp,
            nonce_str: p.nonce_str,
            package: p.package,
            sign_type: p.sign_type,
            pay_sign: p.pay_sign,
        })
    }
}

impl Orders {
    /// Applies a payment (from a notification or a query) in its own transaction; the cache
    /// is updated after the commit.
    pub async fn apply_payment(&self, facts: &PaymentFacts) -> Result<Applied, AppError> {
        let mut tx = self.store.begin().await?;
        let applied = transitions::apply_payment(&mut tx, facts, &self.merchant).await?;
        tx.commit().await?;
        match &applied {
            Applied::Paid(o) | Applied::Review(o, _) => self.cache.put(o).await,
            Applied::Duplicate(_) | Applied::Rejected(_) | Applied::AlreadyRecorded => {}
        }
        Ok(applied)
    }

    /// Settles an unpaid order that is locked in `tx`: asks WeChat first (it may have been
    /// paid), closes it there, then closes it here.
    async fn settle_unpaid(
        &self,
        tx: &mut sqlx::PgConnection,
        order: &Order,
        reason: &'static str,
    ) -> Result<Settled, AppError> {
        // Asked even without a recorded prepay_id: a unified order may have succeeded at
        // WeChat while its answer was lost. An order WeChat never saw is simply not found.
        let number = order.out_trade_no.as_str();
        if let Some(facts) = self.paid_at_wechat(number).await? {
            return Ok(Settled::Paid(
                transitions::apply_payment(tx, &facts, &self.merchant).await?,
            ));
        }
        if self.payments.close_payment(number).await? == CloseOutcome::AlreadyPaid {
            let facts = self.paid_at_wechat(number).await?.ok_or_else(|| {
                AppError::internal("close order", "WeChat says paid, its query says not")
            })?;
            return Ok(Settled::Paid(
                transitions::apply_payment(tx, &facts, &self.merchant).await?,
            ));
        }
        Ok(transitions::close(tx, order, reason)
            .await?
            .map_or(Settled::Unchanged, Settled::Closed))
    }

    /// The payment WeChat reports for `out_trade_no`, if it was paid.
    async fn paid_at_wechat(&self, out_trade_no: &str) -> Result<Option<PaymentFacts>, AppError> {
        use proto::paygateway::v1::TradeState;
        match self.payments.query_payment(out_trade_no).await? {
            QueryOutcome::Found(q)
                if matches!(q.state(), TradeState::Success | TradeState::Refund) =>
            {
                Ok(Some(PaymentFacts {
                    out_trade_no: q.out_trade_no,
                    transaction_id: q.transaction_id,
                    amount_fen: q.amount_fen,
                    appid: q.appid,
                    mch_id: q.mch_id,
                    paid_at_unix: q.paid_at_unix,
                    event_id: None,
                    source: Source::Query,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Closes the caller's order on request (`POST /orders/{id}/cancel`).
    pub async fn cancel(&self, openid: &str, id: &str) -> Result<Order, AppError> {
        let id: Uuid = id.parse().map_err(|_| AppError::OrderNotFound)?;
        let mut tx = self.store.begin().await?;
        let order = transitions::lock(&mut tx, id, Some(openid))
            .await?
            .ok_or(AppError::OrderNotFound)?;
        let (result, changed) = match order.status {
            OrderStatus::Closed => (Ok(order), None),
            OrderStatus::Pending => {
                let settled = self.settle_unpaid(&mut tx, &order, "cancelled").await?;
                let changed = settled.changed().cloned();
                match settled {
                    Settled::Closed(closed) => (Ok(closed), changed),
                    Settled::Paid(_) | Settled::Unchanged => (
                        Err(AppError::OrderNotPayable(
                            "the order was paid; it cannot be cancelled".into(),
                        )),
                        changed,
                    ),
                }
            }
            other => (
                Err(AppError::OrderNotPayable(format!(
                    "the order is {other}; it cannot be cancelled"
                ))),
                None,
            ),
        };
        tx.commit().await?;
        if let Some(order) = &changed {
            self.cache.put(order).await;
        }
        result
    }

    /// Closes up to `limit` expired PENDING orders, each in its own transaction with its row
    /// locked (`FOR UPDATE SKIP LOCKED`), so several replicas never close one order twice and
    /// never skip one. Returns how many orders were settled.
    pub async fn expire_once(&self, limit: usize) -> Result<usize, AppError> {
        let mut settled = 0;
        // Orders that failed this pass (WeChat unavailable, a refusal): skipped for the rest
        // of the pass so one bad order cannot stall the others; retried next pass.
        let mut failed: Vec<Uuid> = Vec::new();
        for _ in 0..limit {
            let mut tx = self.store.begin().await?;
            let row = sqlx::query(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE status = 'PENDING' AND expires_at <= now() AND NOT (id = ANY($1))
                 ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED"
            ))
            .bind(&failed)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { break };
            let order = order_from_row(&row)?;
            let outcome = match self.settle_unpaid(&mut tx, &order, "expired").await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::warn!(order_id = %order.id, out_trade_no = %order.out_trade_no, error = %e, "could not settle an expired order; retrying next pass");
                    metrics::counter!("sweeper_failures_total").increment(1);
                    failed.push(order.id);
                    continue;
                }
            };
            tx.commit().await?;
            if let Some(order) = outcome.changed() {
                self.cache.put(order).await;
            }
            settled += 1;
        }
        Ok(settled)
    }

    /// Queries WeChat about up to `limit` PENDING orders whose prepay got no notification
    /// yet, each claimed with `FOR UPDATE SKIP LOCKED` and rescheduled with exponential
    /// backoff; a paid one goes through the same transition as a notification.
    pub async fn query_once(&self, limit: i64) -> Result<usize, AppError> {
        let rows = sqlx::query(&format!(
            "UPDATE orders SET query_attempts = query_attempts + 1,
                    next_query_at = now() + make_interval(secs => LEAST($1 * power(2, LEAST(query_attempts, 20)), $2))
             WHERE id IN (SELECT id FROM orders
                          WHERE status = 'PENDING' AND next_query_at <= now() AND expires_at > now()
                          ORDER BY next_query_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING {ORDER_COLUMNS}"
        ))
        .bind(self.query_after.as_secs_f64())
        .bind(self.query_max_interval.as_secs_f64())
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?;
        let mut applied = 0;
        for row in &rows {
            let order = order_from_row(row)?;
            if let Some(facts) = self.paid_at_wechat(order.out_trade_no.as_str()).await? {
                tracing::info!(out_trade_no = %order.out_trade_no, "payment found by order query (no notification yet)");
                self.apply_payment(&facts).await?;
                applied += 1;
            }
        }
        Ok(applied)
    }
}

/// Parses a create-order body: amounts refused by name, unknown fields refused, every line
/// a known shape with a sane quantity.
fn parse_create(body: &[u8]) -> Result<CreateOrderBody, AppError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::InvalidJson(format!("the body is not valid JSON: {e}")))?;
    let mut objects = vec![&value];
    if let Some(items) = value.get("items").and_then(Value::as_array) {
        objects.extend(items.iter());
    }
    for object in objects {
        if let Some(map) = object.as_object()
            && let Some(field) = map.keys().find(|k| AMOUNT_FIELDS.contains(&k.as_str()))
        {
            return Err(AppError::AmountNotAccepted(field.clone()));
        }
    }
    let request: CreateOrderBody = serde_json::from_value(value)
        .map_err(|e| AppError::InvalidRequest(format!("invalid order: {e}")))?;
    if request.items.is_empty() || request.items.len() > MAX_LINES {
        return Err(AppError::InvalidRequest(format!(
            "an order has 1 to {MAX_LINES} items"
        )));
    }
    let mut seen = HashSet::new();
    for item in &request.items {
        if item.quantity == 0 || item.quantity > MAX_QUANTITY {
            return Err(AppError::InvalidRequest(format!(
                "quantity must be between 1 and {MAX_QUANTITY}"
            )));
        }
        if item.sku.is_empty() || item.sku.len() > 32 {
            return Err(AppError::UnknownSku(item.sku.chars().take(32).collect()));
        }
        if !seen.insert(item.sku.as_str()) {
            return Err(AppError::InvalidRequest(format!(
                "sku {:?} appears twice; use its quantity",
                item.sku
            )));
        }
    }
    Ok(request)
}

/// A stable hash of what a create request asks for (items sorted by sku).
fn request_hash(request: &CreateOrderBody) -> String {
    let mut lines: Vec<(&str, u32)> = request
        .items
        .iter()
        .map(|i| (i.sku.as_str(), i.quantity))
        .collect();
    lines.sort_unstable();
    let canonical: String = lines.iter().map(|(sku, q)| format!("{sku}x{q};")).collect();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn encode_cursor(order: &Order) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}:{}",
        order.created_at.unix_timestamp_nanos(),
        order.id
    ))
}

fn decode_cursor(cursor: &str) -> Result<(OffsetDateTime, Uuid), AppError> {
    let invalid = || AppError::InvalidRequest("invalid cursor".into());
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (nanos, id) = raw.split_once(':').ok_or_else(invalid)?;
    let nanos: i128 = nanos.parse().map_err(|_| invalid())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| invalid())?;
    Ok((at, id.parse().map_err(|_| invalid())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_are_checked() {
        assert!(parse_create(br#"{"items":[{"sku":"TEA","quantity":2}]}"#).is_ok());
        let code = |b: &[u8]| parse_create(b).err().map(|e| e.code());
        assert_eq!(code(b"{not json"), Some("invalid_json"));
        assert_eq!(
            code(br#"{"items":[{"sku":"TEA","quantity":1}],"amount_fen":1}"#),
            Some("amount_not_accepted")
        );
        assert_eq!(
            code(br#"{"items":[{"sku":"TEA","quantity":1,"price_fen":1}]}"#),
            Some("amount_not_accepted")
        );
        assert_eq!(
            code(br#"{"items":[{"sku":"TEA","quantity":0}]}"#),
            Some("invalid_request")
        );
        assert_eq!(
            code(br#"{"items":[{"sku":"TEA","quantity":100}]}"#),
            Some("invalid_request")
        );
        assert_eq!(
            code(br#"{"items":[{"sku":"TEA","quantity":-1}]}"#),
            Some("invalid_request")
        );
        assert_eq!(
            code(br#"{"items":[{"sku":"TEA","quantity":1e30}]}"#),
            Some("invalid_request")
        );
        assert_eq!(code(br#"{"items":[]}"#), Some("invalid_request"));
        assert_eq!(
            code(br#"{"items":[{"sku":"A","quantity":1},{"sku":"A","quantity":1}]}"#),
            Some("invalid_request")
        );
        assert_eq!(
            code(br#"{"items":[{"sku":"TEA","quantity":1,"note":"x"}]}"#),
            Some("invalid_request")
        );
        assert_eq!(code(br#"[]"#), Some("invalid_request"));
    }

    #[test]
    fn request_hash_ignores_line_order() {
        let a = parse_create(br#"{"items":[{"sku":"A","quantity":1},{"sku":"B","quantity":2}]}"#)
            .unwrap();
        let b = parse_create(br#"{"items":[{"sku":"B","quantity":2},{"sku":"A","quantity":1}]}"#)
            .unwrap();
        let c = parse_create(br#"{"items":[{"sku":"B","quantity":3},{"sku":"A","quantity":1}]}"#)
            .unwrap();
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_ne!(request_hash(&a), request_hash(&c));
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("12:not-a-uuid")).is_err());
        let id = Uuid::now_v7();
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let raw = URL_SAFE_NO_PAD.encode(format!("{}:{id}", at.unix_timestamp_nanos()));
        assert_eq!(decode_cursor(&raw).unwrap(), (at, id));
    }
}
