//! WeChat Pay merchant API v2: XML documents signed with MD5 or HMAC-SHA256.
//!
//! The pieces, from the wire up: [`Params`] (the flat field map), [`xml`] (the hostile-input
//! safe codec), [`sign`](fn@sign) / [`verify`] (the signature), typed messages
//! ([`UnifiedOrderRequest`] and friends), the [`Client`], notifications
//! ([`parse_payment_notification`]), the Mini Program payment object ([`RequestPayment`]) and
//! the daily [`bill`].

mod api;
pub mod bill;
mod client;
mod error;
pub mod message;
mod notify;
mod params;
mod pay_params;
mod refund;
mod sign;
pub mod xml;

pub use self::api::{
    CloseOrderRequest, CloseOrderResponse, ENVELOPE_FIELDS, Endpoint, OrderQueryRequest,
    OrderQueryResponse, SandboxSignKeyResponse, TradeState, TradeType, UnifiedOrderRequest,
    UnifiedOrderResponse,
};
pub use self::bill::{
    Bill, BillAnswer, BillError, BillRefund, BillRow, BillRowKind, BillSummary, BillType,
    DownloadBillRequest,
};
pub use self::client::{Client, ClientConfig, Merchant, PRODUCTION_BASE_URL};
pub use self::error::{ErrCode, Error};
pub use self::notify::{
    ACK_SUCCESS, NotifyError, PaidDetails, PaymentNotification, PaymentOutcome, ack_failure,
    parse_payment_notification,
};
pub use self::params::Params;
pub use self::pay_params::RequestPayment;
pub use self::refund::{
    RefundInfo, RefundNotification, RefundQueryRequest, RefundQueryResponse, RefundRecord,
    RefundRequest, RefundResponse, RefundStatus, decrypt_req_info, encrypt_req_info,
    parse_refund_notification,
};
pub use self::sign::{ApiKey, InvalidApiKey, SignType, SignatureError, sign, sign_params, verify};
pub use crate::retry::RetryPolicy;
