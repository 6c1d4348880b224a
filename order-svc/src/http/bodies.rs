//! Every JSON body the HTTP APIs accept, from bytes to the checked values their handlers work
//! with. A handler takes the same steps: its extractor (`extract`) calls `json_value` (a
//! syntax error is `invalid_json`) and `shape` (a wrong shape is `invalid_request`), then
//! the handler calls the body's own check. The functions here chain those very steps for a
//! caller without a request: `crates/fuzz-checks` feeds any bytes through each of them, so
//! the fuzzer reaches exactly what a request reaches. A new body gets its function here and
//! its call there.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::admin::{ReasonBody, ReconcileBody, RefundBody, ResolveBody};
use super::shapes::{CreateOrderBody, LoginBody};
use crate::domain::{LoginCode, OrderRequest, RefundRequest};
use crate::error::AppError;
use crate::reviews::Resolution;

/// `POST /api/v1/sessions`: the `wx.login` code.
pub fn login(body: &[u8]) -> Result<LoginCode, AppError> {
    LoginCode::try_from(shape::<LoginBody>(json_value(body)?)?)
}

/// `POST /api/v1/orders`: the lines asked for (amounts refused by name).
pub fn create_order(body: &[u8]) -> Result<OrderRequest, AppError> {
    OrderRequest::try_from(CreateOrderBody::from_value(json_value(body)?)?)
}

/// `POST /admin/v1/orders/{id}/refunds`: the amount and the reason.
pub fn refund(body: &[u8]) -> Result<RefundRequest, AppError> {
    RefundRequest::try_from(shape::<RefundBody>(json_value(body)?)?)
}

/// `POST /admin/v1/orders/{id}/resolve`: the operator's decision and the reason.
pub fn resolve(body: &[u8]) -> Result<(Resolution, String), AppError> {
    shape::<ResolveBody>(json_value(body)?)?.checked()
}

/// `POST /admin/v1/dead-letters/{id}/replay`: the reason.
pub fn replay_dead_letter(body: &[u8]) -> Result<String, AppError> {
    shape::<ReasonBody>(json_value(body)?)?.checked()
}

/// `POST /admin/v1/reconciliations`: the day.
pub fn reconcile(body: &[u8]) -> Result<time::Date, AppError> {
    shape::<ReconcileBody>(json_value(body)?)?.checked()
}

/// The body as JSON: `invalid_json` unless it parses as JSON at all.
pub(super) fn json_value(body: &[u8]) -> Result<Value, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::InvalidJson(format!("the body is not valid JSON: {e}")))
}

/// JSON as the body shape `T`: `invalid_request` for the wrong shape.
pub(super) fn shape<T: DeserializeOwned>(value: Value) -> Result<T, AppError> {
    serde_json::from_value(value)
        .map_err(|e| AppError::InvalidRequest(format!("invalid request body: {e}")))
}
