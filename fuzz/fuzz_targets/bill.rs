#![no_main]
//! WeChat's daily bill: refused or read; a bill that is read adds up and writes back to itself.
//! The check is fuzz_checks::bill (crates/fuzz-checks), which `cargo test` also runs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::bill(data));
