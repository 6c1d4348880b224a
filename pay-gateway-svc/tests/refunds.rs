//! Refunds through pay-gateway-svc: mutual TLS with the merchant certificate against the
//! simulator serving HTTPS (a CA and certificates made at run time), the refund query, and
//! the start-up checks of the certificate.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::path::PathBuf;

use pay_gateway_svc::{Application, Settings};
use proto::paygateway::v1 as pb;
use service_runtime::settings::{MapEnv, SettingsError};
use support::{TOKEN, client, reason};
use test_support::{Pem, TestCa};
use tonic::Code;
use wechat_pay::v2::{self, ApiKey, Client, ClientConfig, Merchant, SignType, TradeType};
use wechat_pay::{Fen, OutTradeNo};
use wechatpay_sim::{RunningSim, SimConfig, SimTls};

/// PEM files written for one test, removed when it ends.
struct Files(Vec<PathBuf>);

impl Files {
    fn write(&mut self, name: &str, text: &str) -> String {
        let path = std::env::temp_dir().join(format!(
            "minipay-pgw-{}-{}-{name}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::write(&path, text).unwrap();
        self.0.push(path.clone());
        path.display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// WeChat over HTTPS: the server CA, the CA of merchant certificates, the simulator.
struct TlsWeChat {
    server_ca: TestCa,
    merchant_ca: TestCa,
    sim: RunningSim,
}

async fn tls_wechat() -> TlsWeChat {
    let (server_ca, merchant_ca) = (TestCa::new("WeChat server CA"), TestCa::new("merchant CA"));
    let pem = server_ca.server();
    let tls = SimTls::from_pem(
        pem.cert.as_bytes(),
        pem.key.as_bytes(),
        merchant_ca.cert_pem().as_bytes(),
    )
    .unwrap();
    let sim = wechatpay_sim::spawn(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        time_scale: 0.001,
        tls: Some(tls),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    TlsWeChat {
        server_ca,
        merchant_ca,
        sim,
    }
}

fn env(sim: &RunningSim, files: &mut Files, ca: Option<&TestCa>, cert: Option<&Pem>) -> MapEnv {
    let base = sim.base_url();
    let mut env = MapEnv::from_pairs([
        ("WECHAT_MODE", "simulator"),
        ("PAY_GATEWAY_GRPC_ADDR", "127.0.0.1:0"),
        ("PAY_GATEWAY_OPS_ADDR", "127.0.0.1:0"),
        ("WECHAT_PAY_BASE_URL", base.as_str()),
        ("WECHAT_RETRY_ATTEMPTS", "1"),
        ("GRPC_TOKEN", TOKEN),
    ]);
    if let Some(ca) = ca {
        let path = files.write("ca.pem", &ca.cert_pem());
        env.0.insert("WECHAT_CA_FILE".into(), path);
    }
    if let Some(cert) = cert {
        let c = files.write("apiclient_cert.pem", &cert.cert);
        let k = files.write("apiclient_key.pem", &cert.key);
        env.0.insert("WECHAT_CERT_FILE".into(), c);
        env.0.insert("WECHAT_KEY_FILE".into(), k);
    }
    env
}

async fn gateway(env: &MapEnv) -> support::Client {
    let app = Application::build(Settings::from_source(env).unwrap())
        .await
        .unwrap();
    let grpc = app.grpc_addr();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    client(grpc, Some(TOKEN)).await
}

/// A NATIVE order of `fen` placed at the simulator (over TLS, no certificate needed) and paid.
async fn paid_order(wechat: &TlsWeChat, number: &str, fen: u64) {
    let mut config = ClientConfig::new(wechat.sim.base_url().parse().unwrap());
    config.extra_roots =
        vec![reqwest::Certificate::from_pem(wechat.server_ca.cert_pem().as_bytes()).unwrap()];
    let merchant = Merchant {
        appid: wechatpay_sim::DEFAULT_APPID.into(),
        mch_id: wechatpay_sim::DEFAULT_MCH_ID.into(),
        key: ApiKey::new(wechatpay_sim::DEFAULT_API_KEY).unwrap(),
        sign_type: SignType::HmacSha256,
    };
    let mut order = v2::UnifiedOrderRequest::jsapi(
        OutTradeNo::parse(number).unwrap(),
        "Minipay-Tea",
        Fen::new(fen).unwrap(),
        "unused",
        "http://127.0.0.1:9/wechat/pay/notify",
        "127.0.0.1",
    );
    order.trade_type = TradeType::Native;
    order.openid = None;
    order.product_id = Some("TEA".into());
    Client::new(merchant, config)
        .unwrap()
        .unified_order(&order)
        .await
        .unwrap();
    let key = wechat.sim.sim().find(number, None).unwrap();
    wechat
        .sim
        .sim()
        .pay(&key, wechatpay_sim::PayResult::Success)
        .unwrap();
}

fn refund(number: &str, refund_no: &str, total: i64, fen: i64) -> pb::RefundRequest {
    pb::RefundRequest {
        out_trade_no: number.into(),
        out_refund_no: refund_no.into(),
        total_fen: total,
        refund_fen: fen,
        reason: "破损".into(),
    }
}

#[tokio::test]
async fn a_refund_goes_over_mutual_tls_and_its_state_is_queried() {
    let wechat = tls_wechat().await;
    let mut files = Files(Vec::new());
    let cert = wechat.merchant_ca.client(wechatpay_sim::DEFAULT_MCH_ID);
    let mut gw = gateway(&env(
        &wechat.sim,
        &mut files,
        Some(&wechat.server_ca),
        Some(&cert),
    ))
    .await;
    paid_order(&wechat, "MPREFUND000001", 1999).await;

    let accepted = gw
        .refund(refund("MPREFUND000001", "RF-pgw-1", 1999, 500))
        .await
        .unwrap()
        .into_inner();
    assert!(!accepted.refund_id.is_empty());
    assert_eq!(accepted.refund_fen, 500);
    // A retry with the same number is the same refund.
    let again = gw
        .refund(refund("MPREFUND000001", "RF-pgw-1", 1999, 500))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.refund_id, accepted.refund_id);

    let query = pb::QueryRefundRequest {
        out_refund_no: "RF-pgw-1".into(),
    };
    let state = gw.query_refund(query.clone()).await.unwrap().into_inner();
    assert_eq!(state.state(), pb::RefundState::Processing);
    assert_eq!(state.out_trade_no, "MPREFUND000001");
    let key = wechat.sim.sim().find_refund("RF-pgw-1", None).unwrap();
    wechat
        .sim
        .sim()
        .settle_refund(&key, "RF-pgw-1", v2::RefundStatus::Success)
        .unwrap();
    let state = gw.query_refund(query).await.unwrap().into_inner();
    assert_eq!(state.state(), pb::RefundState::Success);
    assert!(!state.succeeded_at.is_empty());

    // More than what is left: WeChat refuses, the caller sees why.
    let e = gw
        .refund(refund("MPREFUND000001", "RF-pgw-2", 1999, 1500))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (Code::FailedPrecondition, "ERROR")
    );
    let e = gw
        .query_refund(pb::QueryRefundRequest {
            out_refund_no: "RF-nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (Code::NotFound, "REFUND_NOT_EXIST")
    );
    let e = gw
        .refund(refund("MPREFUND000001", "RF-pgw-3", 1999, 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn without_a_certificate_refunds_are_disabled_and_one_from_another_ca_is_refused() {
    let wechat = tls_wechat().await;
    let mut files = Files(Vec::new());
    paid_order(&wechat, "MPREFUND000002", 800).await;
    let mut plain = gateway(&env(&wechat.sim, &mut files, Some(&wechat.server_ca), None)).await;
    let e = plain
        .refund(refund("MPREFUND000002", "RF-pgw-4", 800, 800))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (Code::FailedPrecondition, "REFUNDS_DISABLED")
    );
    let rogue = TestCa::new("someone else").client(wechatpay_sim::DEFAULT_MCH_ID);
    let mut forged = gateway(&env(
        &wechat.sim,
        &mut files,
        Some(&wechat.server_ca),
        Some(&rogue),
    ))
    .await;
    let e = forged
        .refund(refund("MPREFUND000002", "RF-pgw-5", 800, 800))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    let key = wechat.sim.sim().find("MPREFUND000002", None).unwrap();
    assert!(wechat.sim.sim().view(&key).unwrap().refunds.is_empty());
}

#[tokio::test]
async fn a_missing_unreadable_or_mismatched_certificate_stops_the_start() {
    let wechat = tls_wechat().await;
    let mut files = Files(Vec::new());
    let cert = wechat.merchant_ca.client(wechatpay_sim::DEFAULT_MCH_ID);
    let other = wechat.merchant_ca.client("someone");

    let mut only_cert = env(&wechat.sim, &mut files, None, Some(&cert));
    only_cert.0.remove("WECHAT_KEY_FILE");
    assert_eq!(
        Settings::from_source(&only_cert).unwrap_err(),
        SettingsError::Missing {
            name: "WECHAT_KEY_FILE".into()
        }
    );

    let mut asked_without = env(&wechat.sim, &mut files, None, None);
    asked_without.0.insert("WECHAT_REFUNDS".into(), "on".into());
    assert_eq!(
        Settings::from_source(&asked_without).unwrap_err(),
        SettingsError::Missing {
            name: "WECHAT_CERT_FILE".into()
        }
    );

    let mut mismatched = env(&wechat.sim, &mut files, None, Some(&cert));
    let wrong_key = files.write("other_key.pem", &other.key);
    mismatched.0.insert("WECHAT_KEY_FILE".into(), wrong_key);
    let e = Settings::from_source(&mismatched).unwrap_err();
    assert!(
        matches!(&e, SettingsError::Invalid { name, .. } if name == "WECHAT_KEY_FILE"),
        "{e:?}"
    );
    assert!(!e.to_string().contains("PRIVATE KEY"), "{e}");

    let mut missing = env(&wechat.sim, &mut files, None, Some(&cert));
    missing.0.insert(
        "WECHAT_CERT_FILE".into(),
        "/nonexistent/apiclient_cert.pem".into(),
    );
    let e = Settings::from_source(&missing).unwrap_err();
    assert!(
        matches!(&e, SettingsError::Invalid { name, .. } if name == "WECHAT_CERT_FILE"),
        "{e:?}"
    );

    let mut not_pem = env(&wechat.sim, &mut files, None, Some(&cert));
    let garbage = files.write("garbage.pem", "not a certificate");
    not_pem.0.insert("WECHAT_CERT_FILE".into(), garbage);
    assert!(Settings::from_source(&not_pem).is_err());
}
