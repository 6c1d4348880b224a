//! The outbox relay: publishes the events transitions wrote to the outbox, with confirms and
//! `mandatory`, so an event is marked published only once a queue holds it (a consumer's, or
//! the unrouted queue behind the orders exchange's alternate exchange).

use messaging::EVENT_TYPE_HEADER;
use service_runtime::telemetry::{TRACE_ID_HEADER, error_chain};
use uuid::Uuid;

use super::{BATCH, Workers};
use crate::error::AppError;
use crate::store::outbox;

impl Workers {
    /// Publishes up to a batch of unpublished outbox events, with confirms, in one
    /// transaction that holds their rows (so several replicas never publish the same batch
    /// at once). Returns how many were published.
    pub async fn relay_once(&self) -> Result<usize, AppError> {
        let mut tx = self.store.begin().await?;
        let events = outbox::claim(&mut tx, BATCH).await?;
        let mut published: Vec<Uuid> = Vec::with_capacity(events.len());
        for event in &events {
            let sent = self
                .publisher
                .publish(
                    &self.topology.orders_exchange(),
                    &event.routing_key,
                    &event.payload,
                    &event.id.to_string(),
                    &[
                        (TRACE_ID_HEADER, &event.trace_id),
                        (EVENT_TYPE_HEADER, &event.routing_key),
                    ],
                    // Mandatory: the orders exchange's alternate exchange takes what no
                    // consumer is bound for; if even that is missing, the broker returns the
                    // event and it stays in the outbox instead of vanishing.
                    true,
                )
                .await;
            match sent {
                Ok(()) => published.push(event.id),
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "outbox relay paused: event not confirmed");
                    break;
                }
            }
        }
        outbox::mark_published(&mut tx, &published).await?;
        tx.commit().await?;
        Ok(published.len())
    }
}
