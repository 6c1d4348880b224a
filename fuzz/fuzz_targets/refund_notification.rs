#![no_main]
//! The refund notification parser and its req_info decryption.
//! The check is fuzz_checks::refund_notification (crates/fuzz-checks), which `cargo test` also runs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::refund_notification(data));
