//! An existing v3 SDK, unchanged, against the simulator: PyPI's `wechatpayv3` in public-key
//! mode (installed outside the clone by `scripts/install-wechatpayv3.sh`) runs a purchase, its
//! notifications, a refund and a close (`tests/sdk/wechatpayv3_flow.py`), verifying every
//! answer and notification with its own code.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::process::Command;

use wechat_pay::v3;

/// The SDK's Python, installed once outside the clone.
fn python() -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/install-wechatpayv3.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script} ({e}); it installs wechatpayv3 from PyPI"));
    assert!(
        out.status.success(),
        "{script} failed to install wechatpayv3 (needs python3 and PyPI): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_pypi_wechatpayv3_sdk_works_against_the_simulator_unchanged() {
    let python = python();
    let sim = support::sim_with(|c| c.time_scale = 0.01).await;
    let dir = std::env::temp_dir().join(format!("minipay-sdk-v3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let merchant_key = dir.join("apiclient_key.pem");
    let wechat_public_key = dir.join("pub_key.pem");
    std::fs::write(&merchant_key, v3::EXAMPLE_MERCHANT_KEY_PEM).unwrap();
    std::fs::write(&wechat_public_key, v3::EXAMPLE_WECHAT_PUBLIC_KEY_PEM).unwrap();
    let flow = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/wechatpayv3_flow.py");
    let mut command = Command::new(&python);
    command
        .arg(flow)
        .env("SIM_URL", sim.base_url())
        .env("MERCHANT_KEY", &merchant_key)
        .env("MERCHANT_SERIAL", v3::EXAMPLE_MERCHANT_SERIAL)
        .env("API_V3_KEY", v3::EXAMPLE_API_V3_KEY)
        .env("WECHAT_PUBLIC_KEY", &wechat_public_key)
        .env("WECHAT_PUBLIC_KEY_ID", v3::EXAMPLE_WECHAT_PUBLIC_KEY_ID)
        .env("APP_SECRET", wechatpay_sim::DEFAULT_APP_SECRET)
        .env("RUN_ID", std::process::id().to_string());
    // The simulator runs on this test's runtime: wait for Python off it.
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SDK flow failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["refund"], "SUCCESS");
    assert_eq!(seen["transaction_id"].as_str().unwrap().len(), 28);
}
