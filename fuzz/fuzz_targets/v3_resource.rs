#![no_main]
//! v3: resource decryption, signature verification, public keys; refused, never a panic.
//! The check is fuzz_checks::v3_resource (crates/fuzz-checks), which `cargo test` also runs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::v3_resource(data));
