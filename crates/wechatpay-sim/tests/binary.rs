//! The `wechatpay-sim` binary's fixed interface: `--listen`, the merchants it prints at
//! start, `--help`, refusal of bad flags, and shutdown on SIGTERM.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_wechatpay-sim");

#[tokio::test]
async fn starts_prints_its_merchant_serves_and_stops_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--time-scale", "0.001"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .strip_prefix("wechatpay-sim listening on ")
        .unwrap()
        .to_owned();
    let merchant = lines.next().unwrap().unwrap();
    assert!(
        merchant.contains("appid=wxd930ea5d5a258f4f") && merchant.contains("mch_id=10000100"),
        "{merchant}"
    );
    assert!(merchant.contains("api_key=192006250b4c09247ec02edce69f6a2d"));
    assert!(merchant.contains("app_secret=0123456789abcdef0123456789abcdef"));

    let health = reqwest::get(format!("{base}/sim/v1/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let login = reqwest::get(format!(
        "{base}/sns/jscode2session?appid=wxd930ea5d5a258f4f&secret=0123456789abcdef0123456789abcdef&js_code=test-alice&grant_type=authorization_code"
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(login.contains("openid"), "{login}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "exit status {exit:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    panic!("wechatpay-sim did not stop within 5 s of SIGTERM");
}

#[test]
fn help_and_bad_flags() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--auto-pay-after"));
    let bad = Command::new(BIN).arg("--no-such-flag").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--no-such-flag"));
    let bad_env = Command::new(BIN)
        .env("SIM_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(bad_env.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_env.stderr).contains("SIM_LISTEN"));
}
