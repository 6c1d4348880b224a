//! `jscode2session` against a scripted WeChat login endpoint over real HTTP.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use secrecy::SecretString;
use support::spawn;
use wechat_pay::RetryPolicy;
use wechat_pay::login::{LoginClient, LoginError};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[derive(serde::Deserialize)]
struct Q {
    appid: String,
    secret: String,
    js_code: String,
    grant_type: String,
}

async fn jscode2session(Query(q): Query<Q>) -> (axum::http::StatusCode, String) {
    if q.appid != "wxd930ea5d5a258f4f" || q.secret != SECRET || q.grant_type != "authorization_code"
    {
        return (
            axum::http::StatusCode::OK,
            r#"{"errcode":40125,"errmsg":"invalid appsecret"}"#.into(),
        );
    }
    let body = match q.js_code.as_str() {
        "good" => r#"{"openid":"oUser1","session_key":"c2Vzc2lvbg=="}"#.to_string(),
        "good-zero" => {
            r#"{"openid":"oUser2","session_key":"k","unionid":"uU","errcode":0,"errmsg":"ok"}"#
                .into()
        }
        "used" => r#"{"errcode":40163,"errmsg":"code been used"}"#.into(),
        "busy" => r#"{"errcode":-1,"errmsg":"system error"}"#.into(),
        "limited" => r#"{"errcode":45011,"errmsg":"api minute-quota reach limit"}"#.into(),
        "risky" => r#"{"errcode":40226,"errmsg":"risky user"}"#.into(),
        "odd" => r#"{"errcode":12345,"errmsg":"new error"}"#.into(),
        "garbage" => "<html>oops</html>".into(),
        "no-openid" => r#"{"session_key":"k"}"#.into(),
        "http500" => return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new()),
        // Never answers: the client's timeout ends the call.
        "slow" => std::future::pending().await,
        _ => r#"{"errcode":40029,"errmsg":"invalid code"}"#.into(),
    };
    (axum::http::StatusCode::OK, body)
}

async fn client(secret: &str) -> LoginClient {
    let addr = spawn(Router::new().route("/sns/jscode2session", get(jscode2session))).await;
    LoginClient::new(
        format!("http://{addr}").parse().unwrap(),
        "wxd930ea5d5a258f4f",
        SecretString::from(secret.to_owned()),
        Duration::from_millis(1000),
    )
    .unwrap()
}

#[tokio::test]
async fn successful_logins() {
    let c = client(SECRET).await;
    let s = c.code2session("good").await.unwrap();
    assert_eq!(s.openid, "oUser1");
    assert_eq!(s.session_key.expose(), "c2Vzc2lvbg==");
    assert_eq!(s.unionid, None);
    assert!(
        !format!("{s:?}").contains("c2Vzc2lvbg=="),
        "session_key must not appear in Debug"
    );
    let s = c.code2session("good-zero").await.unwrap();
    assert_eq!(s.unionid.as_deref(), Some("uU"));
}

#[tokio::test]
async fn errcodes_map_to_typed_errors() {
    let c = client(SECRET).await;
    assert!(matches!(
        c.code2session("bad").await,
        Err(LoginError::InvalidCode)
    ));
    assert!(matches!(
        c.code2session("used").await,
        Err(LoginError::CodeUsed)
    ));
    assert!(matches!(
        c.code2session("limited").await,
        Err(LoginError::RateLimited)
    ));
    assert!(matches!(
        c.code2session("risky").await,
        Err(LoginError::HighRiskUser)
    ));
    assert!(matches!(
        c.code2session("odd").await,
        Err(LoginError::Other { errcode: 12345, .. })
    ));
    assert!(matches!(
        c.code2session("garbage").await,
        Err(LoginError::InvalidResponse)
    ));
    assert!(matches!(
        c.code2session("no-openid").await,
        Err(LoginError::InvalidResponse)
    ));
    let busy = c.code2session("busy").await.unwrap_err();
    assert!(matches!(busy, LoginError::Busy) && busy.is_retryable());
    let e500 = c.code2session("http500").await.unwrap_err();
    assert!(matches!(e500, LoginError::HttpStatus { status: 500 }) && e500.is_retryable());
    assert!(matches!(
        c.code2session("slow").await,
        Err(LoginError::Transport(_))
    ));
    // Malformed codes are refused before anything is sent.
    for bad in ["", "with space", &"x".repeat(129)] {
        assert!(
            matches!(c.code2session(bad).await, Err(LoginError::InvalidCode)),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn wrong_secret_is_a_configuration_error_and_no_error_shows_the_secret() {
    let c = client("ffffffffffffffffffffffffffffffff").await;
    let err = c.code2session("good").await.unwrap_err();
    assert!(matches!(
        err,
        LoginError::InvalidCredentials { errcode: 40125 }
    ));
    assert!(!format!("{c:?}").contains("ffffffff"));

    // A transport error must not carry the URL (it holds the secret).
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dead = LoginClient::new(
        format!("http://{addr}").parse().unwrap(),
        "wxd930ea5d5a258f4f",
        SecretString::from(SECRET.to_owned()),
        Duration::from_millis(1000),
    )
    .unwrap();
    let err = dead.code2session("good").await.unwrap_err();
    let shown = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
    assert!(!shown.contains(SECRET), "secret leaked: {shown}");
    assert!(err.is_retryable());
}

/// A login endpoint that answers every call with `body` and counts the calls.
async fn counting_client(body: &'static str, calls: Arc<AtomicUsize>) -> LoginClient {
    let answer = move || {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            body
        }
    };
    let addr = spawn(Router::new().route("/sns/jscode2session", get(answer))).await;
    LoginClient::new(
        format!("http://{addr}").parse().unwrap(),
        "wxd930ea5d5a258f4f",
        SecretString::from(SECRET.to_owned()),
        Duration::from_millis(1000),
    )
    .unwrap()
    .with_retry(RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        deadline: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn wechats_rate_limit_answer_is_never_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = counting_client(
        r#"{"errcode":45011,"errmsg":"api minute-quota reach limit"}"#,
        Arc::clone(&calls),
    )
    .await;
    let err = c.code2session("limited").await.unwrap_err();
    assert!(matches!(err, LoginError::RateLimited) && !err.is_retryable());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "45011 was sent again");

    // The same policy does retry a busy answer: the count above is the policy's doing.
    let busy_calls = Arc::new(AtomicUsize::new(0));
    let busy = counting_client(
        r#"{"errcode":-1,"errmsg":"system error"}"#,
        Arc::clone(&busy_calls),
    )
    .await;
    assert!(matches!(
        busy.code2session("busy").await,
        Err(LoginError::Busy)
    ));
    assert_eq!(busy_calls.load(Ordering::SeqCst), 3);
}
