//! The buyer's side of orders: login, the price list, creating an order, reading one, and
//! listing them. Paying, cancelling and settling are `crate::checkout`.

use std::time::Duration;

use time::OffsetDateTime;
use wechat_pay::{Fen, OpenId};

use crate::cache::OrderCache;
use crate::domain::{
    Cursor, IdempotencyKey, LoginCode, Order, OrderId, OrderItem, OrderRequest, OrderStatus,
    PageSize, Product, new_out_trade_no, time_span,
};
use crate::error::AppError;
use crate::payments::Payments;
use crate::session::{Sessions, TokenError};
use crate::store::{Inserted, NewOrder, OrderFilter, Owner, Store};

/// A page of orders.
#[derive(Debug)]
pub struct Page {
    /// Newest first.
    pub orders: Vec<Order>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<Cursor>,
}

/// A session token and how long it lives.
#[derive(Debug)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
}

/// An order, and whether it was created before under the same Idempotency-Key.
#[derive(Debug)]
pub struct Created {
    /// The order.
    pub order: Order,
    /// `true` when this is a replay of an earlier create.
    pub replayed: bool,
}

/// How to find an order (internal callers).
#[derive(Debug, Clone)]
pub enum OrderRef {
    /// By our id.
    Id(OrderId),
    /// By the number WeChat knows.
    Number(wechat_pay::OutTradeNo),
}

/// The buyer's use cases, over the store, the cache, pay-gateway-svc (for login) and the
/// session signer.
#[derive(Debug, Clone)]
pub struct Orders {
    store: Store,
    cache: OrderCache,
    payments: Payments,
    sessions: Sessions,
    session_ttl: Duration,
    order_ttl: Duration,
}

pub(crate) fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Orders {
    /// Wires the use cases.
    pub fn new(
        store: Store,
        cache: OrderCache,
        payments: Payments,
        sessions: Sessions,
        session_ttl: Duration,
        order_ttl: Duration,
    ) -> Self {
        Orders {
            store,
            cache,
            payments,
            sessions,
            session_ttl,
            order_ttl,
        }
    }

    /// `wx.login` code → a session token for the user WeChat says it belongs to.
    pub async fn login(&self, code: &LoginCode) -> Result<Session, AppError> {
        let openid = self.payments.code2session(code).await?;
        let ttl = self.session_ttl.as_secs();
        let expires = unix_now().saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
        tracing::info!("session issued");
        Ok(Session {
            token: self.sessions.issue(&openid, expires),
            expires_in: ttl,
        })
    }

    /// The user a bearer token was issued to.
    pub fn authenticate(&self, token: &str) -> Result<OpenId, AppError> {
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
        Ok(self.store.products().await?)
    }

    /// Creates an order priced from the price list. With an Idempotency-Key, a retry
    /// returns the same order.
    #[tracing::instrument(skip_all, fields(order_id, out_trade_no))]
    pub async fn create(
        &self,
        openid: &OpenId,
        request: &OrderRequest,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<Created, AppError> {
        let skus: Vec<&str> = request.lines().iter().map(|l| l.sku.as_str()).collect();
        let products = self.store.products_by_sku(&skus).await?;
        let too_large = || AppError::InvalidRequest("the order total is too large".into());
        let mut items = Vec::with_capacity(request.lines().len());
        let mut amount = Fen::ZERO;
        for line in request.lines() {
            let product = products
                .get(&line.sku)
                .ok_or_else(|| AppError::UnknownSku(line.sku.clone()))?;
            amount = product
                .price_fen
                .checked_mul(u64::from(line.quantity))
                .and_then(|t| amount.checked_add(t))
                .ok_or_else(too_large)?;
            items.push(OrderItem {
                sku: product.sku.clone(),
                name: product.name.clone(),
                quantity: line.quantity,
                unit_price_fen: product.price_fen,
            });
        }
        // WeChat's total_fee is a 32-bit integer.
        if amount.get() > i32::MAX as u64 {
            return Err(too_large());
        }
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let order = Order {
            id: OrderId::generate(),
            out_trade_no: new_out_trade_no(),
            openid: openid.clone(),
            status: OrderStatus::Pending,
            amount,
            items,
            created_at: now,
            expires_at: now + time_span(self.order_ttl),
            prepay_id: None,
            prepay_expires_at: None,
            paid_at: None,
            transaction_id: None,
            refunded: Fen::ZERO,
            refunding: Fen::ZERO,
            version: 1,
        };
        let idempotency = idempotency_key.map(|key| (key, request.fingerprint()));
        let created = match self.store.insert(&NewOrder { order, idempotency }).await? {
            Inserted::Created(order) => Created {
                order,
                replayed: false,
            },
            Inserted::Replayed(order) => Created {
                order,
                replayed: true,
            },
            Inserted::KeyReused => return Err(AppError::IdempotencyKeyReused),
        };
        let span = tracing::Span::current();
        span.record("order_id", tracing::field::display(created.order.id));
        span.record(
            "out_trade_no",
            tracing::field::display(&created.order.out_trade_no),
        );
        if !created.replayed {
            tracing::info!(amount_fen = created.order.amount.get(), "order created");
            self.cache.put(&created.order).await;
        }
        Ok(created)
    }

    /// The caller's order `id`: from the cache, else from PostgreSQL (which then fills the
    /// cache). Another user's order is not found.
    pub async fn get(&self, openid: &OpenId, id: OrderId) -> Result<Order, AppError> {
        let order = match self.cache.get(id).await {
            Some(order) => order,
            None => {
                let order = self
                    .store
                    .order(id, &Owner::Anyone)
                    .await?
                    .ok_or(AppError::OrderNotFound)?;
                self.cache.fill(&order).await;
                order
            }
        };
        if order.openid == *openid {
            Ok(order)
        } else {
            Err(AppError::OrderNotFound)
        }
    }

    /// An order, whoever owns it (internal callers).
    pub async fn find(&self, by: &OrderRef) -> Result<Order, AppError> {
        let order = match by {
            OrderRef::Id(id) => self.store.order(*id, &Owner::Anyone).await?,
            OrderRef::Number(number) => self.store.order_by_number(number).await?,
        };
        order.ok_or(AppError::OrderNotFound)
    }

    /// What happened to order `id` that its row does not say: its history steps
    /// (prepays, notifications, queries, closes, anomalies) and the operators' actions on
    /// it, each oldest first.
    pub async fn history(
        &self,
        id: OrderId,
    ) -> Result<
        (
            Vec<crate::store::history::Step>,
            Vec<crate::store::audit::LoggedAction>,
        ),
        AppError,
    > {
        Ok((
            self.store.history_of(id).await?,
            self.store.actions_on(id).await?,
        ))
    }

    /// A page of the orders `owner` may see, newest first, after `cursor`.
    pub async fn list(
        &self,
        owner: &Owner,
        size: PageSize,
        cursor: Option<Cursor>,
    ) -> Result<Page, AppError> {
        self.search(&OrderFilter::of(owner), size, cursor).await
    }

    /// A page of the orders matching `filter` (operators' search), newest first, after
    /// `cursor`.
    pub async fn search(
        &self,
        filter: &OrderFilter,
        size: PageSize,
        cursor: Option<Cursor>,
    ) -> Result<Page, AppError> {
        let limit = size.get();
        let mut orders = self.store.list(filter, limit + 1, cursor).await?;
        let next_cursor = if orders.len() > limit as usize {
            orders.truncate(limit as usize);
            orders.last().map(Cursor::after)
        } else {
            None
        };
        Ok(Page {
            orders,
            next_cursor,
        })
    }
}
