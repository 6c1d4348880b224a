//! What a buyer may ask for, validated once: the HTTP and gRPC faces parse their wire shapes
//! into these, and the use cases take only these.

use sha2::{Digest, Sha256};

use crate::error::AppError;

/// Most lines in one order.
pub const MAX_LINES: usize = 20;
/// Most units of one sku in one order.
pub const MAX_QUANTITY: u32 = 99;
/// Longest sku (the products table's CHECK says the same).
const MAX_SKU_LEN: usize = 32;

/// One line of an order request: a sku and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// Product code, as the buyer sent it.
    pub sku: String,
    /// 1 to [`MAX_QUANTITY`].
    pub quantity: u32,
}

/// An order request: 1 to [`MAX_LINES`] lines, each quantity 1 to [`MAX_QUANTITY`]; lines
/// naming the same sku are one line with their quantities added (so every request the
/// OpenAPI schema allows is accepted). Prices are not part of it: the server prices every
/// order from its list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    lines: Vec<OrderLine>,
}

impl OrderRequest {
    /// Checks the lines and merges those of the same sku.
    pub fn new(lines: Vec<OrderLine>) -> Result<Self, AppError> {
        if lines.is_empty() || lines.len() > MAX_LINES {
            return Err(AppError::InvalidRequest(format!(
                "an order has 1 to {MAX_LINES} items"
            )));
        }
        let mut merged: Vec<OrderLine> = Vec::with_capacity(lines.len());
        for line in lines {
            if line.quantity == 0 || line.quantity > MAX_QUANTITY {
                return Err(AppError::InvalidRequest(format!(
                    "quantity must be between 1 and {MAX_QUANTITY}"
                )));
            }
            if line.sku.is_empty() || line.sku.len() > MAX_SKU_LEN {
                return Err(AppError::UnknownSku(
                    line.sku.chars().take(MAX_SKU_LEN).collect(),
                ));
            }
            // At most MAX_LINES × MAX_QUANTITY units of one sku: no overflow.
            match merged.iter_mut().find(|m| m.sku == line.sku) {
                Some(earlier) => earlier.quantity += line.quantity,
                None => merged.push(line),
            }
        }
        Ok(OrderRequest { lines: merged })
    }

    /// The lines, in the buyer's order.
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }

    /// A stable hash of what is asked for (lines sorted by sku), stored with an
    /// Idempotency-Key so that the key replayed with another request is refused.
    pub fn fingerprint(&self) -> String {
        let mut lines: Vec<(&str, u32)> = self
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), l.quantity))
            .collect();
        lines.sort_unstable();
        let canonical: String = lines.iter().map(|(sku, q)| format!("{sku}x{q};")).collect();
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// An `Idempotency-Key`: 1 to 64 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest key (the orders table's CHECK says the same).
    pub const MAX_LEN: usize = 64;

    /// Checks a received key.
    pub fn parse(key: &str) -> Result<Self, AppError> {
        if key.is_empty() || key.len() > Self::MAX_LEN || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(AppError::InvalidRequest(format!(
                "Idempotency-Key must be 1 to {} visible ASCII characters",
                Self::MAX_LEN
            )));
        }
        Ok(IdempotencyKey(key.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A `wx.login` code: 1 to 128 visible ASCII characters (WeChat decides the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginCode(String);

impl LoginCode {
    /// Longest code accepted.
    pub const MAX_LEN: usize = 128;

    /// Checks a received code.
    pub fn parse(code: &str) -> Result<Self, AppError> {
        if code.is_empty()
            || code.len() > Self::MAX_LEN
            || !code.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(AppError::InvalidRequest(
                "`code` must be the code returned by wx.login".into(),
            ));
        }
        Ok(LoginCode(code.to_owned()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: u32) -> OrderLine {
        OrderLine {
            sku: sku.into(),
            quantity,
        }
    }

    fn code(lines: Vec<OrderLine>) -> Option<&'static str> {
        OrderRequest::new(lines).err().map(|e| e.code())
    }

    #[test]
    fn an_order_has_one_to_twenty_lines() {
        assert_eq!(code(vec![]), Some("invalid_request"));
        let many = (0..=MAX_LINES).map(|i| line(&format!("S{i}"), 1)).collect();
        assert_eq!(code(many), Some("invalid_request"));
        assert_eq!(code(vec![line("TEA", 2)]), None);
    }

    #[test]
    fn quantities_are_between_one_and_ninety_nine() {
        assert_eq!(code(vec![line("TEA", 0)]), Some("invalid_request"));
        assert_eq!(code(vec![line("TEA", 100)]), Some("invalid_request"));
        assert_eq!(code(vec![line("TEA", 99)]), None);
    }

    #[test]
    fn lines_of_one_sku_are_merged() {
        let request = OrderRequest::new(vec![line("A", 99), line("B", 1), line("A", 2)]).unwrap();
        assert_eq!(request.lines(), &[line("A", 101), line("B", 1)]);
    }

    #[test]
    fn a_sku_is_not_empty_or_too_long() {
        assert_eq!(code(vec![line("", 1)]), Some("unknown_sku"));
        assert_eq!(code(vec![line(&"X".repeat(33), 1)]), Some("unknown_sku"));
    }

    #[test]
    fn the_fingerprint_ignores_line_order() {
        let a = OrderRequest::new(vec![line("A", 1), line("B", 2)]).unwrap();
        let b = OrderRequest::new(vec![line("B", 2), line("A", 1)]).unwrap();
        let c = OrderRequest::new(vec![line("B", 3), line("A", 1)]).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn keys_and_codes_are_visible_ascii_of_bounded_length() {
        assert!(IdempotencyKey::parse("k-1").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(65)).is_err());
        assert!(IdempotencyKey::parse("with space").is_err());
        assert!(LoginCode::parse("test-alice").is_ok());
        assert!(LoginCode::parse("").is_err());
        assert!(LoginCode::parse(&"c".repeat(129)).is_err());
    }
}
