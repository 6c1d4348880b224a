//! `minipay reconcile` against a stack started as `minipay up` starts it: a day that matches
//! (exit 0), then one with a payment left off WeChat's bill (exit 1, the difference in the
//! table), and a malformed day refused before anything is asked.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::{Command, Output};

use minipay::process::LogSink;
use minipay::purchase::Shop;
use serde_json::json;

mod support;

fn reconcile(args: &[&str], token: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minipay"))
        .arg("reconcile")
        .args(args)
        .env("MINIPAY_ADMIN_TOKEN", token)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn a_day_is_reconciled_from_the_command_line() {
    let (config, _cleanup) = support::isolated("rc", LogSink::keep()).await;
    let token = config.admin_token.clone();
    let stack = support::start(config).await;
    let shop = Shop::new(stack.order_url(), stack.sim_url());
    let receipt = shop.purchase("rita", &|_, _| {}).await.unwrap();
    let number = receipt.out_trade_no.clone();
    let now = wechat_pay::WeChatTime::now().to_string();
    let day = format!("{}-{}-{}", &now[0..4], &now[4..6], &now[6..8]);
    let api = stack.order_url();

    let matched = reconcile(&["--date", &day, "--api", &api], &token);
    assert_eq!(matched.status.code(), Some(0), "{}", text(&matched));
    let report = text(&matched);
    assert!(
        report.contains(&format!("Reconciliation of {day}: MATCHED")),
        "{report}"
    );
    assert!(report.contains("books: 1 paid orders"), "{report}");

    let adjusted = reqwest::Client::new()
        .post(format!("{}/sim/v1/bill-adjustments", stack.sim_url()))
        .header("content-type", "application/json")
        .body(json!({ "date": day, "action": "drop", "out_trade_no": number }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(adjusted.status(), 201);
    let differs = reconcile(&["--date", &day, "--api", &api], &token);
    assert_eq!(differs.status.code(), Some(1), "{}", text(&differs));
    let report = text(&differs);
    assert!(
        report.contains(&format!("| paid_here_not_on_bill | {number} |  | no |")),
        "{report}"
    );

    let refused = reconcile(&["--date", "2026-13-01", "--api", &api], &token);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("YYYY-MM-DD"), "{}", text(&refused));
    let wrong_token = reconcile(&["--date", &day, "--api", &api], "not-the-token");
    assert_eq!(wrong_token.status.code(), Some(2), "{}", text(&wrong_token));
    assert!(
        text(&wrong_token).contains("unauthenticated"),
        "{}",
        text(&wrong_token)
    );
    stack.stop().await;
}
