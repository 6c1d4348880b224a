//! The order and what it is made of.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use wechat_pay::{Fen, OpenId, OutTradeNo, TransactionId, WeChatTime};

use super::OrderStatus;

/// Our id of an order (a UUIDv7, so ids sort by creation time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(Uuid);

impl OrderId {
    /// A fresh id.
    pub fn generate() -> Self {
        OrderId(Uuid::now_v7())
    }

    /// The UUID, to bind to a query or put in a message.
    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for OrderId {
    fn from(id: Uuid) -> Self {
        OrderId(id)
    }
}

impl FromStr for OrderId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(OrderId)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One line of an order, priced by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderItem {
    /// Product code.
    pub sku: String,
    /// Product name at the time of the order.
    pub name: String,
    /// How many units.
    pub quantity: u32,
    /// Unit price at the time of the order, in fen.
    #[schema(value_type = u64, minimum = 1)]
    pub unit_price_fen: Fen,
}

/// A product of the price list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Product {
    /// Product code.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Price in fen.
    #[schema(value_type = u64, minimum = 1)]
    pub price_fen: Fen,
}

/// An order as stored (and as cached in Redis, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Our id.
    pub id: OrderId,
    /// The number WeChat knows it by.
    pub out_trade_no: OutTradeNo,
    /// The buyer.
    pub openid: OpenId,
    /// Where it stands.
    pub status: OrderStatus,
    /// Total, computed from the price list.
    pub amount: Fen,
    /// What was bought.
    pub items: Vec<OrderItem>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops being payable.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The current prepay session, if any.
    pub prepay_id: Option<String>,
    /// When that prepay session expires.
    #[serde(with = "time::serde::rfc3339::option")]
    pub prepay_expires_at: Option<OffsetDateTime>,
    /// When it was paid.
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
    /// WeChat's number, once paid.
    pub transaction_id: Option<TransactionId>,
    /// Given back to the payer, as WeChat confirmed.
    #[serde(default)]
    pub refunded: Fen,
    /// Asked back and not yet confirmed (refunds in flight).
    #[serde(default)]
    pub refunding: Fen,
    /// Raised by every change of the stored row (1 when created): of two copies of an
    /// order, the one with the higher version is the newer. A cache entry written before
    /// versions existed reads as 0, older than any stored order.
    #[serde(default)]
    pub version: i64,
}

/// `d` as a span of wall-clock time (saturating: a setting too large to add is "forever").
pub fn time_span(d: std::time::Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// Milliseconds since the Unix epoch (event and gRPC timestamps).
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// A fresh merchant order number: `MP`, the Beijing time to the second, 12 random letters
/// and digits (28 characters, within WeChat's 6–32 of `[0-9A-Za-z_-|*]`).
pub fn new_out_trade_no() -> OutTradeNo {
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    let number = format!("MP{}{}", WeChatTime::now(), random.to_ascii_uppercase());
    OutTradeNo::parse(number)
        .unwrap_or_else(|_| unreachable!("the generated number follows WeChat's rules"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_numbers_are_valid_and_distinct() {
        let a = new_out_trade_no();
        assert_eq!(a.as_str().len(), 28);
        assert_ne!(a, new_out_trade_no());
    }

    #[test]
    fn order_ids_parse_from_text_only_as_uuids() {
        let id = OrderId::generate();
        assert_eq!(id.to_string().parse::<OrderId>().unwrap(), id);
        assert!("not-an-id".parse::<OrderId>().is_err());
    }
}
