//! Daily reconciliations and their differences (`reconciliations`,
//! `reconciliation_differences`): the lease that makes one replica run a day, the report.

use serde_json::Value;
use sqlx::Row;
use time::{Date, OffsetDateTime};

use super::{Store, StoreError};
use crate::domain::reconciliation::{Difference, DifferenceKind, Report, RunStatus};

/// How long a claimed run may take before another replica may take it over.
const LEASE_SECS: f64 = 600.0;

impl Store {
    /// Claims day `day` for `owner`: always when `forced` (an operator's request) unless
    /// another replica holds a live lease, otherwise only when the day is not yet reconciled
    /// and its next attempt is due. `None`: not claimed (someone else runs it, or nothing is
    /// due).
    pub async fn claim_reconciliation(
        &self,
        day: Date,
        owner: &str,
        forced: bool,
    ) -> Result<Option<()>, StoreError> {
        sqlx::query(
            "INSERT INTO reconciliations (day, status) VALUES ($1, 'PENDING') ON CONFLICT (day) DO NOTHING",
        )
        .bind(day)
        .execute(self.pool())
        .await?;
        let claimed = sqlx::query(
            "UPDATE reconciliations
             SET status = 'RUNNING', lease_owner = $2,
                 lease_until = now() + make_interval(secs => $3),
                 attempts = attempts + 1, started_at = now(), error = NULL
             WHERE day = $1
               AND (lease_until IS NULL OR lease_until < now())
               AND ($4 OR (status NOT IN ('MATCHED', 'DIFFERENCES') AND next_attempt_at <= now()))
             RETURNING day",
        )
        .bind(day)
        .bind(owner)
        .bind(LEASE_SECS)
        .bind(forced)
        .fetch_optional(self.pool())
        .await?;
        Ok(claimed.map(|_| ()))
    }

    /// Stores the outcome of `owner`'s run of `day`: its totals and differences (replacing
    /// the last run's), the lease released. False when the lease was lost meanwhile (nothing
    /// is stored: the new holder's run counts).
    pub async fn finish_reconciliation(
        &self,
        day: Date,
        owner: &str,
        totals: &Value,
        differences: &[Difference],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let status = if differences.is_empty() {
            RunStatus::Matched
        } else {
            RunStatus::Differences
        };
        let held = sqlx::query(
            "UPDATE reconciliations
             SET status = $3, lease_owner = NULL, lease_until = NULL, totals = $4,
                 finished_at = now(), error = NULL
             WHERE day = $1 AND lease_owner = $2 RETURNING day",
        )
        .bind(day)
        .bind(owner)
        .bind(status.as_str())
        .bind(totals)
        .fetch_optional(&mut *tx)
        .await?;
        if held.is_none() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM reconciliation_differences WHERE day = $1")
            .bind(day)
            .execute(&mut *tx)
            .await?;
        for d in differences {
            sqlx::query(
                "INSERT INTO reconciliation_differences (day, kind, out_trade_no, transaction_id, out_refund_no, detail, healed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(day)
            .bind(d.kind.as_str())
            .bind(&d.out_trade_no)
            .bind(&d.transaction_id)
            .bind(&d.out_refund_no)
            .bind(&d.detail)
            .bind(d.healed)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records that `owner`'s run of `day` failed: tried again after `retry_after_secs`.
    pub async fn fail_reconciliation(
        &self,
        day: Date,
        owner: &str,
        error: &str,
        retry_after_secs: f64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE reconciliations
             SET status = 'FAILED', lease_owner = NULL, lease_until = NULL, error = $3,
                 finished_at = now(), next_attempt_at = now() + make_interval(secs => $4)
             WHERE day = $1 AND lease_owner = $2",
        )
        .bind(day)
        .bind(owner)
        .bind(error)
        .bind(retry_after_secs)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The report of day `day`, if it was ever claimed.
    pub async fn reconciliation(&self, day: Date) -> Result<Option<Report>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT status, attempts, error, totals, started_at, finished_at FROM reconciliations WHERE day = $1",
        )
        .bind(day)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let status: String = row.try_get("status")?;
        let differences = sqlx::query(
            "SELECT kind, out_trade_no, transaction_id, out_refund_no, detail, healed
             FROM reconciliation_differences WHERE day = $1 ORDER BY id",
        )
        .bind(day)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(Difference {
                kind: kind
                    .parse::<DifferenceKind>()
                    .map_err(|e| StoreError::corrupt("kind", e))?,
                out_trade_no: r.try_get("out_trade_no")?,
                transaction_id: r.try_get("transaction_id")?,
                out_refund_no: r.try_get("out_refund_no")?,
                detail: r.try_get("detail")?,
                healed: r.try_get("healed")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(Report {
            day,
            status: status
                .parse::<RunStatus>()
                .map_err(|e| StoreError::corrupt("status", e))?,
            attempts: row.try_get("attempts")?,
            error: row.try_get("error")?,
            totals: row
                .try_get::<Option<Value>, _>("totals")?
                .unwrap_or(Value::Null),
            started_at: row.try_get::<Option<OffsetDateTime>, _>("started_at")?,
            finished_at: row.try_get::<Option<OffsetDateTime>, _>("finished_at")?,
            differences,
        }))
    }

    /// The books' side of a day: the numbers of the orders paid in `[from, to)`.
    pub async fn paid_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT out_trade_no FROM orders WHERE paid_at >= $1 AND paid_at < $2 ORDER BY paid_at",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// The books' side of a day's refunds: those requested in `[from, to)` that WeChat
    /// accepted, as (refund number, order number, amount in fen, status).
    pub async fn refunds_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<(String, String, i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.out_refund_no, o.out_trade_no, r.amount_fen, r.status
             FROM refunds r JOIN orders o ON o.id = r.order_id
             WHERE r.created_at >= $1 AND r.created_at < $2 AND r.status NOT IN ('REQUESTED', 'FAILED')
             ORDER BY r.created_at",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?)
    }

    /// What the books say of one refund, whatever its day: (status, amount).
    pub async fn refund_by_number(
        &self,
        out_refund_no: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT status, amount_fen FROM refunds WHERE out_refund_no = $1")
                .bind(out_refund_no)
                .fetch_optional(self.pool())
                .await?,
        )
    }
}
