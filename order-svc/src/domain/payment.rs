//! What WeChat says about a payment, and the merchant it must be for.

use time::OffsetDateTime;
use wechat_pay::{Fen, OutTradeNo, TransactionId};

/// Where a payment claim came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A verified WeChat notification, through notify-svc and RabbitMQ.
    Notification,
    /// Our own order query at WeChat.
    Query,
}

impl Source {
    /// The name stored with anomalies and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Notification => "notification",
            Source::Query => "query",
        }
    }
}

/// What WeChat says was paid, typed from the edge (the event or the query answer) to the
/// SQL. Built only by the `TryFrom` conversions in `crate::convert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFacts {
    /// Our order number.
    pub out_trade_no: OutTradeNo,
    /// WeChat's number for the payment.
    pub transaction_id: TransactionId,
    /// What was paid.
    pub amount: Fen,
    /// In which currency.
    pub currency: Currency,
    /// The Mini Program it was paid in.
    pub appid: String,
    /// The merchant it was paid to.
    pub mch_id: String,
    /// When it was paid, if WeChat said.
    pub paid_at: Option<OffsetDateTime>,
    /// The event's id, for the record (notifications only).
    pub event_id: Option<String>,
    /// Notification or query.
    pub source: Source,
}

/// The currency of a payment (ISO 4217, as WeChat's `fee_type` says it). Orders are priced
/// in CNY only; a payment in anything else contradicts its order whatever the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    /// Renminbi, the only currency an order can be paid in.
    pub const CNY: &'static str = "CNY";

    /// The currency WeChat named; absent (empty) means CNY, WeChat's default.
    pub fn from_fee_type(fee_type: &str) -> Self {
        if fee_type.is_empty() {
            Currency(Self::CNY.to_owned())
        } else {
            Currency(fee_type.to_owned())
        }
    }

    /// Whether this is CNY.
    pub fn is_cny(&self) -> bool {
        self.0 == Self::CNY
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PaymentFacts {
    /// Whether `other` says the same payment: same transaction, amount, currency and payee.
    /// A notification WeChat's own answer does not confirm this way was not WeChat's.
    pub fn agrees_with(&self, other: &PaymentFacts) -> bool {
        self.out_trade_no == other.out_trade_no
            && self.transaction_id == other.transaction_id
            && self.amount == other.amount
            && self.currency == other.currency
            && self.appid == other.appid
            && self.mch_id == other.mch_id
    }
}

/// The merchant this order-svc sells for: a payment to anyone else is an anomaly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedMerchant {
    /// The Mini Program's AppID.
    pub appid: String,
    /// The merchant number.
    pub mch_id: String,
}

impl ExpectedMerchant {
    /// Whether `facts` were paid to this merchant.
    pub fn is_payee_of(&self, facts: &PaymentFacts) -> bool {
        facts.appid == self.appid && facts.mch_id == self.mch_id
    }
}

/// Why an unpaid order was closed (stored in `close_reason`, sent in `order.closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its pay window passed.
    Expired,
    /// The buyer cancelled it.
    Cancelled,
    /// An operator closed it out of REVIEW (WeChat says it was never paid).
    Resolved,
}

impl CloseReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Expired => "expired",
            CloseReason::Cancelled => "cancelled",
            CloseReason::Resolved => "resolved",
        }
    }
}
