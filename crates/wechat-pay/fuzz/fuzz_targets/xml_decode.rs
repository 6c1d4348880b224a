#![no_main]
//! Any bytes: the decoder answers Ok or a typed error, never panics, and what it accepts
//! re-encodes and decodes to the same fields.

use libfuzzer_sys::fuzz_target;
use wechat_pay::v2::xml;

fuzz_target!(|data: &[u8]| {
    if let Ok(params) = xml::decode(data) {
        if let Ok(doc) = xml::encode(&params) {
            assert_eq!(xml::decode(doc.as_bytes()).ok(), Some(params));
        }
    }
});
