//! An order's status and the state machine. The database holds the same set in a CHECK
//! constraint, and every status change in SQL is a guarded statement
//! (`WHERE status = <from>`) that the store only issues after [`OrderStatus::to`] allowed it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

/// A status change the state machine does not allow (a bug in the caller, never a user
/// mistake: callers decide from the locked row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// The status it has.
    pub from: OrderStatus,
    /// The status it was asked to take.
    pub to: OrderStatus,
}

impl OrderStatus {
    /// Every status, in the order of the lifecycle.
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::Closed,
        OrderStatus::Refunding,
        OrderStatus::PartiallyRefunded,
        OrderStatus::Refunded,
        OrderStatus::Review,
    ];

    /// The name stored in the database and shown in JSON.
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

    /// `self → next`, if the state machine allows it. Nothing moves backwards: a CLOSED or
    /// REFUNDED order never becomes PAID; a contradiction goes to REVIEW.
    pub fn to(self, next: OrderStatus) -> Result<OrderStatus, IllegalTransition> {
        use OrderStatus::*;
        let allowed = matches!(
            (self, next),
            (Pending, Paid | Closed | Review)
                | (Paid, Refunding | Review)
                | (Refunding, PartiallyRefunded | Refunded | Paid)
                | (PartiallyRefunded, Refunding | Refunded)
                | (Closed, Review)
                | (Review, Paid | Closed)
        );
        if allowed {
            Ok(next)
        } else {
            Err(IllegalTransition {
                from: self,
                to: next,
            })
        }
    }

    /// Whether a payment has been taken for an order in this status.
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid
                | OrderStatus::Refunding
                | OrderStatus::PartiallyRefunded
                | OrderStatus::Refunded
        )
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
        OrderStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip_in_text_and_json() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert!("paid".parse::<OrderStatus>().is_err());
    }

    #[test]
    fn nothing_moves_backwards_to_paid_but_an_operators_review_resolution() {
        use OrderStatus::*;
        assert_eq!(Pending.to(Paid), Ok(Paid));
        assert_eq!(Pending.to(Closed), Ok(Closed));
        assert_eq!(Closed.to(Review), Ok(Review));
        for from in [Closed, Refunded, Paid] {
            assert_eq!(from.to(Paid), Err(IllegalTransition { from, to: Paid }));
        }
        assert!(Paid.to(Pending).is_err());
        // Out of REVIEW only by an operator's resolution, as WeChat's answer allows.
        assert_eq!(Review.to(Paid), Ok(Paid));
        assert_eq!(Review.to(Closed), Ok(Closed));
        assert!(Review.to(Pending).is_err());
        assert!(Review.to(Refunded).is_err());
    }
}
