//! Login rate limits against the running service: per client address (the peer, or the last
//! hop of `X-Forwarded-For` behind a trusted proxy) and per code prefix; a refused login
//! answers 429 `rate_limited` with `Retry-After` and never reaches WeChat.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::SecretString;
use support::*;
use test_support::Answer;
use wechat_pay::example;
use wechat_pay::login::LoginClient;

/// A stack allowing two logins per minute per client address and per code prefix.
async fn two_per_minute(trusted_proxy: bool) -> Stack {
    stack_with(Options {
        login_rate_per_minute: "2",
        trusted_proxy,
        ..Options::default()
    })
    .await
}

/// A login with a simulator code (`test-<user>.1`), from `forwarded_for` if given.
async fn login(s: &Stack, user: &str, forwarded_for: Option<&str>) -> Answer {
    let body = format!(r#"{{"code":"test-{user}.1"}}"#);
    let headers: Vec<(&str, &str)> = forwarded_for
        .map(|v| ("X-Forwarded-For", v))
        .into_iter()
        .collect();
    s.api
        .call(
            reqwest::Method::POST,
            "/api/v1/sessions",
            None,
            Some(&body),
            &headers,
        )
        .await
}

fn assert_rate_limited(a: &Answer) {
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "{}",
        a.body
    );
    let retry_after: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
}

#[tokio::test]
async fn logins_beyond_the_limit_from_one_address_get_429_with_retry_after() {
    let s = two_per_minute(false).await;
    // Distinct code prefixes (`test-aa1`, `test-bb1`, `test-cc1`): only the address counts.
    for user in ["aa1", "bb1"] {
        assert_eq!(login(&s, user, None).await.status, StatusCode::CREATED);
    }
    let refused = login(&s, "cc1", None).await;
    assert_rate_limited(&refused);
    // Refused before the outbound call: the code is still unused at WeChat (the simulator
    // answers 40163 for a code it has seen).
    let wechat = LoginClient::new(
        s.sim.base_url().parse().unwrap(),
        example::APPID,
        SecretString::from(example::APP_SECRET.to_owned()),
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(wechat.code2session("test-cc1.1").await.is_ok());
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_without_a_trusted_proxy() {
    let s = two_per_minute(false).await;
    for (user, claimed) in [("aa2", "10.0.0.1"), ("bb2", "10.0.0.2")] {
        assert_eq!(
            login(&s, user, Some(claimed)).await.status,
            StatusCode::CREATED
        );
    }
    assert_rate_limited(&login(&s, "cc2", Some("10.0.0.3")).await);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_last_forwarded_hop_is_the_client() {
    let s = two_per_minute(true).await;
    // What the client claims (the first entries) does not matter; the hop our proxy appended does.
    for (user, chain) in [("aa3", "1.1.1.1, 10.0.0.1"), ("bb3", "2.2.2.2, 10.0.0.1")] {
        assert_eq!(
            login(&s, user, Some(chain)).await.status,
            StatusCode::CREATED
        );
    }
    assert_rate_limited(&login(&s, "cc3", Some("10.0.0.2, 10.0.0.1")).await);
    let other_client = login(&s, "dd3", Some("10.0.0.1, 10.0.0.2")).await;
    assert_eq!(
        other_client.status,
        StatusCode::CREATED,
        "{}",
        other_client.body
    );
}

#[tokio::test]
async fn logins_with_codes_that_begin_alike_are_limited_across_addresses() {
    let s = two_per_minute(true).await;
    // `test-pfxa.1`, `test-pfxb.1`, `test-pfxc.1` share their first 8 characters.
    for (user, client) in [("pfxa", "10.0.1.1"), ("pfxb", "10.0.1.2")] {
        assert_eq!(
            login(&s, user, Some(client)).await.status,
            StatusCode::CREATED
        );
    }
    assert_rate_limited(&login(&s, "pfxc", Some("10.0.1.3")).await);
}
