//! Typed requests and responses of the v2 merchant API: unified order (JSAPI), order query,
//! close order, and the sandbox sign key.
//!
//! Requests hold only their business fields: the client adds `appid`, `mch_id`, `nonce_str`,
//! `sign_type` and `sign`. Responses keep every field they do not name in `extra`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::{Fen, OutTradeNo, WeChatTime};

/// A v2 merchant endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/pay/unifiedorder`
    UnifiedOrder,
    /// `/pay/orderquery`
    OrderQuery,
    /// `/pay/closeorder`
    CloseOrder,
    /// `/sandboxnew/pay/getsignkey`
    SandboxSignKey,
    /// `/secapi/pay/refund` (mutual TLS)
    Refund,
    /// `/pay/refundquery`
    RefundQuery,
    /// `/pay/downloadbill`
    DownloadBill,
}

impl Endpoint {
    /// The production path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::UnifiedOrder => "/pay/unifiedorder",
            Endpoint::OrderQuery => "/pay/orderquery",
            Endpoint::CloseOrder => "/pay/closeorder",
            Endpoint::SandboxSignKey => "/sandboxnew/pay/getsignkey",
            Endpoint::Refund => "/secapi/pay/refund",
            Endpoint::RefundQuery => "/pay/refundquery",
            Endpoint::DownloadBill => "/pay/downloadbill",
        }
    }

    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::UnifiedOrder => "unifiedorder",
            Endpoint::OrderQuery => "orderquery",
            Endpoint::CloseOrder => "closeorder",
            Endpoint::SandboxSignKey => "getsignkey",
            Endpoint::Refund => "refund",
            Endpoint::RefundQuery => "refundquery",
            Endpoint::DownloadBill => "downloadbill",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The fields every response and notification carries around its business content; they are
/// checked by the client and left out of the typed values.
pub const ENVELOPE_FIELDS: &[&str] = &[
    "return_code",
    "return_msg",
    "result_code",
    "err_code",
    "err_code_des",
    "sign",
    "sign_type",
    "nonce_str",
];

/// `trade_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TradeType {
    /// Mini Programs and official accounts.
    #[serde(rename = "JSAPI")]
    Jsapi,
    /// QR code.
    #[serde(rename = "NATIVE")]
    Native,
    /// Mobile apps.
    #[serde(rename = "APP")]
    App,
    /// Mobile web.
    #[serde(rename = "MWEB")]
    Mweb,
}

/// Unified order (统一下单) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnifiedOrderRequest {
    /// Short description, at most 127 characters.
    pub body: String,
    /// Product details as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Echoed verbatim in queries and notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    /// Our order number.
    pub out_trade_no: OutTradeNo,
    /// Currency (`CNY` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_type: Option<String>,
    /// Amount in fen, greater than zero.
    pub total_fee: Fen,
    /// The calling machine's IP address.
    pub spbill_create_ip: String,
    /// When the order starts (Beijing time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_start: Option<WeChatTime>,
    /// When the order number stops being payable (Beijing time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<WeChatTime>,
    /// Discount tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_tag: Option<String>,
    /// Where WeChat POSTs the payment notification.
    pub notify_url: String,
    /// `JSAPI` for Mini Programs.
    pub trade_type: TradeType,
    /// Required for `NATIVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// `no_credit` forbids credit cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_pay: Option<String>,
    /// The payer's openid under this appid; required for `JSAPI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    /// Terminal or store id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_info: Option<String>,
    /// Store information as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene_info: Option<String>,
}

impl UnifiedOrderRequest {
    /// A Mini Program (`JSAPI`) order with the required fields and nothing optional.
    pub fn jsapi(
        out_trade_no: OutTradeNo,
        body: impl Into<String>,
        total_fee: Fen,
        openid: impl Into<String>,
        notify_url: impl Into<String>,
        spbill_create_ip: impl Into<String>,
    ) -> Self {
        UnifiedOrderRequest {
            body: body.into(),
            detail: None,
            attach: None,
            out_trade_no,
            fee_type: None,
            total_fee,
            spbill_create_ip: spbill_create_ip.into(),
            time_start: None,
            time_expire: None,
            goods_tag: None,
            notify_url: notify_url.into(),
            trade_type: TradeType::Jsapi,
            product_id: None,
            limit_pay: None,
            openid: Some(openid.into()),
            device_info: None,
            scene_info: None,
        }
    }
}

/// Unified order response (both codes `SUCCESS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnifiedOrderResponse {
    /// The appid the order belongs to.
    pub appid: String,
    /// The merchant.
    pub mch_id: String,
    /// Echo of the request's trade type.
    pub trade_type: TradeType,
    /// The prepay session id, valid 2 hours.
    pub prepay_id: String,
    /// QR code link (`NATIVE` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_url: Option<String>,
    /// Echo of `device_info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_info: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// Order query request: by WeChat's `transaction_id` or our `out_trade_no` (WeChat prefers
/// `transaction_id` when both are given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderQueryRequest {
    /// WeChat's order number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Our order number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<OutTradeNo>,
}

impl OrderQueryRequest {
    /// Query by our order number.
    pub fn by_out_trade_no(out_trade_no: OutTradeNo) -> Self {
        OrderQueryRequest {
            transaction_id: None,
            out_trade_no: Some(out_trade_no),
        }
    }
}

/// `trade_state` of an order query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TradeState {
    /// Paid.
    Success,
    /// Paid, then a refund was initiated.
    Refund,
    /// Not paid yet.
    Notpay,
    /// Closed; never paid.
    Closed,
    /// Revoked (Quick Pay only).
    Revoked,
    /// The user is entering the password (Quick Pay only).
    Userpaying,
    /// Payment failed (Quick Pay only).
    Payerror,
    /// Received, waiting for debit (entrusted debit only).
    Accept,
}

impl TradeState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TradeState::Success => "SUCCESS",
            TradeState::Refund => "REFUND",
            TradeState::Notpay => "NOTPAY",
            TradeState::Closed => "CLOSED",
            TradeState::Revoked => "REVOKED",
            TradeState::Userpaying => "USERPAYING",
            TradeState::Payerror => "PAYERROR",
            TradeState::Accept => "ACCEPT",
        }
    }

    /// Whether money moved (`SUCCESS`, or `REFUND` which was paid first).
    pub fn was_paid(self) -> bool {
        matches!(self, TradeState::Success | TradeState::Refund)
    }
}

/// Order query response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderQueryResponse {
    /// The appid.
    pub appid: String,
    /// The merchant.
    pub mch_id: String,
    /// The order's state.
    pub trade_state: TradeState,
    /// Human text for the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_state_desc: Option<String>,
    /// Our order number.
    pub out_trade_no: OutTradeNo,
    /// Echo of unified order's `attach`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    /// WeChat's order number (once paid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Order amount in fen (once paid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_fee: Option<Fen>,
    /// Amount paid in cash (once paid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_fee: Option<Fen>,
    /// Currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_type: Option<String>,
    /// The payer (once paid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    /// Trade type (once paid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_type: Option<TradeType>,
    /// Paying bank (once paid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_type: Option<String>,
    /// When payment completed (once paid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_end: Option<WeChatTime>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// Close order request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseOrderRequest {
    /// Our order number.
    pub out_trade_no: OutTradeNo,
}

/// Close order response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseOrderResponse {
    /// The appid.
    pub appid: String,
    /// The merchant.
    pub mch_id: String,
    /// Extra business text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_msg: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// Sandbox sign key response. Its `Debug` output hides the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSignKeyResponse {
    /// The merchant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mch_id: Option<String>,
    /// The key that replaces the API key for every sandbox call.
    pub sandbox_signkey: String,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

impl fmt::Debug for SandboxSignKeyResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxSignKeyResponse")
            .field("mch_id", &self.mch_id)
            .field("sandbox_signkey", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v2::Params;
    use crate::v2::message::{from_params, to_params};

    #[test]
    fn request_to_params_leaves_out_absent_fields() {
        let req = UnifiedOrderRequest::jsapi(
            OutTradeNo::parse("20150806125346").unwrap(),
            "腾讯充值中心-QQ会员充值",
            Fen::new(88).unwrap(),
            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "https://example.com/wxpay/notify",
            "123.12.12.123",
        );
        let p = to_params(&req).unwrap();
        assert_eq!(p.get("total_fee"), Some("88"));
        assert_eq!(p.get("trade_type"), Some("JSAPI"));
        assert!(!p.contains("attach"));
        assert_eq!(p.len(), 7);
        let back: UnifiedOrderRequest = from_params(p).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn response_keeps_unknown_fields_and_parses_strictly() {
        let p: Params = [
            ("appid", "wx1"),
            ("mch_id", "10000100"),
            ("trade_state", "SUCCESS"),
            ("out_trade_no", "order-0001"),
            ("total_fee", "101"),
            ("time_end", "20240101120000"),
            ("brand_new_field", "kept"),
        ]
        .into_iter()
        .collect();
        let r: OrderQueryResponse = from_params(p.clone()).unwrap();
        assert_eq!(r.total_fee, Some(Fen::new(101).unwrap()));
        assert_eq!(
            r.extra.get("brand_new_field").map(String::as_str),
            Some("kept")
        );
        let mut bad = p;
        bad.insert("total_fee", "1.01");
        assert!(from_params::<OrderQueryResponse>(bad).is_err());
    }
}
