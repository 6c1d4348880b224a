//! Orders as the service understands them: statuses and their transitions, items, and the
//! JSON shape the Mini Program sees.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use wechat_pay::{Fen, OutTradeNo, WeChatTime};

/// An order's status. The database holds the same set in a CHECK constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Created, not paid yet.
    Pending,
    /// WeChat confirmed the payment.
    Paid,
    /// Closed unpaid (expired or cancelled).
    Closed,
    /// A refund is in progress.
    Refunding,
    /// Part of the amount was refunded.
    PartiallyRefunded,
    /// Fully refunded.
    Refunded,
    /// A payment contradicted the order; an operator must look at it.
    Review,
}

impl OrderStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Paid => "PAID",
            OrderStatus::Closed => "CLOSED",
            OrderStatus::Refunding => "REFUNDING",
            OrderStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            OrderStatus::Refunded => "REFUNDED",
            OrderStatus::Review => "REVIEW",
        }
    }

    /// Whether the state machine allows `self → to`. Every status change in the database is
    /// a guarded statement that repeats this rule in its WHERE clause.
    pub fn can_become(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Pending, Paid | Closed | Review)
                | (Paid, Refunding | Review)
                | (Refunding, PartiallyRefunded | Refunded | Paid)
                | (PartiallyRefunded, Refunding | Refunded)
                | (Closed, Review)
        )
    }

    /// The proto enum.
    pub fn to_proto(self) -> proto::order::v1::OrderStatus {
        use proto::order::v1::OrderStatus as P;
        match self {
            OrderStatus::Pending => P::Pending,
            OrderStatus::Paid => P::Paid,
            OrderStatus::Closed => P::Closed,
            OrderStatus::Refunding => P::Refunding,
            OrderStatus::PartiallyRefunded => P::PartiallyRefunded,
            OrderStatus::Refunded => P::Refunded,
            OrderStatus::Review => P::Review,
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for OrderStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "PENDING" => OrderStatus::Pending,
            "PAID" => OrderStatus::Paid,
            "CLOSED" => OrderStatus::Closed,
            "REFUNDING" => OrderStatus::Refunding,
            "PARTIALLY_REFUNDED" => OrderStatus::PartiallyRefunded,
            "REFUNDED" => OrderStatus::Refunded,
            "REVIEW" => OrderStatus::Review,
            other => return Err(UnknownStatus(other.to_owned())),
        })
    }
}

/// One line of an order, priced by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// Product code.
    pub sku: String,
    /// Product name at the time of the order.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// Unit price at the time of the order.
    pub unit_price_fen: Fen,
}

/// A product of the price list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Product code.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Price in fen.
    pub price_fen: Fen,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Our id.
    pub id: Uuid,
    /// The number WeChat knows it by.
    pub out_trade_no: OutTradeNo,
    /// Its owner.
    pub openid: String,
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
    pub transaction_id: Option<String>,
}

/// The order as the Mini Program sees it (fixed shape; fields may be added, never renamed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Our id.
    pub id: Uuid,
    /// The merchant order number.
    pub out_trade_no: String,
    /// `PENDING`, `PAID`, ...
    pub status: OrderStatus,
    /// Total in fen.
    pub amount_fen: Fen,
    /// What was bought.
    pub items: Vec<OrderItem>,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// RFC 3339, once paid.
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
    /// WeChat's number, once paid.
    pub transaction_id: Option<String>,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            id: o.id,
            out_trade_no: o.out_trade_no.to_string(),
            status: o.status,
            amount_fen: o.amount,
            items: o.items.clone(),
            created_at: o.created_at,
            expires_at: o.expires_at,
            paid_at: o.paid_at,
            transaction_id: o.transaction_id.clone(),
        }
    }
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
    fn status_names_round_trip_and_transitions_are_guarded() {
        for s in [
            OrderStatus::Pending,
            OrderStatus::Paid,
            OrderStatus::Closed,
            OrderStatus::Refunding,
            OrderStatus::PartiallyRefunded,
            OrderStatus::Refunded,
            OrderStatus::Review,
        ] {
            assert_eq!(s.as_str().parse::<OrderStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert!(OrderStatus::Pending.can_become(OrderStatus::Paid));
        assert!(
            !OrderStatus::Closed.can_become(OrderStatus::Paid),
            "never backwards to PAID"
        );
        assert!(!OrderStatus::Refunded.can_become(OrderStatus::Paid));
        assert!(!OrderStatus::Paid.can_become(OrderStatus::Pending));
    }

    #[test]
    fn generated_numbers_are_valid_and_distinct() {
        let a = new_out_trade_no();
        assert_eq!(a.as_str().len(), 28);
        assert_ne!(a, new_out_trade_no());
    }
}
