#![no_main]
//! order-svc's session tokens: verify any string; issued tokens verify back.
//! The check is fuzz_checks::session_token (crates/fuzz-checks), which `cargo test` also runs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::session_token(data));
