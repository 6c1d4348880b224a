//! The `payment_anomalies` table: payments that contradicted their order, never dropped.

use sqlx::{PgConnection, Row};

use super::orders::{ORDER_COLUMNS, order_from_row};
use super::{Store, StoreError};
use crate::domain::{Order, OrderId, PaymentFacts};

/// An order in REVIEW and the anomaly that put it there.
#[derive(Debug, Clone)]
pub struct InReview {
    /// The order.
    pub order: Order,
    /// Why it is in review (`paid_after_close`, `amount_mismatch`, ...).
    pub reason: String,
    /// The contradicting payment's transaction, if recorded.
    pub transaction_id: Option<String>,
    /// Its amount, if recorded.
    pub amount_fen: Option<i64>,
    /// `notification` or `query`.
    pub source: Option<String>,
}

/// Records a payment claim that contradicts its order, once per claim and source: `false`
/// when this same claim (order number, transaction, source) was recorded before. Per source,
/// because a notification refuted by WeChat and WeChat's own answer about the same
/// transaction are two different records.
pub async fn record(
    conn: &mut PgConnection,
    facts: &PaymentFacts,
    order_id: Option<OrderId>,
    reason: &str,
) -> Result<bool, StoreError> {
    let (seen,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM payment_anomalies WHERE out_trade_no = $1 AND transaction_id IS NOT DISTINCT FROM $2 AND source = $3)",
    )
    .bind(facts.out_trade_no.as_str())
    .bind(facts.transaction_id.as_str())
    .bind(facts.source.as_str())
    .fetch_one(&mut *conn)
    .await?;
    if seen {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO payment_anomalies (out_trade_no, order_id, reason, transaction_id, amount_fen, source, event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(facts.out_trade_no.as_str())
    .bind(order_id.map(OrderId::as_uuid))
    .bind(reason)
    .bind(facts.transaction_id.as_str())
    .bind(facts.amount.as_i64())
    .bind(facts.source.as_str())
    .bind(facts.event_id.as_deref())
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

impl Store {
    /// The orders in REVIEW (at most 200, the longest waiting first), each with the latest
    /// anomaly recorded for it.
    pub async fn in_review(&self) -> Result<Vec<InReview>, StoreError> {
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
                Ok(InReview {
                    order: order_from_row(row)?,
                    reason: anomaly_reason.or(review_reason).unwrap_or_default(),
                    transaction_id: row.try_get("anomaly_transaction_id")?,
                    amount_fen: row.try_get("anomaly_amount_fen")?,
                    source: row.try_get("anomaly_source")?,
                })
            })
            .collect()
    }
}
