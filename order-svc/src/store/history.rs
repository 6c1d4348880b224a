//! The `order_history` table: steps of an order no other table keeps (prepays, each
//! notification and order query with its outcome, closes), written beside the change they
//! describe; a step about an order nobody has (a claim naming an unknown number) records
//! nothing.

use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use wechat_pay::OutTradeNo;

use super::{Store, StoreError};
use crate::domain::OrderId;

/// One step.
#[derive(Debug, Clone)]
pub struct Step {
    /// When.
    pub at: OffsetDateTime,
    /// `prepay`, `prepay_reused`, `notification`, `query`, `closed`.
    pub kind: String,
    /// What happened, in words.
    pub detail: String,
}

/// Records a step of order `id` (in the caller's transaction).
pub async fn record(
    conn: &mut PgConnection,
    id: OrderId,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO order_history (order_id, kind, detail) VALUES ($1, $2, $3)")
        .bind(id.as_uuid())
        .bind(kind)
        .bind(detail)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records a step of the order numbered `number`, if there is one (a payment claim may name
/// an order nobody has).
pub async fn record_by_number(
    conn: &mut PgConnection,
    number: &OutTradeNo,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO order_history (order_id, kind, detail) SELECT id, $2, $3 FROM orders WHERE out_trade_no = $1",
    )
    .bind(number.as_str())
    .bind(kind)
    .bind(detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records one step of `kind` for each `(order, detail)`, in one statement.
pub async fn record_many(
    conn: &mut PgConnection,
    kind: &str,
    steps: &[(OrderId, String)],
) -> Result<(), StoreError> {
    if steps.is_empty() {
        return Ok(());
    }
    let ids: Vec<uuid::Uuid> = steps.iter().map(|(id, _)| id.as_uuid()).collect();
    let details: Vec<&str> = steps.iter().map(|(_, d)| d.as_str()).collect();
    sqlx::query(
        "INSERT INTO order_history (order_id, kind, detail)
         SELECT s.id, $1, s.detail FROM unnest($2::uuid[], $3::text[]) AS s(id, detail)",
    )
    .bind(kind)
    .bind(&ids)
    .bind(&details)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Records a step on its own.
    pub async fn record_step(
        &self,
        id: OrderId,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        record(&mut conn, id, kind, detail).await
    }

    /// The steps of order `id`, oldest first, and its anomalies as steps.
    pub async fn history_of(&self, id: OrderId) -> Result<Vec<Step>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, kind, detail FROM order_history WHERE order_id = $1
             UNION ALL
             SELECT created_at, 'anomaly', reason || ' (' || source || COALESCE(', transaction ' || transaction_id, '')
                    || COALESCE(', ' || amount_fen || ' fen', '') || ')'
             FROM payment_anomalies WHERE order_id = $1
             ORDER BY 1",
        )
        .bind(id.as_uuid())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Step {
                    at: row.try_get(0)?,
                    kind: row.try_get(1)?,
                    detail: row.try_get(2)?,
                })
            })
            .collect()
    }
}
