//! Validated identifiers: merchant order numbers, WeChat's transaction numbers, openids and
//! nonces.

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Deserializer, Serialize};

/// Why a string is not a valid identifier of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Too short or too long.
    #[error("{kind} must be {min} to {max} characters long, got {len}")]
    Length {
        /// Which identifier.
        kind: &'static str,
        /// Smallest allowed length.
        min: usize,
        /// Largest allowed length.
        max: usize,
        /// The length received.
        len: usize,
    },
    /// A character outside the allowed set.
    #[error("{kind} may contain only {allowed}")]
    Charset {
        /// Which identifier.
        kind: &'static str,
        /// The allowed characters, for the message.
        allowed: &'static str,
    },
}

fn check(
    s: &str,
    kind: &'static str,
    (min, max): (usize, usize),
    allowed: &'static str,
    ok: impl Fn(u8) -> bool,
) -> Result<(), IdError> {
    let len = s.len();
    if !(min..=max).contains(&len) {
        return Err(IdError::Length {
            kind,
            min,
            max,
            len,
        });
    }
    if !s.bytes().all(ok) {
        return Err(IdError::Charset { kind, allowed });
    }
    Ok(())
}

/// The merchant's order number (`out_trade_no`): 6 to 32 characters of `[0-9A-Za-z_-|*]`,
/// unique per merchant.
///
/// ⚠ The reference notes that some WeChat doc versions allow `@` and no minimum length; as it
/// says to, we stay within 6–32 characters of `[0-9A-Za-z_\-|*]`, which every version accepts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OutTradeNo(String);

impl OutTradeNo {
    /// Smallest accepted length.
    pub const MIN_LEN: usize = 6;
    /// Largest accepted length.
    pub const MAX_LEN: usize = 32;

    /// Validates `s` as an `out_trade_no`.
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check(
            &s,
            "out_trade_no",
            (Self::MIN_LEN, Self::MAX_LEN),
            "ASCII letters, digits and _-|*",
            |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'),
        )?;
        Ok(OutTradeNo(s))
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// WeChat's number for a payment (`transaction_id`): `String(32)` in the reference, 28 digits
/// in practice. We accept 1 to 32 ASCII letters and digits, so anything longer or with other
/// characters is refused at the edge instead of failing later in the database.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TransactionId(String);

impl TransactionId {
    /// Largest accepted length.
    pub const MAX_LEN: usize = 32;

    /// Validates `s` as a `transaction_id`.
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check(
            &s,
            "transaction_id",
            (1, Self::MAX_LEN),
            "ASCII letters and digits",
            |b| b.is_ascii_alphanumeric(),
        )?;
        Ok(TransactionId(s))
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Our number for a refund (`out_refund_no`): `String(64)` of `[0-9A-Za-z_\-|*@]`, unique
/// per merchant. The same number is the same refund: a retry must reuse it (a new number
/// risks a second refund).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OutRefundNo(String);

impl OutRefundNo {
    /// Largest accepted length.
    pub const MAX_LEN: usize = 64;

    /// Validates `s` as an `out_refund_no`.
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check(
            &s,
            "out_refund_no",
            (1, Self::MAX_LEN),
            "ASCII letters, digits and _-|*@",
            |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*' | b'@'),
        )?;
        Ok(OutRefundNo(s))
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// WeChat's number for a refund (`refund_id`): `String(32)`; we accept 1 to 32 ASCII letters
/// and digits, like [`TransactionId`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RefundId(String);

impl RefundId {
    /// Largest accepted length.
    pub const MAX_LEN: usize = 32;

    /// Validates `s` as a `refund_id`.
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check(
            &s,
            "refund_id",
            (1, Self::MAX_LEN),
            "ASCII letters and digits",
            |b| b.is_ascii_alphanumeric(),
        )?;
        Ok(RefundId(s))
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user's id under one appid (`openid`): `String(128)`; WeChat issues 28 characters of
/// `[0-9A-Za-z_-]`. We accept 1 to 128 of those.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OpenId(String);

impl OpenId {
    /// Largest accepted length.
    pub const MAX_LEN: usize = 128;

    /// Validates `s` as an `openid`.
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check(
            &s,
            "openid",
            (1, Self::MAX_LEN),
            "ASCII letters, digits, _ and -",
            |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'),
        )?;
        Ok(OpenId(s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `Display`, `Deserialize` (validating) and `TryFrom<String>` for the string identifiers.
macro_rules! text_id {
    ($($ty:ident),+) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $ty::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                $ty::parse(s)
            }
        }
    )+};
}

text_id!(OutTradeNo, TransactionId, OpenId, OutRefundNo, RefundId);

/// A random string that makes each signed message unique (`nonce_str`, `nonceStr`): at most
/// 32 characters; generated ones are 32 ASCII letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct NonceStr(String);

impl NonceStr {
    /// Largest accepted length.
    pub const MAX_LEN: usize = 32;

    /// A fresh nonce: 32 random ASCII alphanumerics from a cryptographic RNG.
    pub fn generate() -> Self {
        let s: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(Self::MAX_LEN)
            .map(char::from)
            .collect();
        NonceStr(s)
    }

    /// Validates a received nonce: 1 to 32 ASCII letters and digits.
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check(
            &s,
            "nonce_str",
            (1, Self::MAX_LEN),
            "ASCII letters and digits",
            |b| b.is_ascii_alphanumeric(),
        )?;
        Ok(NonceStr(s))
    }

    /// The nonce as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NonceStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_trade_no_rules() {
        assert!(OutTradeNo::parse("20150806125346").is_ok());
        assert!(OutTradeNo::parse("a_b-c|d*").is_ok());
        assert!(matches!(
            OutTradeNo::parse("12345"),
            Err(IdError::Length { len: 5, .. })
        ));
        assert!(matches!(
            OutTradeNo::parse("x".repeat(33)),
            Err(IdError::Length { .. })
        ));
        for bad in ["abc def", "abcdef@", "订单号123456", "abcdef\n"] {
            assert!(
                matches!(OutTradeNo::parse(bad), Err(IdError::Charset { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn transaction_id_and_openid_rules() {
        assert!(TransactionId::parse("4200000000000220261127748710").is_ok());
        assert!(TransactionId::parse("").is_err());
        assert!(TransactionId::parse("1".repeat(33)).is_err());
        assert!(TransactionId::parse("42\u{0}1").is_err());
        assert!(OpenId::parse("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o").is_ok());
        assert!(OpenId::parse("").is_err());
        assert!(OpenId::parse("o".repeat(129)).is_err());
        assert!(OpenId::parse("o user").is_err());
        let parsed: OpenId = serde_json::from_str("\"oUser-1\"").unwrap();
        assert_eq!(parsed.as_str(), "oUser-1");
        assert!(serde_json::from_str::<OpenId>("\"o user\"").is_err());
    }

    #[test]
    fn generated_nonces_are_valid_and_distinct() {
        let a = NonceStr::generate();
        let b = NonceStr::generate();
        assert_eq!(a.as_str().len(), 32);
        assert!(NonceStr::parse(a.as_str()).is_ok());
        assert_ne!(a, b);
        assert!(NonceStr::parse("").is_err());
        assert!(NonceStr::parse("x".repeat(33)).is_err());
    }
}
