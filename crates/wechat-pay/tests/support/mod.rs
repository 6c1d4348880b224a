//! A scripted WeChat peer over real HTTP on loopback, for the client's retry, timeout and
//! verification paths (the simulator covers WeChat's behaviour; this covers failures in
//! exact order).

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use wechat_pay::v2::{self, ApiKey, Params, SignType, xml};

pub const APPID: &str = "wxd930ea5d5a258f4f";
pub const MCH_ID: &str = "10000100";
pub const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

pub fn key() -> ApiKey {
    ApiKey::new(KEY).expect("valid test key")
}

/// What the peer does with one request.
#[derive(Debug, Clone)]
pub enum Step {
    /// Signed success with these business fields.
    Ok(Vec<(&'static str, &'static str)>),
    /// Signed `result_code=FAIL` with this `err_code`.
    Business(&'static str),
    /// `return_code=FAIL`, unsigned.
    ReturnFail(&'static str),
    /// This HTTP status, empty body.
    Status(u16),
    /// Never answer: the client's timeout is what ends the call.
    Hang,
    /// A success whose signature is wrong.
    BadSign,
    /// A success with no signature at all.
    Unsigned,
    /// A success signed for another merchant.
    OtherMerchant,
    /// This raw body.
    Raw(String),
}

#[derive(Clone, Default)]
pub struct Peer {
    script: Arc<Mutex<VecDeque<Step>>>,
    /// Every request received, after its signature was checked.
    pub requests: Arc<Mutex<Vec<Params>>>,
}

impl Peer {
    pub fn new(steps: Vec<Step>) -> Self {
        Peer {
            script: Arc::new(Mutex::new(steps.into())),
            requests: Arc::default(),
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }

    pub fn request(&self, i: usize) -> Params {
        self.requests.lock().expect("lock")[i].clone()
    }
}

pub async fn spawn(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    addr
}

pub async fn spawn_peer(peer: Peer) -> SocketAddr {
    let router = Router::new().fallback(post(answer)).with_state(peer);
    spawn(router).await
}

fn signed(mut fields: Params, sign_type: SignType) -> String {
    v2::sign_params(&mut fields, &key(), sign_type);
    xml::encode(&fields).expect("encodable")
}

fn envelope(extra: &[(&str, &str)]) -> Params {
    let mut p: Params = [
        ("return_code", "SUCCESS"),
        ("return_msg", "OK"),
        ("appid", APPID),
        ("mch_id", MCH_ID),
        ("nonce_str", "peerNonce123"),
        ("result_code", "SUCCESS"),
    ]
    .into_iter()
    .collect();
    for (k, v) in extra {
        p.insert(*k, *v);
    }
    p
}

async fn answer(State(peer): State<Peer>, body: Bytes) -> Response {
    let request = match xml::decode(&body) {
        Ok(p) => p,
        Err(e) => return (StatusCode::OK, v2::ack_failure(&e.to_string())).into_response(),
    };
    let sign_type = SignType::of_message(&request).unwrap_or_default();
    if v2::verify(&request, &key(), sign_type).is_err() {
        return (StatusCode::OK, v2::ack_failure("签名错误")).into_response();
    }
    peer.requests.lock().expect("lock").push(request);
    let step = peer
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(Step::Ok(vec![]));
    let body = match step {
        Step::Ok(fields) => signed(envelope(&fields), sign_type),
        Step::Business(code) => signed(
            envelope(&[
                ("result_code", "FAIL"),
                ("err_code", code),
                ("err_code_des", "scripted"),
            ]),
            sign_type,
        ),
        Step::ReturnFail(msg) => {
            let p: Params = [("return_code", "FAIL"), ("return_msg", msg)]
                .into_iter()
                .collect();
            xml::encode(&p).expect("encodable")
        }
        Step::Status(code) => {
            return StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        Step::Hang => std::future::pending().await,
        Step::BadSign => {
            let mut p = envelope(&[("prepay_id", "wx1")]);
            v2::sign_params(&mut p, &key(), sign_type);
            p.insert("prepay_id", "wx2");
            xml::encode(&p).expect("encodable")
        }
        Step::Unsigned => xml::encode(&envelope(&[])).expect("encodable"),
        Step::OtherMerchant => {
            let mut p = envelope(&[("trade_type", "JSAPI"), ("prepay_id", "wx1")]);
            p.insert("mch_id", "99999999");
            signed(p, sign_type)
        }
        Step::Raw(s) => s,
    };
    (StatusCode::OK, body).into_response()
}
