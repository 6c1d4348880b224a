//! Money as an integer number of fen (分, 1/100 yuan). Never a float.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of money in fen, the unit of every WeChat Pay amount field (`total_fee`,
/// `cash_fee`, `amount.total`, ...).
///
/// The value is never negative and never above `i64::MAX`, so it always fits a PostgreSQL
/// `BIGINT`. Arithmetic is checked: an overflow is an error, not a wrap.
///
/// ```
/// use wechat_pay::Fen;
/// let price = Fen::new(1_999).unwrap();
/// let total = price.checked_mul(3).unwrap().checked_add(Fen::new(1).unwrap()).unwrap();
/// assert_eq!(total.get(), 5_998);
/// assert_eq!(total.to_string(), "5998");
/// assert_eq!(total.to_yuan_string(), "59.98");
/// assert!("12.5".parse::<Fen>().is_err()); // no decimals, ever
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fen(u64);

/// Why a value is not a valid amount of fen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The text is empty or holds something other than ASCII digits.
    #[error("an amount in fen must be a non-empty string of ASCII digits")]
    NotDigits,
    /// The value does not fit (over `i64::MAX` fen), or arithmetic overflowed.
    #[error("amount out of range")]
    OutOfRange,
    /// A negative value was given where money was expected.
    #[error("an amount in fen cannot be negative")]
    Negative,
}

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);
    /// The largest representable amount (`i64::MAX` fen).
    pub const MAX: Fen = Fen(i64::MAX as u64);

    /// An amount of `fen`; refused above [`Fen::MAX`].
    pub fn new(fen: u64) -> Result<Self, MoneyError> {
        if fen > Self::MAX.0 {
            return Err(MoneyError::OutOfRange);
        }
        Ok(Fen(fen))
    }

    /// An amount from a signed integer (a database `BIGINT`); negative values are refused.
    pub fn from_i64(fen: i64) -> Result<Self, MoneyError> {
        u64::try_from(fen)
            .map(Fen)
            .map_err(|_| MoneyError::Negative)
    }

    /// The number of fen.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The number of fen as an `i64` (always fits, by construction).
    pub fn as_i64(self) -> i64 {
        // The invariant `self.0 <= i64::MAX` makes this lossless.
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// Whether the amount is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).and_then(|v| Fen::new(v).ok())
    }

    /// `self - other`, or `None` if the result would be negative.
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    /// `self * quantity`, or `None` on overflow.
    pub fn checked_mul(self, quantity: u64) -> Option<Fen> {
        self.0.checked_mul(quantity).and_then(|v| Fen::new(v).ok())
    }

    /// The amount in yuan as a decimal string with two places (bills, display only).
    pub fn to_yuan_string(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Fen {
    type Err = MoneyError;

    /// Strict parse: ASCII digits only (no sign, no spaces, no decimal point).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::NotDigits);
        }
        let v: u64 = s.parse().map_err(|_| MoneyError::OutOfRange)?;
        Fen::new(v)
    }
}

impl Serialize for Fen {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Fen {
    /// Accepts a JSON integer or a string of digits (WeChat's XML carries amounts as text).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Fen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer number of fen")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Fen, E> {
                Fen::new(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Fen, E> {
                Fen::from_i64(v).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Fen, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_strict() {
        assert_eq!("88".parse::<Fen>(), Ok(Fen(88)));
        for bad in ["", "-1", "+1", "1.0", " 1", "1e3", "１"] {
            assert_eq!(bad.parse::<Fen>(), Err(MoneyError::NotDigits), "{bad:?}");
        }
        assert_eq!(
            "99999999999999999999".parse::<Fen>(),
            Err(MoneyError::OutOfRange)
        );
        assert_eq!(
            "9223372036854775808".parse::<Fen>(),
            Err(MoneyError::OutOfRange)
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Fen::MAX.checked_add(Fen(1)), None);
        assert_eq!(Fen(1).checked_sub(Fen(2)), None);
        assert_eq!(Fen(u64::MAX / 4).checked_mul(3), None);
        assert_eq!(Fen(250).checked_mul(4), Some(Fen(1000)));
        assert_eq!(Fen::from_i64(-5), Err(MoneyError::Negative));
        assert_eq!(Fen(5).to_yuan_string(), "0.05");
    }

    #[test]
    fn serde_accepts_number_and_digit_string() {
        let a: Fen = serde_json::from_str("12").unwrap();
        let b: Fen = serde_json::from_str("\"12\"").unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_str::<Fen>("12.0").is_err());
        assert!(serde_json::from_str::<Fen>("-3").is_err());
        assert_eq!(serde_json::to_string(&a).unwrap(), "12");
    }
}
