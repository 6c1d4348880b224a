#![no_main]
//! Any bytes as a payment notification: refused or verified, never a panic.

use libfuzzer_sys::fuzz_target;
use wechat_pay::v2::{ApiKey, parse_payment_notification};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = ApiKey::new("192006250b4c09247ec02edce69f6a2d") {
        let _ = parse_payment_notification(data, &key);
    }
});
