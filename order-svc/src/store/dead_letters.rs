//! The `dead_letters` table: events taken off order-svc's dead-letter queue, kept for
//! operators (read, replay).

use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use super::{Store, StoreError};

/// A dead-lettered event as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Our id.
    pub id: i64,
    /// `payment.succeeded`, `refund.settled`, ...
    pub routing_key: String,
    /// The AMQP message id (the event id), if it had one.
    pub message_id: Option<String>,
    /// The protobuf body.
    pub body: Vec<u8>,
    /// Why the broker dead-lettered it (`rejected`, `delivery_limit`).
    pub reason: String,
    /// The trace id it travelled with.
    pub trace_id: Option<String>,
    /// When it was taken off the queue.
    pub dead_at: OffsetDateTime,
    /// How often it was replayed.
    pub replays: i32,
    /// When it was last replayed.
    pub last_replayed_at: Option<OffsetDateTime>,
    /// By whom.
    pub last_replayed_by: Option<String>,
}

/// A dead-lettered event to keep.
#[derive(Debug)]
pub struct NewDeadLetter<'a> {
    /// Its routing key.
    pub routing_key: &'a str,
    /// Its message id.
    pub message_id: Option<&'a str>,
    /// Its body.
    pub body: &'a [u8],
    /// Why it was dead-lettered.
    pub reason: &'a str,
    /// Its trace id.
    pub trace_id: Option<&'a str>,
}

const COLUMNS: &str = "id, routing_key, message_id, body, reason, trace_id, dead_at, replays, last_replayed_at, last_replayed_by";

fn from_row(row: &PgRow) -> Result<DeadLetter, StoreError> {
    Ok(DeadLetter {
        id: row.try_get("id")?,
        routing_key: row.try_get("routing_key")?,
        message_id: row.try_get("message_id")?,
        body: row.try_get("body")?,
        reason: row.try_get("reason")?,
        trace_id: row.try_get("trace_id")?,
        dead_at: row.try_get("dead_at")?,
        replays: row.try_get("replays")?,
        last_replayed_at: row.try_get("last_replayed_at")?,
        last_replayed_by: row.try_get("last_replayed_by")?,
    })
}

impl Store {
    /// Keeps a dead-lettered event.
    pub async fn keep_dead_letter(&self, letter: &NewDeadLetter<'_>) -> Result<i64, StoreError> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO dead_letters (routing_key, message_id, body, reason, trace_id) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(letter.routing_key)
        .bind(letter.message_id)
        .bind(letter.body)
        .bind(letter.reason)
        .bind(letter.trace_id)
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }

    /// The newest `limit` dead letters, newest first.
    pub async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM dead_letters ORDER BY dead_at DESC, id DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The dead letter `id`.
    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM dead_letters WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Counts a replay of dead letter `id` by `operator`.
    pub async fn dead_letter_replayed(
        &self,
        id: i64,
        operator: &str,
    ) -> Result<Option<DeadLetter>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE dead_letters SET replays = replays + 1, last_replayed_at = now(), last_replayed_by = $2
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(operator)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }
}
