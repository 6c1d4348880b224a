//! The outbox relay: publishes the events transitions wrote to the outbox, with confirms and
//! `mandatory`, so an event is marked published only once a queue holds it (a consumer's, or
//! the unrouted queue behind the orders exchange's alternate exchange). Batches of events go
//! out with pipelined confirms, and the relay is woken by the commit that wrote them (in
//! process), not by a timer.

use std::time::Duration;

use messaging::EVENT_TYPE_HEADER;
use service_runtime::shutdown::Shutdown;
use service_runtime::telemetry::{TRACE_ID_HEADER, error_chain};
use uuid::Uuid;

use super::Workers;
use crate::error::AppError;
use crate::store::outbox;

/// Events published per step: the batch is claimed in one transaction and published with
/// pipelined confirms (all sent, then all confirms awaited).
pub(super) const RELAY_BATCH: u32 = 500;

/// How long the relay waits for a wake-up before it looks anyway (for events another process
/// wrote: its own relay is woken, but it may have died).
const RELAY_FALLBACK: Duration = Duration::from_secs(1);

impl Workers {
    /// Publishes up to a batch of unpublished outbox events, with confirms, in one
    /// transaction that holds their rows (so several replicas never publish the same batch
    /// at once). The publishes are pipelined: every event is sent, then the confirms are
    /// awaited together; each confirmed event is marked published, one that is not stays
    /// for the next step. Returns how many were published.
    pub async fn relay_once(&self) -> Result<usize, AppError> {
        let mut tx = self.store.begin().await?;
        let events = outbox::claim(&mut tx, RELAY_BATCH).await?;
        let sends = events.iter().map(|event| async move {
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
            (event.id, sent)
        });
        let mut published: Vec<Uuid> = Vec::with_capacity(events.len());
        let mut unconfirmed = 0usize;
        let mut first_error = None;
        for (id, sent) in futures_util::future::join_all(sends).await {
            match sent {
                Ok(()) => published.push(id),
                Err(e) => {
                    unconfirmed += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            tracing::warn!(unconfirmed, error = %error_chain(&e), "outbox relay: events not confirmed stay in the outbox");
        }
        outbox::mark_published(&mut tx, &published).await?;
        tx.commit().await?;
        Ok(published.len())
    }

    /// The relay's loop until `stop`: a step, then another at once while steps come back
    /// full, else a wait until this process commits outbox events ([`Store::outbox_committed`])
    /// or [`RELAY_FALLBACK`] passed (what another replica, or a process that died, left).
    ///
    /// [`Store::outbox_committed`]: crate::store::Store::outbox_committed
    pub(super) async fn run_relay(self, stop: Shutdown) {
        let stopped = stop.wait();
        tokio::pin!(stopped);
        loop {
            let full = match self.relay_once().await {
                Ok(n) => n >= RELAY_BATCH as usize,
                Err(e) => {
                    tracing::warn!(worker = "outbox relay", error = %error_chain(&e), "worker step failed; retrying next period");
                    false
                }
            };
            if full {
                if stop.is_triggered() {
                    break;
                }
                continue;
            }
            tokio::select! {
                () = &mut stopped => break,
                () = self.store.outbox_committed_since() => {}
                () = tokio::time::sleep(RELAY_FALLBACK) => {}
            }
        }
        tracing::info!(worker = "outbox relay", "stopped");
    }
}
