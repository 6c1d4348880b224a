//! Helpers: the simulator in-process on port 0, the protocol library's clients pointed at it,
//! a notification receiver over real HTTP, and raw signed calls for exact error checks.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use secrecy::SecretString;
use wechat_pay::login::LoginClient;
use wechat_pay::v2::{
    self, ApiKey, Client, ClientConfig, Merchant, Params, RetryPolicy, SignType, xml,
};
use wechat_pay::{Fen, OutTradeNo};
use wechatpay_sim::{
    DEFAULT_API_KEY, DEFAULT_APP_SECRET, DEFAULT_APPID, DEFAULT_MCH_ID, RunningSim, SimConfig,
};

pub fn key() -> ApiKey {
    ApiKey::new(DEFAULT_API_KEY).unwrap()
}

pub async fn sim_with(f: impl FnOnce(&mut SimConfig)) -> RunningSim {
    let mut config = SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        time_scale: 0.001,
        ..SimConfig::default()
    };
    f(&mut config);
    wechatpay_sim::spawn(config)
        .await
        .expect("simulator starts on a free port")
}

pub async fn sim() -> RunningSim {
    sim_with(|_| {}).await
}

pub fn client(sim: &RunningSim, sign_type: SignType) -> Client {
    client_with_key(sim, sign_type, key(), false)
}

pub fn client_with_key(
    sim: &RunningSim,
    sign_type: SignType,
    key: ApiKey,
    sandbox: bool,
) -> Client {
    let merchant = Merchant {
        appid: DEFAULT_APPID.into(),
        mch_id: DEFAULT_MCH_ID.into(),
        key,
        sign_type,
    };
    let mut config = ClientConfig::new(sim.base_url().parse().unwrap());
    config.sandbox = sandbox;
    config.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        deadline: Duration::from_secs(5),
    };
    Client::new(merchant, config).unwrap()
}

pub fn login_client(sim: &RunningSim) -> LoginClient {
    LoginClient::new(
        sim.base_url().parse().unwrap(),
        DEFAULT_APPID,
        SecretString::from(DEFAULT_APP_SECRET.to_owned()),
        Duration::from_secs(2),
    )
    .unwrap()
}

/// Logs `name` in and returns the openid.
pub async fn login(sim: &RunningSim, name: &str) -> String {
    let code = format!("test-{name}.{}", rand_suffix());
    login_client(sim).code2session(&code).await.unwrap().openid
}

fn rand_suffix() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A fresh out_trade_no.
pub fn number() -> OutTradeNo {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    OutTradeNo::parse(format!("T{}{n:06}", std::process::id())).unwrap()
}

pub fn order(
    out_trade_no: OutTradeNo,
    openid: &str,
    notify_url: &str,
    fen: u64,
) -> v2::UnifiedOrderRequest {
    v2::UnifiedOrderRequest::jsapi(
        out_trade_no,
        "Minipay-Test",
        Fen::new(fen).unwrap(),
        openid,
        notify_url,
        "127.0.0.1",
    )
}

/// Posts raw parameters (completed with the default merchant and signed unless `sign` is
/// false) and returns the decoded answer.
pub async fn raw_call(sim: &RunningSim, path: &str, mut params: Params, sign: bool) -> Params {
    for (k, v) in [
        ("appid", DEFAULT_APPID),
        ("mch_id", DEFAULT_MCH_ID),
        ("nonce_str", "rawNonce0001"),
    ] {
        if !params.contains(k) {
            params.insert(k, v);
        }
    }
    if sign {
        let st = SignType::of_message(&params).unwrap_or_default();
        v2::sign_params(&mut params, &key(), st);
    }
    raw_post(sim, path, xml::encode(&params).unwrap()).await
}

pub async fn raw_post(sim: &RunningSim, path: &str, body: String) -> Params {
    let answer = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "WeChat answers 200 for every outcome");
    xml::decode(&answer.bytes().await.unwrap()).unwrap()
}

pub async fn control(
    sim: &RunningSim,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", sim.base_url()));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let answer = req.send().await.unwrap();
    let status = answer.status().as_u16();
    let bytes = answer.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// `PUT /sim/v1/faults`.
pub async fn put_faults(sim: &RunningSim, faults: serde_json::Value) -> (u16, serde_json::Value) {
    control(sim, reqwest::Method::PUT, "/sim/v1/faults", Some(faults)).await
}

/// `POST /sim/v1/orders/{out_trade_no}/pay`.
pub async fn pay_order(
    sim: &RunningSim,
    out_trade_no: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    control(
        sim,
        reqwest::Method::POST,
        &format!("/sim/v1/orders/{out_trade_no}/pay"),
        body,
    )
    .await
}

pub async fn view(sim: &RunningSim, out_trade_no: &OutTradeNo) -> serde_json::Value {
    let (status, v) = control(
        sim,
        reqwest::Method::GET,
        &format!("/sim/v1/orders/{out_trade_no}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

type ReceiverState = (Arc<Mutex<Vec<Bytes>>>, Arc<AtomicU32>);

/// A notification receiver: fails the first `fail_first` requests with a failure ack, then
/// acknowledges; keeps every body it got.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub bodies: Arc<Mutex<Vec<Bytes>>>,
    fail_first: Arc<AtomicU32>,
}

impl Receiver {
    pub async fn start(fail_first: u32) -> Receiver {
        let bodies: Arc<Mutex<Vec<Bytes>>> = Arc::default();
        let fail = Arc::new(AtomicU32::new(fail_first));
        let state = (Arc::clone(&bodies), Arc::clone(&fail));
        let app = Router::new()
            .route(
                "/notify",
                post(
                    |State((bodies, fail)): State<ReceiverState>, body: Bytes| async move {
                        bodies.lock().unwrap().push(body);
                        let failing = fail
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok();
                        if failing {
                            v2::ack_failure("busy")
                        } else {
                            v2::ACK_SUCCESS.to_owned()
                        }
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            addr,
            bodies,
            fail_first: fail,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/notify", self.addr)
    }

    pub fn count(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }

    pub fn body(&self, i: usize) -> Bytes {
        self.bodies.lock().unwrap()[i].clone()
    }

    /// Waits until at least `n` bodies arrived.
    pub async fn wait_for(&self, n: usize) {
        eventually(format!("{n} notifications at the receiver"), || async {
            (self.count() >= n).then_some(())
        })
        .await
    }
}

/// How long [`eventually`] waits: far beyond what any condition needs on an idle machine, so
/// only a real failure reaches it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `check` until it gives a value, failing the test naming `what` after [`PATIENCE`]
/// (the shared condition wait of `test-support`).
pub async fn eventually<T, F, Fut>(what: impl std::fmt::Display, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    test_support::wait_until(PATIENCE, &what.to_string(), check).await
}

/// The order's view once its notifications have settled: nothing held and no delivery under
/// way or scheduled, so no further attempt will be made.
pub async fn settled(sim: &RunningSim, out_trade_no: &OutTradeNo) -> serde_json::Value {
    eventually(
        format!("order {out_trade_no}'s deliveries to finish"),
        || async {
            let v = view(sim, out_trade_no).await;
            let log = &v["notifications"];
            (log["deliveries_running"] == 0 && log["held"] == false).then_some(v)
        },
    )
    .await
}

/// The attempts in a view.
pub fn attempts_of(view: &serde_json::Value) -> Vec<serde_json::Value> {
    view["notifications"]["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A URL where nothing listens.
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/notify", l.local_addr().unwrap())
}

/// A client that presents a merchant certificate (made here; the simulator over plain HTTP
/// does not ask for one).
pub fn refund_client(sim: &wechatpay_sim::RunningSim) -> Client {
    let merchant = test_support::TestCa::new("merchant CA").client(wechatpay_sim::DEFAULT_MCH_ID);
    client_of(sim, None, Some(&merchant))
}

/// A client of `sim` trusting `server` (a TLS simulator's CA), presenting `identity`, if
/// given; one attempt per call.
pub fn client_of(
    sim: &wechatpay_sim::RunningSim,
    server: Option<&test_support::TestCa>,
    identity: Option<&test_support::Pem>,
) -> Client {
    let mut config = ClientConfig::new(sim.base_url().parse().unwrap());
    config.extra_roots = server
        .map(|ca| reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .into_iter()
        .collect();
    config.identity = identity.map(|p| reqwest::Identity::from_pem(p.bundle().as_bytes()).unwrap());
    config.retry = wechat_pay::RetryPolicy::none();
    let merchant = Merchant {
        appid: wechatpay_sim::DEFAULT_APPID.into(),
        mch_id: wechatpay_sim::DEFAULT_MCH_ID.into(),
        key: key(),
        sign_type: SignType::HmacSha256,
    };
    Client::new(merchant, config).unwrap()
}

/// A unified order of `fen` for `user` (notifications to nowhere), not paid.
pub async fn unpaid_order(sim: &RunningSim, user: &str, fen: u64) -> OutTradeNo {
    let openid = login(sim, user).await;
    let n = number();
    client(sim, SignType::HmacSha256)
        .unified_order(&order(n.clone(), &openid, &dead_url(), fen))
        .await
        .unwrap();
    n
}

/// The same, paid by the user.
pub async fn paid_order(sim: &RunningSim, user: &str, fen: u64) -> OutTradeNo {
    let n = unpaid_order(sim, user, fen).await;
    let (status, v) = pay_order(sim, n.as_str(), None).await;
    assert_eq!(status, 200, "{v}");
    n
}
