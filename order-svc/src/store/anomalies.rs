//! The `payment_anomalies` table: payments that contradicted their order, never dropped.

use sqlx::PgConnection;

use super::StoreError;
use crate::domain::{OrderId, PaymentFacts};

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
