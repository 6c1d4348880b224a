//! The review queue: orders a payment contradicted (amount, merchant, paid after close), which
//! only an operator may settle. Every resolution asks WeChat first, with no transaction held,
//! and is allowed only where WeChat's answer makes it sense: `accept_payment` and `refund`
//! need WeChat to say it was paid, `close` needs WeChat to say it was not. Each attempt is
//! audited, refusals included.

use std::sync::Arc;

use serde::Deserialize;

use crate::cache::OrderCache;
use crate::domain::{CloseReason, Order, OrderId, OrderStatus, RefundRequest};
use crate::error::AppError;
use crate::payments::Payments;
use crate::refunds::Refunds;
use crate::store::anomalies::InReview;
use crate::store::audit::AdminAction;
use crate::store::{Owner, Store};
use crate::transitions;

/// What an operator decides about an order in REVIEW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// WeChat has the payment and the shop keeps it: the order becomes PAID.
    AcceptPayment,
    /// WeChat has the payment and the shop gives it back: PAID, then refunded in full.
    Refund,
    /// WeChat has no payment: the order is closed.
    Close,
}

impl Resolution {
    fn action(self) -> &'static str {
        match self {
            Resolution::AcceptPayment => "resolve:accept_payment",
            Resolution::Refund => "resolve:refund",
            Resolution::Close => "resolve:close",
        }
    }
}

/// The review use cases.
#[derive(Debug, Clone)]
pub struct Reviews {
    store: Store,
    cache: OrderCache,
    payments: Payments,
    refunds: Arc<Refunds>,
}

impl Reviews {
    /// Wires the use cases.
    pub fn new(store: Store, cache: OrderCache, payments: Payments, refunds: Arc<Refunds>) -> Self {
        Reviews {
            store,
            cache,
            payments,
            refunds,
        }
    }

    /// The orders in REVIEW, oldest change first, with their latest anomaly.
    pub async fn list(&self) -> Result<Vec<InReview>, AppError> {
        Ok(self.store.in_review().await?)
    }

    /// Settles order `id`, in REVIEW, as `resolution` says, if WeChat's answer allows it.
    pub async fn resolve(
        &self,
        operator: &str,
        id: OrderId,
        resolution: Resolution,
        reason: &str,
    ) -> Result<Order, AppError> {
        let result = self.settle(operator, id, resolution, reason).await;
        let outcome = match &result {
            Ok(order) => format!("done:{}", order.status),
            Err(e) => format!("refused:{}", e.code()),
        };
        self.store
            .record_action(&AdminAction {
                operator,
                action: resolution.action(),
                order_id: Some(id),
                target: None,
                reason,
                outcome: &outcome,
            })
            .await?;
        result
    }

    async fn settle(
        &self,
        operator: &str,
        id: OrderId,
        resolution: Resolution,
        reason: &str,
    ) -> Result<Order, AppError> {
        let order = self
            .store
            .order(id, &Owner::Anyone)
            .await?
            .ok_or(AppError::OrderNotFound)?;
        if order.status != OrderStatus::Review {
            return Err(AppError::ResolutionNotAllowed(format!(
                "the order is {}, not in REVIEW",
                order.status
            )));
        }
        let paid = self.payments.paid_at_wechat(&order.out_trade_no).await?;
        match (resolution, paid) {
            (Resolution::Close, Some(_)) => Err(AppError::ResolutionNotAllowed(
                "WeChat says the order was paid: accept the payment or refund it".into(),
            )),
            (Resolution::AcceptPayment | Resolution::Refund, None) => {
                Err(AppError::ResolutionNotAllowed(
                    "WeChat says the order was not paid: close it".into(),
                ))
            }
            (Resolution::Close, None) => {
                let mut tx = self.store.begin().await?;
                let closed = transitions::close(&mut tx, &order, CloseReason::Resolved)
                    .await?
                    .ok_or_else(|| {
                        AppError::ResolutionNotAllowed("the order changed meanwhile".into())
                    })?;
                tx.commit().await?;
                self.store.outbox_committed();
                self.cache.put(&closed).await;
                Ok(closed)
            }
            (Resolution::AcceptPayment | Resolution::Refund, Some(facts)) => {
                if resolution == Resolution::Refund && facts.amount != order.amount {
                    return Err(AppError::ResolutionNotAllowed(format!(
                        "WeChat took {} fen for an order of {} fen: refund it at the merchant platform",
                        facts.amount, order.amount
                    )));
                }
                let mut tx = self.store.begin().await?;
                let paid = transitions::pay(&mut tx, &order, &facts)
                    .await?
                    .ok_or_else(|| {
                        AppError::ResolutionNotAllowed("the order changed meanwhile".into())
                    })?;
                tx.commit().await?;
                self.store.outbox_committed();
                self.cache.put(&paid).await;
                tracing::info!(order_id = %id, operator, transaction_id = %facts.transaction_id, "payment accepted out of review");
                if resolution == Resolution::AcceptPayment {
                    return Ok(paid);
                }
                let request = RefundRequest::new(paid.amount.as_i64(), reason)?;
                self.refunds.request(operator, id, &request, None).await?;
                self.store
                    .order(id, &Owner::Anyone)
                    .await?
                    .ok_or(AppError::OrderNotFound)
            }
        }
    }
}
