//! `POST /wechat/pay/notify`: size limit, parse and signature check, merchant check, publish
//! a persistent event and wait for the broker's confirm, and only then the success ack.
//! Every failure before the confirm answers the failure ack, so WeChat retries.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use messaging::{EVENT_TYPE_HEADER, PAYMENT_FAILED, PAYMENT_SUCCEEDED, Publisher, Topology};
use prost::Message as _;
use proto::events::v1::{PaymentFailed, PaymentSucceeded};
use service_runtime::telemetry::{TRACE_ID_HEADER, current_trace_id};
use sha2::{Digest, Sha256};
use wechat_pay::v2::{self, NotifyError, PaymentNotification, PaymentOutcome, xml::XmlError};

use crate::settings::Settings;

/// What the handler needs.
#[derive(Debug, Clone)]
pub struct NotifyState {
    /// Expected merchant and key, limits.
    pub settings: Arc<Settings>,
    /// The confirming publisher.
    pub publisher: Publisher,
    /// Exchange names.
    pub topology: Topology,
}

fn ack(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Answers the failure ack, counts it by reason, logs the body's hash (never the body).
fn refuse(reason: &'static str, body: &[u8], detail: &dyn std::fmt::Display) -> Response {
    let digest = hex::encode(&Sha256::digest(body)[..8]);
    tracing::warn!(reason, body_sha256_prefix = %digest, %detail, "notification refused");
    metrics::counter!("notifications_total", "outcome" => "refused", "reason" => reason)
        .increment(1);
    ack(v2::ack_failure(reason))
}

fn reason_of(e: &NotifyError) -> &'static str {
    match e {
        NotifyError::Xml(XmlError::TooLarge { .. }) => "body_too_large",
        NotifyError::Xml(
            XmlError::Doctype
            | XmlError::EntityDeclaration
            | XmlError::ExternalEntity
            | XmlError::UnknownEntity,
        ) => "hostile_xml",
        NotifyError::Xml(_) => "malformed_xml",
        NotifyError::NotSuccess => "return_code_fail",
        NotifyError::Signature(v2::SignatureError::Missing) => "unsigned",
        NotifyError::Signature(v2::SignatureError::UnknownSignType) => "unknown_sign_type",
        NotifyError::Signature(v2::SignatureError::Mismatch) => "bad_signature",
        NotifyError::Field(_) => "invalid_field",
        NotifyError::MerchantMismatch(_) => "wrong_merchant",
    }
}

/// The handler.
pub(crate) async fn pay_notify(State(state): State<NotifyState>, body: Body) -> Response {
    let limit = state.settings.max_body;
    // Step 1: the size limit, before anything is parsed.
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) => return refuse("body_too_large", &[], &e),
    };
    // Steps 2 and 3: parse safely, verify the signature, check the merchant.
    let notification = match v2::parse_payment_notification(&body, &state.settings.api_key)
        .and_then(|n| {
            n.check_merchant(&state.settings.appid, &state.settings.mch_id)
                .map(|()| n)
        }) {
        Ok(n) => n,
        Err(e) => return refuse(reason_of(&e), &body, &e),
    };
    // Step 4: a durable event, confirmed by the broker.
    let trace_id = current_trace_id().unwrap_or_default();
    let (routing_key, event_id, payload) = event(&notification, &trace_id);
    let published = state
        .publisher
        .publish(
            &state.topology.payments_exchange(),
            routing_key,
            &payload,
            &event_id,
            &[
                (TRACE_ID_HEADER, &trace_id),
                (EVENT_TYPE_HEADER, routing_key),
            ],
            true,
        )
        .await;
    if let Err(e) = published {
        return refuse("publish_failed", &body, &e);
    }
    // Step 5: only now, the success ack.
    tracing::info!(out_trade_no = %notification.out_trade_no, event_id, routing_key, "notification accepted and published");
    metrics::counter!("notifications_total", "outcome" => "accepted", "reason" => routing_key)
        .increment(1);
    ack(v2::ACK_SUCCESS.to_owned())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The event for a verified notification: routing key, event id (stable across WeChat's
/// repeats of the same notification), protobuf body.
fn event(n: &PaymentNotification, trace_id: &str) -> (&'static str, String, Vec<u8>) {
    match &n.outcome {
        PaymentOutcome::Paid(paid) => {
            let event_id = format!("wxpay:{}", paid.transaction_id);
            let e = PaymentSucceeded {
                event_id: event_id.clone(),
                out_trade_no: n.out_trade_no.to_string(),
                transaction_id: paid.transaction_id.to_string(),
                amount_fen: paid.total_fee.as_i64(),
                appid: n.appid.clone(),
                mch_id: n.mch_id.clone(),
                openid: paid.openid.to_string(),
                paid_at_unix: paid.time_end.unix_seconds(),
                received_at_unix_ms: now_ms(),
                trace_id: trace_id.to_owned(),
            };
            (PAYMENT_SUCCEEDED, event_id, e.encode_to_vec())
        }
        PaymentOutcome::Failed {
            err_code,
            err_code_des,
        } => {
            let nonce = n.fields.get("nonce_str").unwrap_or_default();
            let event_id = format!("wxpay-failed:{}:{nonce}", n.out_trade_no);
            let e = PaymentFailed {
                event_id: event_id.clone(),
                out_trade_no: n.out_trade_no.to_string(),
                appid: n.appid.clone(),
                mch_id: n.mch_id.clone(),
                err_code: err_code.clone().unwrap_or_default(),
                err_code_des: err_code_des.clone().unwrap_or_default(),
                received_at_unix_ms: now_ms(),
                trace_id: trace_id.to_owned(),
            };
            (PAYMENT_FAILED, event_id, e.encode_to_vec())
        }
    }
}
