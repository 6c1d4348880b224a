//! The arrows between the workspace's crates, as ARCHITECTURE.md draws them, checked against
//! the manifests (`cargo metadata`): a dependency that is not allowed here fails this test,
//! so the picture cannot drift. Only normal (run-time) dependencies count; tests may use
//! anything.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Which workspace crates each crate may depend on at run time.
const ALLOWED: &[(&str, &[&str])] = &[
    // The protocol library and the contract depend on nothing of ours.
    ("wechat-pay", &[]),
    ("proto", &[]),
    // Shared run-time pieces: neither knows WeChat, services or each other.
    ("service-runtime", &[]),
    ("messaging", &[]),
    // WeChat's stand-in speaks only the protocol library: no service plumbing in it.
    ("wechatpay-sim", &["wechat-pay"]),
    // No service depends on another service: they meet over gRPC and RabbitMQ only.
    (
        "pay-gateway-svc",
        &["proto", "service-runtime", "wechat-pay"],
    ),
    (
        "notify-svc",
        &["proto", "service-runtime", "wechat-pay", "messaging"],
    ),
    (
        "order-svc",
        &["proto", "service-runtime", "wechat-pay", "messaging"],
    ),
    // The CLI runs the services as processes; it links none of them.
    ("minipay", &["service-runtime", "messaging", "proto"]),
    // Shared by tests only (a dev-dependency everywhere it is used).
    ("test-support", &["messaging"]),
    // The fuzz targets' checks (fuzz/ and its corpus replay in cargo test): they drive the
    // parsers of the protocol library and of order-svc. Never deployed, used by no crate.
    ("fuzz-checks", &["wechat-pay", "order-svc"]),
];

/// Crates that link a service only to test it: never deployed, and no crate depends on them.
const TEST_ONLY: &[&str] = &["fuzz-checks"];

fn workspace_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let members: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|name| members.contains(name))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn every_crate_depends_only_on_what_the_architecture_allows() {
    let actual = workspace_dependencies();
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(name, deps)| (*name, deps.iter().copied().collect()))
        .collect();
    for (name, deps) in &actual {
        let Some(ok) = allowed.get(name.as_str()) else {
            panic!(
                "{name} is not in ALLOWED: add it, with the crates it may use, and to ARCHITECTURE.md"
            );
        };
        let extra: Vec<&String> = deps.iter().filter(|d| !ok.contains(d.as_str())).collect();
        assert!(
            extra.is_empty(),
            "{name} depends on {extra:?}, which ARCHITECTURE.md does not allow"
        );
    }
    assert_eq!(
        actual.len(),
        allowed.len(),
        "ALLOWED names a crate that is not in the workspace"
    );
}

#[test]
fn no_service_is_used_by_another_crate_at_run_time() {
    let actual = workspace_dependencies();
    for service in [
        "order-svc",
        "pay-gateway-svc",
        "notify-svc",
        "wechatpay-sim",
    ] {
        let users: Vec<&String> = actual
            .iter()
            .filter(|(name, deps)| deps.contains(service) && !TEST_ONLY.contains(&name.as_str()))
            .map(|(name, _)| name)
            .collect();
        assert!(users.is_empty(), "{service} is linked by {users:?}");
    }
}
