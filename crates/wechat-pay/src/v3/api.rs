//! The v3 messages Minipay sends and reads (§3.5): JSAPI prepay, the transaction object,
//! close, refund and the refund object. Amounts are [`Fen`]; fields WeChat may leave out are
//! options; fields not listed here are ignored when read.

use serde::{Deserialize, Serialize};

use crate::v2::TradeState;
use crate::{Fen, OutRefundNo, OutTradeNo};

/// `amount` of a prepay request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepayAmount {
    /// Fen.
    pub total: Fen,
    /// `CNY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// `payer` of a prepay request or transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    /// The user's openid under the appid.
    pub openid: String,
}

/// `POST /v3/pay/transactions/jsapi` (the Mini Program's prepay). `appid` and `mchid` are
/// filled in by the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsapiPrepayRequest {
    /// Mini Program AppID.
    pub appid: String,
    /// Merchant number.
    pub mchid: String,
    /// What is bought (at most 127 characters).
    pub description: String,
    /// Our order number.
    pub out_trade_no: OutTradeNo,
    /// When the order stops being payable (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    /// Echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    /// Where the payment notification goes.
    pub notify_url: String,
    /// The amount.
    pub amount: PrepayAmount,
    /// The payer.
    pub payer: Payer,
}

/// The answer of JSAPI prepay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepayResponse {
    /// Valid 2 hours.
    pub prepay_id: String,
}

/// `amount` of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TransactionAmount {
    /// The order amount, fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Fen>,
    /// What the user paid, fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_total: Option<Fen>,
    /// `CNY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// `CNY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_currency: Option<String>,
}

/// The transaction object: a query's answer and a payment notification's resource. Unpaid
/// orders carry only some fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Mini Program AppID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// Merchant number.
    pub mchid: String,
    /// Our order number.
    pub out_trade_no: OutTradeNo,
    /// WeChat's number, once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// `JSAPI`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_type: Option<String>,
    /// The state (the same values as v2).
    pub trade_state: TradeState,
    /// The state in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_state_desc: Option<String>,
    /// The paying bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_type: Option<String>,
    /// Echoed from prepay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    /// When paid (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    /// The payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Payer>,
    /// The amounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<TransactionAmount>,
}

/// The body of `POST /v3/pay/transactions/out-trade-no/{no}/close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseRequest {
    /// Merchant number.
    pub mchid: String,
}

/// `amount` of a refund request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequestAmount {
    /// What to refund, fen.
    pub refund: Fen,
    /// The order amount, fen.
    pub total: Fen,
    /// `CNY`.
    pub currency: String,
}

/// `POST /v3/refund/domestic/refunds`. Retry a failure with the same request (the same
/// `out_refund_no`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// WeChat's order number (this or `out_trade_no`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Our order number (this or `transaction_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<OutTradeNo>,
    /// Our refund number.
    pub out_refund_no: OutRefundNo,
    /// Shown to the user (at most 80 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the refund notification goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    /// The amounts.
    pub amount: RefundRequestAmount,
}

/// A refund's state (`status` of the refund object, `refund_status` of its notification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RefundStatus {
    /// Done: the money went back.
    Success,
    /// Closed: the refund failed.
    Closed,
    /// Being processed.
    Processing,
    /// Needs a person (not final).
    Abnormal,
}

impl RefundStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Success => "SUCCESS",
            RefundStatus::Closed => "CLOSED",
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::Abnormal => "ABNORMAL",
        }
    }

    /// The v2 state of the same meaning (what order-svc's events carry): `CLOSED` is
    /// `REFUNDCLOSE`, `ABNORMAL` is `CHANGE`.
    pub fn as_v2(self) -> crate::v2::RefundStatus {
        match self {
            RefundStatus::Success => crate::v2::RefundStatus::Success,
            RefundStatus::Closed => crate::v2::RefundStatus::Refundclose,
            RefundStatus::Processing => crate::v2::RefundStatus::Processing,
            RefundStatus::Abnormal => crate::v2::RefundStatus::Change,
        }
    }
}

/// The v3 state of a v2 one (the inverse of [`RefundStatus::as_v2`]).
impl From<crate::v2::RefundStatus> for RefundStatus {
    fn from(status: crate::v2::RefundStatus) -> Self {
        match status {
            crate::v2::RefundStatus::Success => RefundStatus::Success,
            crate::v2::RefundStatus::Refundclose => RefundStatus::Closed,
            crate::v2::RefundStatus::Processing => RefundStatus::Processing,
            crate::v2::RefundStatus::Change => RefundStatus::Abnormal,
        }
    }
}

/// `amount` of a refund object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAmount {
    /// The order amount, fen.
    pub total: Fen,
    /// The refund, fen.
    pub refund: Fen,
    /// What the user paid, fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_total: Option<Fen>,
    /// What goes back to the user, fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_refund: Option<Fen>,
    /// `CNY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// The refund object: the answer of refund and refund query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// WeChat's refund number.
    pub refund_id: String,
    /// Our refund number.
    pub out_refund_no: OutRefundNo,
    /// WeChat's order number.
    pub transaction_id: String,
    /// Our order number.
    pub out_trade_no: OutTradeNo,
    /// `ORIGINAL`, `BALANCE`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Where the money goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_received_account: Option<String>,
    /// When it succeeded (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    /// When it was accepted (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// The state.
    pub status: RefundStatus,
    /// The amounts.
    pub amount: RefundAmount,
}

/// A refund notification's resource (`REFUND.SUCCESS`, `REFUND.ABNORMAL`, `REFUND.CLOSED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundResource {
    /// Merchant number.
    pub mchid: String,
    /// Our order number.
    pub out_trade_no: OutTradeNo,
    /// WeChat's order number.
    pub transaction_id: String,
    /// Our refund number.
    pub out_refund_no: OutRefundNo,
    /// WeChat's refund number.
    pub refund_id: String,
    /// The final state.
    pub refund_status: RefundStatus,
    /// When it succeeded (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    /// Where the money went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_received_account: Option<String>,
    /// The amounts.
    pub amount: RefundAmount,
}

/// The body of a non-2xx answer (§3.6).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `PARAM_ERROR`, `SIGN_ERROR`, `ORDER_NOT_EXIST`, ...
    #[serde(default)]
    pub code: String,
    /// In words.
    #[serde(default)]
    pub message: String,
}
