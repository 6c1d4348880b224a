//! `POST /wechat/pay/notify` and `POST /wechat/refund/notify`, in named steps: size cap →
//! parse + signature (payments) or decryption (refunds) → merchant → publish with confirm →
//! ack. Every failure before the confirm answers the failure ack, so WeChat sends the
//! notification again.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use messaging::{EVENT_TYPE_HEADER, PublishError, Publisher, Topology};
use service_runtime::telemetry::{TRACE_ID_HEADER, current_trace_id, error_chain};
use sha2::{Digest, Sha256};
use tracing::field::display;
use wechat_pay::v2::{self, NotifyError, xml::XmlError};

use crate::convert::PaymentEvent;
use crate::settings::Settings;

#[derive(Debug, Clone)]
pub(crate) struct NotifyState {
    /// The merchant and key notifications must match, and the body limit.
    pub(crate) settings: Arc<Settings>,
    pub(crate) publisher: Publisher,
    pub(crate) topology: Topology,
}

/// Why a notification was not accepted. Each is answered with the failure ack.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("notification body over the size limit")]
    TooLarge(#[source] axum::Error),
    /// Not a well-formed, correctly signed notification for our merchant.
    #[error("notification refused")]
    Invalid(#[from] NotifyError),
    /// The broker did not confirm the event: it may not exist, so WeChat must send again.
    #[error("event not published")]
    Publish(#[from] PublishError),
}

impl Refusal {
    /// The `reason` label of `notifications_total` and the text of the failure ack.
    fn reason(&self) -> &'static str {
        match self {
            Refusal::TooLarge(_)
            | Refusal::Invalid(NotifyError::Xml(XmlError::TooLarge { .. })) => "body_too_large",
            Refusal::Invalid(NotifyError::Xml(
                XmlError::Doctype
                | XmlError::EntityDeclaration
                | XmlError::ExternalEntity
                | XmlError::UnknownEntity,
            )) => "hostile_xml",
            Refusal::Invalid(NotifyError::Xml(_)) => "malformed_xml",
            Refusal::Invalid(NotifyError::NotSuccess) => "return_code_fail",
            Refusal::Invalid(NotifyError::Signature(v2::SignatureError::Missing)) => "unsigned",
            Refusal::Invalid(NotifyError::Signature(v2::SignatureError::UnknownSignType)) => {
                "unknown_sign_type"
            }
            Refusal::Invalid(NotifyError::Signature(v2::SignatureError::Mismatch)) => {
                "bad_signature"
            }
            // A refund's `req_info` that does not decrypt under our key: forged, for another
            // merchant's key, or damaged.
            Refusal::Invalid(NotifyError::Undecryptable) => "undecryptable",
            Refusal::Invalid(NotifyError::Field(_)) => "invalid_field",
            Refusal::Invalid(NotifyError::MerchantMismatch(_)) => "wrong_merchant",
            Refusal::Publish(_) => "publish_failed",
        }
    }
}

/// Which callback a notification came to.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Payment,
    Refund,
}

#[tracing::instrument(skip_all, fields(out_trade_no))]
pub(crate) async fn pay_notify(State(state): State<NotifyState>, body: Body) -> Response {
    receive(&state, body, Kind::Payment).await
}

#[tracing::instrument(skip_all, fields(out_trade_no, out_refund_no))]
pub(crate) async fn refund_notify(State(state): State<NotifyState>, body: Body) -> Response {
    receive(&state, body, Kind::Refund).await
}

async fn receive(state: &NotifyState, body: Body, kind: Kind) -> Response {
    // Step 1: the size cap, before a byte is parsed.
    let body = match axum::body::to_bytes(body, state.settings.max_body).await {
        Ok(body) => body,
        Err(e) => return refuse(&Refusal::TooLarge(e), &[]),
    };
    match accept(state, &body, kind).await {
        // Step 5: the success ack, only once the broker has the event.
        Ok(event) => {
            tracing::info!(
                event_id = event.id,
                routing_key = event.routing_key,
                "notification accepted and published"
            );
            metrics::counter!("notifications_total", "outcome" => "accepted", "reason" => event.routing_key)
                .increment(1);
            ack(v2::ACK_SUCCESS.to_owned())
        }
        Err(refusal) => refuse(&refusal, &body),
    }
}

async fn accept(state: &NotifyState, body: &Bytes, kind: Kind) -> Result<PaymentEvent, Refusal> {
    let settings = &state.settings;
    let trace_id = current_trace_id().unwrap_or_default();
    let span = tracing::Span::current();
    let event = match kind {
        Kind::Payment => {
            // Step 2: parse safely and verify the signature; no field is read before that.
            let notification = v2::parse_payment_notification(body, &settings.api_key)?;
            span.record("out_trade_no", display(&notification.out_trade_no));
            // Step 3: for our Mini Program and merchant.
            notification.check_merchant(&settings.appid, &settings.mch_id)?;
            PaymentEvent::of(&notification, &trace_id, now_ms())
        }
        Kind::Refund => {
            // Step 2: parse safely and decrypt `req_info` with our key (no signature: a
            // refund notification is encrypted instead, and proves nothing more than that
            // its sender knows the key; order-svc confirms it by refund query).
            let notification = v2::parse_refund_notification(body, &settings.api_key)?;
            span.record("out_trade_no", display(&notification.info.out_trade_no));
            span.record("out_refund_no", display(&notification.info.out_refund_no));
            // Step 3: for our Mini Program and merchant.
            notification.check_merchant(&settings.appid, &settings.mch_id)?;
            PaymentEvent::refund(&notification, &trace_id, now_ms())
        }
    };
    // Step 4: a persistent event, mandatory (some queue must take it), confirmed.
    state
        .publisher
        .publish(
            &state.topology.payments_exchange(),
            event.routing_key,
            &event.body,
            &event.id,
            &[
                (TRACE_ID_HEADER, &trace_id),
                (EVENT_TYPE_HEADER, event.routing_key),
            ],
            true,
        )
        .await?;
    Ok(event)
}

fn ack(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The one place a refusal is logged and counted. The log names the body by a hash prefix:
/// the body itself may be anyone's, and is never logged.
fn refuse(refusal: &Refusal, body: &[u8]) -> Response {
    let reason = refusal.reason();
    let digest = hex::encode(&Sha256::digest(body)[..8]);
    tracing::warn!(reason, body_sha256_prefix = %digest, error = %error_chain(refusal), "notification refused");
    metrics::counter!("notifications_total", "outcome" => "refused", "reason" => reason)
        .increment(1);
    ack(v2::ack_failure(reason))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use wechat_pay::v2::SignatureError;

    use super::*;

    #[test]
    fn refusals_are_counted_by_cause() {
        let cases = [
            (
                Refusal::Invalid(NotifyError::NotSuccess),
                "return_code_fail",
            ),
            (
                Refusal::Invalid(NotifyError::Signature(SignatureError::Mismatch)),
                "bad_signature",
            ),
            (
                Refusal::Invalid(NotifyError::MerchantMismatch("mch_id")),
                "wrong_merchant",
            ),
            (Refusal::Publish(PublishError::Nacked), "publish_failed"),
        ];
        for (refusal, reason) in cases {
            assert_eq!(refusal.reason(), reason, "{refusal:?}");
        }
    }
}
