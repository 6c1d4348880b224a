#![no_main]
//! Every JSON body order-svc's HTTP APIs accept, through the handlers' own checks.
//! The check is fuzz_checks::order_json_bodies (crates/fuzz-checks), which `cargo test` also runs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::order_json_bodies(data));
