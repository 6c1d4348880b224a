//! The `admin_actions` table: the audit log of every operator's action, refusals included.

use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use super::{Store, StoreError};
use crate::domain::OrderId;

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
    /// Records an operator's action on its own.
    pub async fn record_action(&self, action: &AdminAction<'_>) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        record_action(&mut conn, action).await
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
}
