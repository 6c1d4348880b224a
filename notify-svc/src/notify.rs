//! `POST /wechat/pay/notify` and `POST /wechat/refund/notify` (v2), and
//! `POST /wechat/v3/pay/notify` and `POST /wechat/v3/refund/notify` (v3), in named steps:
//! size cap → parse + signature (v2 payments), decryption (v2 refunds), or signature, replay
//! check and decryption (v3, [`crate::v3`]) → merchant → publish with confirm → ack. Every
//! failure before the confirm answers the failure ack (v3: a 4xx or 5xx status), so WeChat
//! sends the notification again.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use messaging::{EVENT_TYPE_HEADER, PublishError, Publisher, Topology};
use service_runtime::telemetry::{TRACE_ID_HEADER, current_trace_id, error_chain};
use sha2::{Digest, Sha256};
use tracing::field::display;
use wechat_pay::v2::{self, NotifyError, xml::XmlError};
use wechat_pay::v3;

use crate::convert::{PaymentEvent, V3FieldError};
use crate::settings::Settings;
use crate::v3::V3Receiver;

#[derive(Debug, Clone)]
pub(crate) struct NotifyState {
    /// The merchant and key notifications must match, and the body limit.
    pub(crate) settings: Arc<Settings>,
    pub(crate) publisher: Publisher,
    pub(crate) topology: Topology,
    /// What v3 notifications need, when the merchant speaks v3.
    pub(crate) v3: Option<Arc<V3Receiver>>,
}

/// Why a notification was not accepted. Each is answered with the failure ack.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("notification body over the size limit")]
    TooLarge(#[source] axum::Error),
    /// Not a well-formed, correctly signed notification for our merchant.
    #[error("notification refused")]
    Invalid(#[from] NotifyError),
    /// The broker did not confirm the event: it may not exist, so WeChat must send again.
    #[error("event not published")]
    Publish(#[from] PublishError),
    /// v3: the `Wechatpay-*` headers, the timestamp's freshness, the key or the signature.
    #[error("notification signature refused")]
    Signature(#[from] v3::VerifyError),
    /// v3: the envelope, the event type, the resource's decryption or its merchant.
    #[error("notification refused")]
    V3(#[from] v3::NotifyError),
    /// v3: a verified resource lacking what the event needs, or with contradictory amounts.
    #[error("notification content refused")]
    Content(#[from] V3FieldError),
    /// v3: this signed notification (its nonce and id) was received before.
    #[error("notification replayed")]
    Replay,
    /// v3: whether it is a replay cannot be told (Redis unreachable): refused, so WeChat
    /// sends it again.
    #[error("replay check unavailable")]
    ReplayCheck,
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
            Refusal::Signature(v3::VerifyError::MissingHeader(_)) => "missing_header",
            Refusal::Signature(v3::VerifyError::SignatureType(_)) => "unknown_sign_type",
            Refusal::Signature(v3::VerifyError::Timestamp | v3::VerifyError::Stale(_)) => {
                "stale_timestamp"
            }
            Refusal::Signature(v3::VerifyError::UnknownSerial(_)) => "unknown_serial",
            Refusal::Signature(v3::VerifyError::BadSignature) => "bad_signature",
            Refusal::V3(v3::NotifyError::Json(_) | v3::NotifyError::Resource(_)) => {
                "malformed_json"
            }
            Refusal::V3(v3::NotifyError::EventType(_)) => "unexpected_event",
            Refusal::V3(v3::NotifyError::Decrypt(_)) => "undecryptable",
            Refusal::V3(v3::NotifyError::MerchantMismatch(_)) => "wrong_merchant",
            Refusal::Content(V3FieldError::Field(_)) => "invalid_field",
            Refusal::Content(V3FieldError::Amount(_)) => "invalid_amount",
            Refusal::Replay => "replay",
            Refusal::ReplayCheck => "replay_check_unavailable",
        }
    }

    /// The HTTP status of a v3 failure answer (WeChat retries any 4xx or 5xx): ours to fix
    /// is 5xx, the sender's 4xx.
    fn v3_status(&self) -> StatusCode {
        match self {
            Refusal::Publish(_) | Refusal::ReplayCheck => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Signature(_) | Refusal::Replay => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Which API version a callback speaks: how it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V2,
    V3,
}

/// Which callback a notification came to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Payment,
    Refund,
}

#[tracing::instrument(skip_all, fields(out_trade_no))]
pub(crate) async fn pay_notify(State(state): State<NotifyState>, body: Body) -> Response {
    receive(&state, &HeaderMap::new(), body, Kind::Payment, Version::V2).await
}

#[tracing::instrument(skip_all, fields(out_trade_no, out_refund_no))]
pub(crate) async fn refund_notify(State(state): State<NotifyState>, body: Body) -> Response {
    receive(&state, &HeaderMap::new(), body, Kind::Refund, Version::V2).await
}

#[tracing::instrument(skip_all, fields(out_trade_no, notification_id))]
pub(crate) async fn v3_pay_notify(
    State(state): State<NotifyState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(&state, &headers, body, Kind::Payment, Version::V3).await
}

#[tracing::instrument(skip_all, fields(out_trade_no, out_refund_no, notification_id))]
pub(crate) async fn v3_refund_notify(
    State(state): State<NotifyState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(&state, &headers, body, Kind::Refund, Version::V3).await
}

async fn receive(
    state: &NotifyState,
    headers: &HeaderMap,
    body: Body,
    kind: Kind,
    version: Version,
) -> Response {
    // Step 1: the size cap, before a byte is parsed.
    let body = match axum::body::to_bytes(body, state.settings.max_body).await {
        Ok(body) => body,
        Err(e) => return refuse(&Refusal::TooLarge(e), &[], version),
    };
    let event = match (version, &state.v3) {
        (Version::V2, _) => accept(state, &body, kind),
        (Version::V3, Some(v3)) => {
            let trace_id = current_trace_id().unwrap_or_default();
            v3.accept(&state.settings, headers, &body, kind, &trace_id)
                .await
        }
        // The routes exist only under v3; kept total all the same.
        (Version::V3, None) => return StatusCode::NOT_FOUND.into_response(),
    };
    let published = match event {
        Ok(event) => publish(state, event).await,
        Err(refusal) => Err(refusal),
    };
    match published {
        // Step 5: the success ack, only once the broker has the event.
        Ok(event) => {
            tracing::info!(
                event_id = event.id,
                routing_key = event.routing_key,
                "notification accepted and published"
            );
            metrics::counter!("notifications_total", "outcome" => "accepted", "reason" => event.routing_key)
                .increment(1);
            match version {
                Version::V2 => ack(v2::ACK_SUCCESS.to_owned()),
                // v3 (§3.4): 204 without a body is success.
                Version::V3 => StatusCode::NO_CONTENT.into_response(),
            }
        }
        Err(refusal) => refuse(&refusal, &body, version),
    }
}

/// Steps 2 and 3 of a v2 notification: parse, authenticate, check the merchant.
fn accept(state: &NotifyState, body: &Bytes, kind: Kind) -> Result<PaymentEvent, Refusal> {
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
    Ok(event)
}

/// Step 4: a persistent event, mandatory (some queue must take it), confirmed.
async fn publish(state: &NotifyState, event: PaymentEvent) -> Result<PaymentEvent, Refusal> {
    let trace_id = current_trace_id().unwrap_or_default();
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
fn refuse(refusal: &Refusal, body: &[u8], version: Version) -> Response {
    let reason = refusal.reason();
    let digest = hex::encode(&Sha256::digest(body)[..8]);
    tracing::warn!(reason, body_sha256_prefix = %digest, error = %error_chain(refusal), "notification refused");
    metrics::counter!("notifications_total", "outcome" => "refused", "reason" => reason)
        .increment(1);
    match version {
        Version::V2 => ack(v2::ack_failure(reason)),
        Version::V3 => (
            refusal.v3_status(),
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "code": "FAIL", "message": reason }).to_string(),
        )
            .into_response(),
    }
}

pub(crate) fn now_ms() -> i64 {
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
