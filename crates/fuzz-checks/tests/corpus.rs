//! The fuzz corpus replayed on stable: every file of `fuzz/corpus/<target>/` through the very
//! check its fuzz target runs. An empty or missing directory fails, so a moved corpus is
//! noticed rather than silently replaying nothing.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus of {target} ({}): {e}", dir.display()));
    let mut failed = Vec::new();
    let mut replayed = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        replayed += 1;
        if panic::catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        replayed > 0,
        "{} holds no corpus for {target}",
        dir.display()
    );
    assert!(failed.is_empty(), "{target} fails on {failed:#?}");
}

#[test]
fn xml_decode() {
    replay("xml_decode", fuzz_checks::xml_decode);
}

#[test]
fn payment_notification() {
    replay("payment_notification", fuzz_checks::payment_notification);
}

#[test]
fn refund_notification() {
    replay("refund_notification", fuzz_checks::refund_notification);
}

#[test]
fn order_json_bodies() {
    replay("order_json_bodies", fuzz_checks::order_json_bodies);
}

#[test]
fn session_token() {
    replay("session_token", fuzz_checks::session_token);
}

#[test]
fn bill() {
    replay("bill", fuzz_checks::bill);
}

#[test]
fn v3_resource() {
    replay("v3_resource", fuzz_checks::v3_resource);
}
