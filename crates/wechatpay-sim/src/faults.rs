//! Faults the simulator injects on request, so receivers can prove their defences.

use serde::{Deserialize, Serialize};

/// The fault settings (`PUT /sim/v1/faults` replaces them whole; absent fields mean off).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added latency on every merchant API answer, in milliseconds.
    pub latency_ms: u64,
    /// Fraction (0..1) of merchant API calls answered with `SYSTEMERROR`.
    pub system_error_rate: f64,
    /// The next this-many merchant API calls answer `SYSTEMERROR` (deterministic).
    pub system_error_next: u32,
    /// Notifications are never sent.
    pub drop_notifications: bool,
    /// Every notification attempt sends this many concurrent copies (0 or 1: one).
    pub duplicate_notifications: u32,
    /// Hold notifications until this many are pending, then send them newest first
    /// (0 or 1: no reordering).
    pub reorder_notifications: u32,
    /// Every notification's first delivery waits this many milliseconds (real time, not
    /// scaled): a late notification, arriving after the order expired at the merchant.
    pub delay_notifications_ms: u64,
    /// Notifications carry `total_fee` + 1, validly signed.
    pub wrong_amount: bool,
    /// Notifications carry a wrong signature.
    pub forge_signature: bool,
    /// The next this-many v3 answers and notifications carry a `WECHATPAY/SIGNTEST/` probe
    /// signature, as WeChat sends now and then to check that merchants verify.
    pub sign_test_next: u32,
}

impl Faults {
    /// Refuses settings that make no sense.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.system_error_rate) {
            return Err("system_error_rate must be between 0 and 1".into());
        }
        if self.duplicate_notifications > 100 {
            return Err("duplicate_notifications must be at most 100".into());
        }
        if self.latency_ms > 60_000 {
            return Err("latency_ms must be at most 60000".into());
        }
        if self.delay_notifications_ms > 3_600_000 {
            return Err("delay_notifications_ms must be at most 3600000".into());
        }
        if self.reorder_notifications > 1000 {
            return Err("reorder_notifications must be at most 1000".into());
        }
        Ok(())
    }

    /// Copies per notification attempt.
    pub(crate) fn copies(&self) -> u32 {
        self.duplicate_notifications.max(1)
    }
}
