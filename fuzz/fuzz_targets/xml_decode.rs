#![no_main]
//! WeChat's XML codec: refused or decoded, and what decodes re-encodes to the same fields.
//! The check is fuzz_checks::xml_decode (crates/fuzz-checks), which `cargo test` also runs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::xml_decode(data));
