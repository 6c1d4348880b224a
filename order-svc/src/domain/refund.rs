//! Refunds: what an operator asks for, a refund's life (ours, then WeChat's states), and
//! which status an order takes from its refunded and refunding amounts.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;
use wechat_pay::{Fen, OutRefundNo, OutTradeNo, WeChatTime};

use super::{OrderId, OrderStatus};
use crate::error::AppError;

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Recorded and its amount reserved; WeChat has not accepted it yet (it is sent again,
    /// with the same `out_refund_no`, until WeChat answers).
    Requested,
    /// WeChat accepted it; the money is on its way.
    Processing,
    /// WeChat gave the money back.
    Success,
    /// WeChat could not pay it back (the payer's account is gone, say): a person must act at
    /// the merchant platform. Its amount is no longer reserved.
    Change,
    /// WeChat closed it without paying back.
    Refundclose,
    /// WeChat refused it (more than was left at WeChat, too old, ...); nothing moved.
    Failed,
}

impl RefundStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Requested => "REQUESTED",
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::Success => "SUCCESS",
            RefundStatus::Change => "CHANGE",
            RefundStatus::Refundclose => "REFUNDCLOSE",
            RefundStatus::Failed => "FAILED",
        }
    }

    /// Whether it will not change any more (its amount is no longer reserved).
    pub fn is_final(self) -> bool {
        !matches!(self, RefundStatus::Requested | RefundStatus::Processing)
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored status that is none of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown refund status {0:?}")]
pub struct UnknownRefundStatus(String);

impl FromStr for RefundStatus {
    type Err = UnknownRefundStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "REQUESTED" => RefundStatus::Requested,
            "PROCESSING" => RefundStatus::Processing,
            "SUCCESS" => RefundStatus::Success,
            "CHANGE" => RefundStatus::Change,
            "REFUNDCLOSE" => RefundStatus::Refundclose,
            "FAILED" => RefundStatus::Failed,
            other => return Err(UnknownRefundStatus(other.to_owned())),
        })
    }
}

/// A refund as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// Our id.
    pub id: Uuid,
    /// The refunded order.
    pub order_id: OrderId,
    /// Our number for it at WeChat (the same number is the same refund there).
    pub out_refund_no: OutRefundNo,
    /// How much.
    pub amount: Fen,
    /// Why (shown to the payer).
    pub reason: String,
    /// The operator who asked.
    pub requested_by: String,
    /// Where it stands.
    pub status: RefundStatus,
    /// WeChat's number, once accepted.
    pub refund_id: Option<String>,
    /// Why WeChat refused it (`FAILED`).
    pub failure: Option<String>,
    /// When it was asked.
    pub created_at: OffsetDateTime,
    /// When it reached a final state.
    pub settled_at: Option<OffsetDateTime>,
}

/// An operator's refund request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// How much, above zero.
    pub amount: Fen,
    /// Why: 1 to 80 characters (WeChat's `refund_desc`), no control characters.
    pub reason: String,
}

/// The longest refund reason (WeChat's `refund_desc`).
pub const MAX_REFUND_REASON: usize = 80;

/// Checks an operator's reason for anything (a refund, a resolution): 1 to 80 characters,
/// no control characters.
pub fn checked_reason(reason: &str) -> Result<String, AppError> {
    let reason = reason.trim();
    let chars = reason.chars().count();
    if chars == 0 || chars > MAX_REFUND_REASON || reason.chars().any(char::is_control) {
        return Err(AppError::InvalidRequest(format!(
            "reason must be 1 to {MAX_REFUND_REASON} characters without control characters"
        )));
    }
    Ok(reason.to_owned())
}

impl RefundRequest {
    /// Checks the amount (whole fen above zero) and the reason.
    pub fn new(amount_fen: i64, reason: &str) -> Result<Self, AppError> {
        let amount = Fen::from_i64(amount_fen)
            .ok()
            .filter(|a| !a.is_zero())
            .ok_or_else(|| {
                AppError::InvalidRequest(
                    "amount_fen must be a whole number of fen above zero".into(),
                )
            })?;
        Ok(RefundRequest {
            amount,
            reason: checked_reason(reason)?,
        })
    }

    /// What makes two requests the same (for the Idempotency-Key).
    pub fn fingerprint(&self) -> String {
        format!("{}:{}", self.amount, self.reason)
    }
}

/// A refund's final state as WeChat reports it (by notification or refund query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundResult {
    /// Our number.
    pub out_refund_no: OutRefundNo,
    /// The order number WeChat has it under.
    pub out_trade_no: OutTradeNo,
    /// WeChat's number.
    pub refund_id: String,
    /// How much WeChat says it is.
    pub amount: Fen,
    /// `Success`, `Change` or `Refundclose`.
    pub status: RefundStatus,
}

/// The status an order paid `amount` takes with `refunded` given back and `refunding` in
/// flight.
pub fn status_after_refunds(amount: Fen, refunded: Fen, refunding: Fen) -> OrderStatus {
    if !refunding.is_zero() {
        OrderStatus::Refunding
    } else if refunded == amount {
        OrderStatus::Refunded
    } else if refunded.is_zero() {
        OrderStatus::Paid
    } else {
        OrderStatus::PartiallyRefunded
    }
}

/// A fresh refund number: `RF`, the Beijing time to the second, 12 random letters and
/// digits (28 characters, within WeChat's 64 of `[0-9A-Za-z_-|*@]`).
pub fn new_out_refund_no() -> OutRefundNo {
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    let number = format!("RF{}{}", WeChatTime::now(), random.to_ascii_uppercase());
    OutRefundNo::parse(number)
        .unwrap_or_else(|_| unreachable!("the generated number follows WeChat's rules"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    fn fen(n: u64) -> Fen {
        Fen::new(n).unwrap()
    }

    #[test]
    fn the_order_status_follows_the_amounts() {
        let total = fen(1999);
        assert_eq!(
            status_after_refunds(total, Fen::ZERO, Fen::ZERO),
            OrderStatus::Paid
        );
        assert_eq!(
            status_after_refunds(total, Fen::ZERO, fen(1)),
            OrderStatus::Refunding
        );
        assert_eq!(
            status_after_refunds(total, fen(1998), fen(1)),
            OrderStatus::Refunding
        );
        assert_eq!(
            status_after_refunds(total, fen(500), Fen::ZERO),
            OrderStatus::PartiallyRefunded
        );
        assert_eq!(
            status_after_refunds(total, total, Fen::ZERO),
            OrderStatus::Refunded
        );
    }

    #[test]
    fn requests_and_numbers_are_checked() {
        assert!(RefundRequest::new(0, "x").is_err());
        assert!(RefundRequest::new(-5, "x").is_err());
        assert!(RefundRequest::new(5, "  ").is_err());
        assert!(RefundRequest::new(5, &"退".repeat(81)).is_err());
        assert!(RefundRequest::new(5, "a\u{0}b").is_err());
        let ok = RefundRequest::new(5, " damaged ").unwrap();
        assert_eq!(ok.reason, "damaged");
        let n = new_out_refund_no();
        assert_eq!(n.as_str().len(), 28);
        assert!("SUCCESS".parse::<RefundStatus>().unwrap().is_final());
        assert!(!RefundStatus::Requested.is_final());
        assert!("NOPE".parse::<RefundStatus>().is_err());
    }
}
