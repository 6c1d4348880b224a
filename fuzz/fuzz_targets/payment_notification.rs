#![no_main]
//! The payment notification verifier, as received and re-signed with the key.
//! The check is fuzz_checks::payment_notification (crates/fuzz-checks), which `cargo test` also runs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::payment_notification(data));
