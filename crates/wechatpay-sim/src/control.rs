//! The control API (`/sim/v1/...`, JSON): pay an order as the user would, look at an order
//! the way WeChat sees it, set faults, issue login codes.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::faults::Faults;
use crate::login;
use crate::sim::{ControlError, PayResult, Sim};

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ControlError::NotFound(_) => (StatusCode::NOT_FOUND, "order_not_found"),
            ControlError::Ambiguous(_) => (StatusCode::CONFLICT, "ambiguous_order"),
            ControlError::Conflict(_) => (StatusCode::CONFLICT, "invalid_state"),
            ControlError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        };
        (
            status,
            Json(json!({ "code": code, "message": self.to_string() })),
        )
            .into_response()
    }
}

/// `?mch_id=` to pick among merchants sharing a number.
#[derive(Debug, Deserialize)]
pub(crate) struct Which {
    mch_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayBody {
    #[serde(default = "success")]
    result: PayResult,
}

fn success() -> PayResult {
    PayResult::Success
}

/// `POST /sim/v1/orders/{out_trade_no}/pay`, body optional: `{"result": "SUCCESS"}`,
/// `{"result": "PAYERROR"}` or `{"result": "USERPAYING"}` (no notification).
pub(crate) async fn pay(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    Query(which): Query<Which>,
    body: Bytes,
) -> Result<Json<crate::sim::OrderView>, ControlError> {
    let result = if body.iter().all(u8::is_ascii_whitespace) {
        PayResult::Success
    } else {
        serde_json::from_slice::<PayBody>(&body)
            .map_err(|e| {
                ControlError::Invalid(format!(
                    "body must be {{\"result\": \"SUCCESS\" | \"PAYERROR\" | \"USERPAYING\"}}: {e}"
                ))
            })?
            .result
    };
    let key = sim.find(&out_trade_no, which.mch_id.as_deref())?;
    sim.pay(&key, result).map(Json)
}

/// `GET /sim/v1/orders/{out_trade_no}`.
pub(crate) async fn get_order(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    Query(which): Query<Which>,
) -> Result<Json<crate::sim::OrderView>, ControlError> {
    let key = sim.find(&out_trade_no, which.mch_id.as_deref())?;
    sim.view(&key)
        .map(Json)
        .ok_or(ControlError::NotFound(out_trade_no))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettleBody {
    #[serde(default = "refund_success")]
    status: wechat_pay::v2::RefundStatus,
}

fn refund_success() -> wechat_pay::v2::RefundStatus {
    wechat_pay::v2::RefundStatus::Success
}

/// `POST /sim/v1/refunds/{out_refund_no}/settle`, body optional: `{"status": "SUCCESS"}`
/// (the default), `"CHANGE"` or `"REFUNDCLOSE"`; the refund notification follows.
pub(crate) async fn settle_refund(
    State(sim): State<Arc<Sim>>,
    Path(out_refund_no): Path<String>,
    Query(which): Query<Which>,
    body: Bytes,
) -> Result<Json<crate::sim::RefundView>, ControlError> {
    let status = if body.iter().all(u8::is_ascii_whitespace) {
        refund_success()
    } else {
        serde_json::from_slice::<SettleBody>(&body)
            .map_err(|e| {
                ControlError::Invalid(format!(
                    "body must be {{\"status\": \"SUCCESS\" | \"CHANGE\" | \"REFUNDCLOSE\"}}: {e}"
                ))
            })?
            .status
    };
    let key = sim.find_refund(&out_refund_no, which.mch_id.as_deref())?;
    sim.settle_refund(&key, &out_refund_no, status).map(Json)
}

/// `GET /sim/v1/refunds/{out_refund_no}`.
pub(crate) async fn get_refund(
    State(sim): State<Arc<Sim>>,
    Path(out_refund_no): Path<String>,
    Query(which): Query<Which>,
) -> Result<Json<crate::sim::RefundView>, ControlError> {
    let key = sim.find_refund(&out_refund_no, which.mch_id.as_deref())?;
    sim.refund_view(&key, &out_refund_no)
        .map(Json)
        .ok_or(ControlError::NotFound(out_refund_no))
}

/// `GET /sim/v1/faults`.
pub(crate) async fn get_faults(State(sim): State<Arc<Sim>>) -> Json<Faults> {
    Json(sim.faults())
}

/// `PUT /sim/v1/faults`: replaces the fault settings (absent fields are off).
pub(crate) async fn put_faults(
    State(sim): State<Arc<Sim>>,
    body: Bytes,
) -> Result<Json<Faults>, ControlError> {
    let faults: Faults = serde_json::from_slice(&body)
        .map_err(|e| ControlError::Invalid(format!("invalid faults: {e}")))?;
    sim.set_faults(faults)?;
    Ok(Json(sim.faults()))
}

/// `POST /sim/v1/login-codes` `{"name": "alice"}`: a code as `wx.login()` would return.
pub(crate) async fn login_code(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let issued = serde_json::from_slice::<login::IssueCode>(&body)
        .map_err(|e| e.to_string())
        .and_then(|req| login::issue_code(&sim, req));
    match issued {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(message) => ControlError::Invalid(message).into_response(),
    }
}

/// `GET /sim/v1/health`: alive, and how many orders are held.
pub(crate) async fn health(State(sim): State<Arc<Sim>>) -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "orders": sim.order_count() }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortalRefundBody {
    amount_fen: u64,
}

/// `POST /sim/v1/orders/{out_trade_no}/portal-refunds` `{"amount_fen": N}`: a refund made in
/// the merchant portal (SUCCESS at once, no notification).
pub(crate) async fn portal_refund(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    Query(which): Query<Which>,
    body: Bytes,
) -> Result<(StatusCode, Json<crate::sim::RefundView>), ControlError> {
    let body: PortalRefundBody = serde_json::from_slice(&body)
        .map_err(|e| ControlError::Invalid(format!("body must be {{\"amount_fen\": N}}: {e}")))?;
    let amount = wechat_pay::Fen::new(body.amount_fen)
        .map_err(|e| ControlError::Invalid(format!("amount_fen: {e}")))?;
    let key = sim.find(&out_trade_no, which.mch_id.as_deref())?;
    sim.portal_refund(&key, amount)
        .map(|view| (StatusCode::CREATED, Json(view)))
}

#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignerBody {
    signer: crate::config::NotifySigner,
}

/// `GET /sim/v1/merchants/{mch_id}/v3-notify-signer`: `{"signer": "certificate"}` or
/// `{"signer": "public_key"}`.
pub(crate) async fn get_notify_signer(
    State(sim): State<Arc<Sim>>,
    Path(mch_id): Path<String>,
) -> Result<Json<SignerBody>, ControlError> {
    if sim.merchant(&mch_id).is_none() {
        return Err(ControlError::NotFound(mch_id));
    }
    Ok(Json(SignerBody {
        signer: sim.notify_signer(&mch_id),
    }))
}

/// `PUT /sim/v1/merchants/{mch_id}/v3-notify-signer`: switches which key signs the
/// merchant's v3 notifications from now on (the certificate → public key migration).
pub(crate) async fn put_notify_signer(
    State(sim): State<Arc<Sim>>,
    Path(mch_id): Path<String>,
    body: Bytes,
) -> Result<Json<SignerBody>, ControlError> {
    let wanted: SignerBody = serde_json::from_slice(&body).map_err(|e| {
        ControlError::Invalid(format!(
            "expected {{\"signer\": \"certificate\"|\"public_key\"}}: {e}"
        ))
    })?;
    sim.set_notify_signer(&mch_id, wanted.signer)?;
    Ok(Json(wanted))
}
