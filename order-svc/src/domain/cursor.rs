//! Keyset pagination: where a page of orders starts, and how many it holds.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use super::{Order, OrderId};
use crate::error::AppError;

/// The position after an order in the newest-first listing: its creation time and id.
/// Shown to callers as opaque base64url text.
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
        let raw = format!("{}:{}", self.created_at.unix_timestamp_nanos(), self.id);
        f.write_str(&URL_SAFE_NO_PAD.encode(raw))
    }
}

impl FromStr for Cursor {
    type Err = InvalidCursor;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidCursor)?;
        let raw = String::from_utf8(raw).map_err(|_| InvalidCursor)?;
        let (nanos, id) = raw.split_once(':').ok_or(InvalidCursor)?;
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
        assert_eq!("!!".parse::<Cursor>(), Err(InvalidCursor));
        assert_eq!(
            URL_SAFE_NO_PAD
                .encode("12:not-a-uuid")
                .parse::<Cursor>(),
            Err(InvalidCursor)
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
