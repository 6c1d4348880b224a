//! Keyset pagination: where a page of orders starts, and how many it holds.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use super::{Order, OrderId};
use crate::error::AppError;

/// The position after an order in the newest-first listing: its creation time and id.
/// Shown to callers as opaque text, `<unix nanoseconds>_<uuid>`; [`Cursor::PATTERN`] is
/// exactly what parses, so the OpenAPI document can say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The last order's creation time.
    pub created_at: OffsetDateTime,
    /// The last order's id (breaks ties in time).
    pub id: OrderId,
}

/// Text that is not a cursor this service issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor: pass the next_cursor of a previous page")]
pub struct InvalidCursor;

impl From<InvalidCursor> for AppError {
    fn from(e: InvalidCursor) -> Self {
        AppError::InvalidRequest(e.to_string())
    }
}

impl Cursor {
    /// The regular expression every cursor matches, and every text that matches parses.
    pub const PATTERN: &str =
        "^[0-9]{1,19}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

    /// The position after `order`.
    pub fn after(order: &Order) -> Self {
        Cursor {
            created_at: order.created_at,
            id: order.id,
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.created_at.unix_timestamp_nanos(), self.id)
    }
}

impl FromStr for Cursor {
    type Err = InvalidCursor;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (nanos, id) = text.split_once('_').ok_or(InvalidCursor)?;
        // Exactly the PATTERN: 1 to 19 digits (no sign), a hyphenated UUID (36 characters;
        // the uuid crate would also take the braced, URN and simple forms).
        if nanos.is_empty()
            || nanos.len() > 19
            || !nanos.bytes().all(|b| b.is_ascii_digit())
            || id.len() != 36
        {
            return Err(InvalidCursor);
        }
        let nanos: i128 = nanos.parse().map_err(|_| InvalidCursor)?;
        Ok(Cursor {
            created_at: OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .map_err(|_| InvalidCursor)?,
            id: id.parse().map_err(|_| InvalidCursor)?,
        })
    }
}

/// How many orders one page holds: 1 to [`PageSize::MAX`], [`PageSize::DEFAULT`] when not
/// given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// The page size when the caller gives none.
    pub const DEFAULT: u32 = 20;
    /// The largest page.
    pub const MAX: u32 = 100;

    /// Checks a requested size.
    pub fn new(requested: Option<u32>) -> Result<Self, AppError> {
        match requested {
            None => Ok(PageSize(Self::DEFAULT)),
            Some(n @ 1..=Self::MAX) => Ok(PageSize(n)),
            Some(_) => Err(AppError::InvalidRequest(format!(
                "limit must be between 1 and {}",
                Self::MAX
            ))),
        }
    }

    /// The size.
    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        for junk in [
            "!!",
            "12_not-a-uuid",
            "+12_0190b0f0-0000-7000-8000-000000000000",
            "12_0190b0f000007000800000000000000",
            "12_{0190b0f0-0000-7000-8000-000000000000}",
            "_0190b0f0-0000-7000-8000-000000000000",
            "12345678901234567890_0190b0f0-0000-7000-8000-000000000000",
        ] {
            assert_eq!(junk.parse::<Cursor>(), Err(InvalidCursor), "{junk}");
        }
        assert!(
            "9999999999999999999_0190b0f0-0000-7000-8000-000000000000"
                .parse::<Cursor>()
                .is_ok(),
            "the largest text the pattern allows is a valid time"
        );
        let cursor = Cursor {
            created_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            id: OrderId::generate(),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
    }

    #[test]
    fn page_sizes_are_one_to_a_hundred() {
        assert_eq!(PageSize::new(None).unwrap().get(), PageSize::DEFAULT);
        assert_eq!(PageSize::new(Some(100)).unwrap().get(), 100);
        assert!(PageSize::new(Some(0)).is_err());
        assert!(PageSize::new(Some(101)).is_err());
    }
}
