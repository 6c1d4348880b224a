//! The payment-event consumer: one verdict per event (ack, retry, dead-letter).

use messaging::{Message, PAYMENT_FAILED, PAYMENT_SUCCEEDED, Verdict};
use prost::Message as _;
use proto::events::v1::{PaymentFailed, PaymentSucceeded};
use service_runtime::telemetry::{TRACE_ID_HEADER, error_chain, new_trace_id, with_trace_id};
use tracing::Instrument;

use super::Workers;
use crate::domain::PaymentFacts;
use crate::transitions::Applied;

impl Workers {
    /// Handles one payment event and says what to do with the message.
    pub async fn handle_event(&self, message: Message) -> Verdict {
        let trace_id = message
            .header(TRACE_ID_HEADER)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(new_trace_id);
        let span = tracing::info_span!("payment_event", trace_id = %trace_id, routing_key = %message.routing_key, redelivered = message.redelivered, out_trade_no = tracing::field::Empty);
        let work = async {
            match message.routing_key.as_str() {
                PAYMENT_SUCCEEDED => self.payment_succeeded(&message).await,
                PAYMENT_FAILED => match PaymentFailed::decode(message.data.as_slice()) {
                    Ok(e) => {
                        tracing::info!(out_trade_no = %e.out_trade_no, err_code = %e.err_code, "WeChat reports a failed payment; the order stays payable");
                        Verdict::Ack
                    }
                    Err(e) => dead_letter("undecodable", &e),
                },
                other => dead_letter("unknown_routing_key", &other),
            }
        };
        with_trace_id(trace_id, work.instrument(span)).await
    }

    async fn payment_succeeded(&self, message: &Message) -> Verdict {
        let event = match PaymentSucceeded::decode(message.data.as_slice()) {
            Ok(e) => e,
            Err(e) => return dead_letter("undecodable", &e),
        };
        let facts = match PaymentFacts::try_from(event) {
            Ok(facts) => facts,
            Err(e) => return dead_letter("invalid_event", &error_chain(&e)),
        };
        tracing::Span::current()
            .record("out_trade_no", tracing::field::display(&facts.out_trade_no));
        match self.checkout.apply_payment(&facts).await {
            Ok(Applied::Paid(_)) => Verdict::Ack,
            Ok(Applied::Duplicate(_) | Applied::AlreadyRecorded) => {
                tracing::info!("duplicate payment event: nothing to do");
                metrics::counter!("payment_events_total", "outcome" => "duplicate").increment(1);
                Verdict::Ack
            }
            Ok(Applied::Review(_, reason) | Applied::Rejected(reason)) => {
                dead_letter(reason, &facts.out_trade_no)
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), delay = ?self.retry_delay, "payment event not applied; it will be redelivered");
                metrics::counter!("payment_events_total", "outcome" => "retry").increment(1);
                // A pause before giving it back, so a short database outage does not burn the
                // delivery limit in milliseconds.
                tokio::time::sleep(self.retry_delay).await;
                Verdict::Retry
            }
        }
    }
}

fn dead_letter(reason: &'static str, detail: &dyn std::fmt::Display) -> Verdict {
    tracing::error!(reason, %detail, "payment event dead-lettered");
    metrics::counter!("payment_events_dead_lettered_total", "reason" => reason).increment(1);
    Verdict::DeadLetter
}
