//! The `outbox` table: events written in the same transaction as the state change they
//! announce, then claimed and marked published by the relay. Claiming locks the rows
//! (`FOR UPDATE SKIP LOCKED`), so several replicas never publish the same batch at once.

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::StoreError;

/// An event waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// The event's id (also the AMQP message id).
    pub id: Uuid,
    /// `order.paid`, `order.closed`.
    pub routing_key: String,
    /// The protobuf body.
    pub payload: Vec<u8>,
    /// The trace id of the work that wrote it.
    pub trace_id: String,
}

/// Writes `events` (in the caller's transaction), in one statement.
pub async fn write(conn: &mut PgConnection, events: &[OutboxEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let keys: Vec<&str> = events.iter().map(|e| e.routing_key.as_str()).collect();
    let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
    let traces: Vec<&str> = events.iter().map(|e| e.trace_id.as_str()).collect();
    sqlx::query(
        "INSERT INTO outbox (id, routing_key, payload, trace_id)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::text[])",
    )
    .bind(&ids)
    .bind(&keys)
    .bind(&payloads)
    .bind(&traces)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Locks up to `limit` unpublished events, oldest first (in the caller's transaction, which
/// holds them until it ends).
pub async fn claim(conn: &mut PgConnection, limit: u32) -> Result<Vec<OutboxEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, routing_key, payload, trace_id FROM outbox WHERE published_at IS NULL
         ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(OutboxEvent {
                id: row.try_get("id")?,
                routing_key: row.try_get("routing_key")?,
                payload: row.try_get("payload")?,
                trace_id: row.try_get("trace_id")?,
            })
        })
        .collect()
}

/// Marks the events `ids` published (in the transaction that claimed them), at the time the
/// broker confirmed them (not the transaction's start: the lag is measured from these).
pub async fn mark_published(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY($1)")
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
