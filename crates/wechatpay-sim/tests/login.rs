//! `jscode2session` against the simulator, through the protocol library's login client.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use secrecy::SecretString;
use support::*;
use wechat_pay::login::{LoginClient, LoginError};

#[tokio::test]
async fn test_codes_log_in_stable_users_once_each() {
    let sim = sim().await;
    let login = login_client(&sim);
    let a1 = login.code2session("test-alice").await.unwrap();
    let a2 = login.code2session("test-alice.again").await.unwrap();
    let b = login.code2session("test-bob").await.unwrap();
    assert_eq!(a1.openid, a2.openid);
    assert_ne!(a1.openid, b.openid);
    assert_eq!(
        a1.openid,
        wechatpay_sim::openid_for(wechatpay_sim::DEFAULT_APPID, "alice")
    );
    assert!(matches!(
        login.code2session("test-alice").await,
        Err(LoginError::CodeUsed)
    ));
    assert!(matches!(
        login.code2session("garbage").await,
        Err(LoginError::InvalidCode)
    ));
    assert!(matches!(
        login.code2session("test-").await,
        Err(LoginError::InvalidCode)
    ));
}

async fn issue(sim: &wechatpay_sim::RunningSim, name: &str) -> serde_json::Value {
    let (status, v) = control(
        sim,
        reqwest::Method::POST,
        "/sim/v1/login-codes",
        Some(serde_json::json!({ "name": name })),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    v
}

#[tokio::test]
async fn issued_codes_are_single_use_and_expire() {
    let sim = sim_with(|c| c.time_scale = 1.0).await; // codes live 5 minutes
    let [first, second, third] = [
        issue(&sim, "carol").await,
        issue(&sim, "carol").await,
        issue(&sim, "carol").await,
    ]
    .map(|v| v["code"].as_str().unwrap().to_owned());
    let login = login_client(&sim);
    let s = login.code2session(&first).await.unwrap();
    assert_eq!(
        s.openid,
        wechatpay_sim::openid_for(wechatpay_sim::DEFAULT_APPID, "carol")
    );
    assert!(
        matches!(login.code2session(&first).await, Err(LoginError::CodeUsed)),
        "an issued code is single use"
    );
    // The simulator's clock, not the test, moves through the lifetime.
    let clock = sim.sim();
    clock.advance_clock(wechatpay_sim::CODE_TTL - Duration::from_secs(1));
    login.code2session(&second).await.unwrap();
    clock.advance_clock(Duration::from_secs(2));
    assert!(matches!(
        login.code2session(&third).await,
        Err(LoginError::InvalidCode)
    ));
    let (status, _) = control(
        &sim,
        reqwest::Method::POST,
        "/sim/v1/login-codes",
        Some(serde_json::json!({"name": "bad name"})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_code_lifetime_follows_the_time_scale() {
    let sim = sim_with(|c| c.time_scale = 0.005).await;
    let v = issue(&sim, "dora").await;
    assert_eq!(v["expires_in_ms"], 1500);
    sim.sim().advance_clock(Duration::from_millis(1501));
    assert!(matches!(
        login_client(&sim)
            .code2session(v["code"].as_str().unwrap())
            .await,
        Err(LoginError::InvalidCode)
    ));
}

#[tokio::test]
async fn credentials_and_rate_limit() {
    let sim = sim().await;
    let wrong_secret = LoginClient::new(
        sim.base_url().parse().unwrap(),
        wechatpay_sim::DEFAULT_APPID,
        SecretString::from("ffffffffffffffffffffffffffffffff".to_owned()),
        Duration::from_secs(2),
    )
    .unwrap();
    assert!(matches!(
        wrong_secret.code2session("test-x").await,
        Err(LoginError::InvalidCredentials { errcode: 40125 })
    ));
    let wrong_app = LoginClient::new(
        sim.base_url().parse().unwrap(),
        "wx0000000000000000",
        SecretString::from("s".to_owned()),
        Duration::from_secs(2),
    )
    .unwrap();
    assert!(matches!(
        wrong_app.code2session("test-x").await,
        Err(LoginError::InvalidCredentials { errcode: 40013 })
    ));

    let login = login_client(&sim);
    for i in 0..wechatpay_sim::LOGINS_PER_MINUTE {
        login.code2session(&format!("test-busy.{i}")).await.unwrap();
    }
    let limited = login.code2session("test-busy.last").await.unwrap_err();
    assert!(matches!(limited, LoginError::RateLimited) && !limited.is_retryable());
}
