//! WeChat's v3 merchant API at WeChat's paths: JSAPI prepay, query by `out_trade_no` and by
//! `transaction_id`, close, refund, refund query and the platform certificates.
//!
//! Like WeChat: every request's `Authorization` is checked (merchant, certificate serial,
//! timestamp within 5 minutes, RSA signature over method, path with query, timestamp, nonce
//! and the exact body) before anything else; every answer, refusals included, is signed with
//! the key the request's `Wechatpay-Serial` names (none: the platform certificate, as SDKs in
//! certificate mode send none; certificate serials compare as numbers); refusals are JSON
//! `{"code", "message"}` with WeChat's HTTP status (§3.6). The business rules are v2's: each
//! call is translated to the v2 fields and served by the same code, so both versions refuse
//! alike.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use wechat_pay::v2::{Params, RefundStatus, SignType, TradeState};
use wechat_pay::v3::{
    self, AUTH_SCHEME, FRESHNESS_SECS, Resource, parse_authorization, response_message,
    serial_number,
};
use wechat_pay::{NonceStr, WeChatTime};

use crate::config::{NotifySigner, SimMerchant};
use crate::merchant_api::{self, Refusal};
use crate::sim::{Sim, lock};
use crate::store::{Order, Refund};

/// A v3 refusal: HTTP status, `code`, `message`.
#[derive(Debug)]
struct V3Refusal {
    status: u16,
    code: &'static str,
    message: String,
}

fn refusal(status: u16, code: &'static str, message: impl Into<String>) -> V3Refusal {
    V3Refusal {
        status,
        code,
        message: message.into(),
    }
}

/// A v2 business refusal as v3 answers it (§3.6: the status class, then the code).
///
/// ⚠ The list says `403 ORDER_CLOSED`; the reference's table (§3.6), which we follow,
/// puts `ORDER_CLOSED` under 400.
fn from_v2((code, des): Refusal) -> V3Refusal {
    let (status, code) = match code {
        "ORDERPAID" => (403, "ORDERPAID"),
        "ORDERCLOSED" => (400, "ORDER_CLOSED"),
        "OUT_TRADE_NO_USED" => (403, "OUT_TRADE_NO_USED"),
        "ORDERNOTEXIST" => (404, "ORDER_NOT_EXIST"),
        "REFUNDNOTEXIST" => (404, "RESOURCE_NOT_EXISTS"),
        "SYSTEMERROR" => (500, "SYSTEM_ERROR"),
        "APPID_MCHID_NOT_MATCH" => (400, "APPID_MCHID_NOT_MATCH"),
        "NOTENOUGH" => (403, "NOT_ENOUGH"),
        "LACK_PARAMS" | "PARAM_ERROR" => (400, "PARAM_ERROR"),
        _ => (400, "INVALID_REQUEST"),
    };
    refusal(status, code, des)
}

/// Takes one `WECHATPAY/SIGNTEST/` probe from the fault, if any is due.
fn take_probe(sim: &Sim) -> bool {
    let mut faults = lock(&sim.faults);
    if faults.sign_test_next > 0 {
        faults.sign_test_next -= 1;
        return true;
    }
    false
}

/// The `Wechatpay-*` headers of `body` signed now by `signer` (`forge`: a signature of
/// another message, for the forged-signature fault; a due probe replaces the signature with
/// a `WECHATPAY/SIGNTEST/` one).
pub(crate) fn signature_headers(
    sim: &Sim,
    signer: NotifySigner,
    body: &[u8],
    forge: bool,
) -> Vec<(&'static str, String)> {
    let v3 = &sim.config.v3;
    let timestamp = v3::unix_now().to_string();
    let nonce = NonceStr::generate().to_string();
    let mut message = response_message(&timestamp, &nonce, body);
    if forge {
        message.extend_from_slice(b"forged");
    }
    let mut signature = v3.wechat_key.sign(&message);
    if take_probe(sim) {
        signature = format!("WECHATPAY/SIGNTEST/{signature}");
    }
    let serial = v3.serial(signer).to_owned();
    vec![
        ("Wechatpay-Timestamp", timestamp),
        ("Wechatpay-Nonce", nonce),
        ("Wechatpay-Signature", signature),
        ("Wechatpay-Serial", serial),
        ("Wechatpay-Signature-Type", AUTH_SCHEME.to_owned()),
    ]
}

/// A signed answer.
fn respond(sim: &Sim, signer: NotifySigner, status: u16, body: Vec<u8>) -> Response {
    let signed = signature_headers(sim, signer, &body, false);
    let json = !body.is_empty();
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    if json {
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
    }
    let request_id = format!("{:032x}", rand::rng().random::<u128>());
    for (name, value) in signed
        .into_iter()
        .chain(std::iter::once(("Request-ID", request_id)))
    {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

fn refuse(sim: &Sim, signer: NotifySigner, r: &V3Refusal) -> Response {
    let body = json!({ "code": r.code, "message": r.message });
    respond(sim, signer, r.status, body.to_string().into_bytes())
}

/// The key the request's `Wechatpay-Serial` asks to be answered with; `None`: a serial the
/// simulator does not have.
fn signer_for(sim: &Sim, headers: &HeaderMap) -> Option<NotifySigner> {
    let v3 = &sim.config.v3;
    match headers.get("Wechatpay-Serial").map(|v| v.to_str()) {
        None => Some(NotifySigner::Certificate),
        Some(Ok(serial)) if serial == v3.public_key_id => Some(NotifySigner::PublicKey),
        Some(Ok(serial))
            if serial_number(serial).is_some()
                && serial_number(serial) == serial_number(&v3.platform_serial) =>
        {
            Some(NotifySigner::Certificate)
        }
        Some(_) => None,
    }
}

/// The axum handler of every `/v3/...` path.
pub(crate) async fn handle(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = sim.faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let Some(signer) = signer_for(&sim, &headers) else {
        return refuse(
            &sim,
            NotifySigner::Certificate,
            &refusal(400, "PARAM_ERROR", "Wechatpay-Serial 无效"),
        );
    };
    let answer = authenticate(&sim, &method, &uri, &headers, &body).and_then(|merchant| {
        if merchant_api::injected_system_error(&sim) {
            return Err(refusal(500, "SYSTEM_ERROR", "系统错误"));
        }
        route(&sim, merchant, &method, &uri, &body)
    });
    match answer {
        Ok((status, value)) => {
            let body = value
                .map(|v| v.to_string().into_bytes())
                .unwrap_or_default();
            respond(&sim, signer, status, body)
        }
        Err(r) => refuse(&sim, signer, &r),
    }
}

/// The request's merchant, once its `Authorization` checks out.
fn authenticate<'a>(
    sim: &'a Sim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<&'a SimMerchant, V3Refusal> {
    let sign_error = |message: &str| refusal(401, "SIGN_ERROR", message);
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_authorization)
        .ok_or_else(|| sign_error("Authorization 头缺失或格式错误"))?;
    let merchant = sim
        .merchant(&auth.mchid)
        .ok_or_else(|| refusal(400, "MCH_NOT_EXISTS", "商户号不存在"))?;
    let v3 = &sim.config.v3;
    if serial_number(&auth.serial_no).is_none()
        || serial_number(&auth.serial_no) != serial_number(&v3.merchant_serial)
    {
        return Err(sign_error("商户证书序列号有误"));
    }
    let sent: i64 = auth
        .timestamp
        .parse()
        .map_err(|_| sign_error("Authorization 中的时间戳格式错误"))?;
    if v3::unix_now().saturating_sub(sent).saturating_abs() >= FRESHNESS_SECS {
        return Err(sign_error(
            "Authorization 中的时间戳与当前时间相差超过5分钟",
        ));
    }
    let url = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let mut message =
        format!("{method}\n{url}\n{}\n{}\n", auth.timestamp, auth.nonce_str).into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    if !v3.merchant_public_key.verifies(&message, &auth.signature) {
        return Err(sign_error("签名错误"));
    }
    Ok(merchant)
}

/// A business answer: HTTP status and JSON body (none for 204).
type Answer = Result<(u16, Option<Value>), V3Refusal>;

fn route(
    sim: &Arc<Sim>,
    merchant: &SimMerchant,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> Answer {
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let query_mchid = || {
        uri.query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("mchid="))
    };
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v3", "pay", "transactions", "jsapi"]) => jsapi(sim, merchant, body),
        ("GET", ["v3", "pay", "transactions", "out-trade-no", number]) => {
            same_merchant(merchant, query_mchid())?;
            query(sim, merchant, "out_trade_no", number)
        }
        ("GET", ["v3", "pay", "transactions", "id", id]) => {
            same_merchant(merchant, query_mchid())?;
            query(sim, merchant, "transaction_id", id)
        }
        ("POST", ["v3", "pay", "transactions", "out-trade-no", number, "close"]) => {
            close(sim, merchant, number, body)
        }
        ("POST", ["v3", "refund", "domestic", "refunds"]) => refund(sim, merchant, body),
        ("GET", ["v3", "refund", "domestic", "refunds", number]) => {
            refund_query(sim, merchant, number)
        }
        ("GET", ["v3", "certificates"]) => certificates(sim),
        _ => Err(refusal(404, "RESOURCE_NOT_EXISTS", "请求的资源不存在")),
    }
}

fn same_merchant(merchant: &SimMerchant, mchid: Option<&str>) -> Result<(), V3Refusal> {
    match mchid {
        Some(m) if m == merchant.mch_id => Ok(()),
        Some(_) => Err(refusal(400, "PARAM_ERROR", "mchid与请求头中的商户号不一致")),
        None => Err(refusal(400, "PARAM_ERROR", "缺少参数mchid")),
    }
}

fn json_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, V3Refusal> {
    serde_json::from_slice(body).map_err(|e| {
        let detail: String = e.to_string().chars().take(120).collect();
        refusal(400, "PARAM_ERROR", format!("请求参数格式错误: {detail}"))
    })
}

#[derive(Deserialize)]
struct JsapiAmount {
    total: u64,
    currency: Option<String>,
}

#[derive(Deserialize)]
struct JsapiPayer {
    openid: String,
}

#[derive(Deserialize)]
struct Jsapi {
    appid: String,
    mchid: String,
    description: String,
    out_trade_no: String,
    time_expire: Option<String>,
    attach: Option<String>,
    notify_url: String,
    goods_tag: Option<String>,
    amount: JsapiAmount,
    payer: Option<JsapiPayer>,
}

fn jsapi(sim: &Arc<Sim>, merchant: &SimMerchant, body: &[u8]) -> Answer {
    let request: Jsapi = json_body(body)?;
    same_merchant(merchant, Some(&request.mchid))?;
    if request.appid != merchant.appid {
        return Err(refusal(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配"));
    }
    if request
        .amount
        .currency
        .as_deref()
        .is_some_and(|c| c != "CNY")
    {
        return Err(refusal(400, "PARAM_ERROR", "amount.currency 只支持CNY"));
    }
    let Some(payer) = request.payer else {
        return Err(refusal(400, "PARAM_ERROR", "JSAPI支付必须传payer.openid"));
    };
    let mut params = Params::new();
    params.insert("body", request.description);
    params.insert("out_trade_no", request.out_trade_no);
    params.insert("total_fee", request.amount.total.to_string());
    params.insert("spbill_create_ip", "127.0.0.1");
    params.insert("notify_url", request.notify_url);
    params.insert("trade_type", "JSAPI");
    params.insert("openid", payer.openid);
    if let Some(attach) = request.attach {
        params.insert("attach", attach);
    }
    if let Some(tag) = request.goods_tag {
        params.insert("goods_tag", tag);
    }
    if let Some(expire) = request.time_expire {
        let t = WeChatTime::parse_rfc3339(&expire)
            .map_err(|_| refusal(400, "PARAM_ERROR", "time_expire 格式错误"))?;
        params.insert("time_expire", t.to_string());
    }
    let out =
        merchant_api::unified_order(sim, merchant, false, &params, SignType::HmacSha256, true)
            .map_err(from_v2)?;
    Ok((200, Some(json!({ "prepay_id": out.get("prepay_id") }))))
}

/// The transaction object of `order` (§3.5); `extra_fen` is added to the amounts (the
/// wrong-amount fault).
pub(crate) fn transaction_json(order: &Order, extra_fen: u64) -> Value {
    let mut t = json!({
        "appid": order.appid,
        "mchid": order.key.mch_id,
        "out_trade_no": order.key.out_trade_no,
        "trade_state": order.state.as_str(),
        "trade_state_desc": merchant_api::trade_state_desc(order.state),
    });
    if let Some(attach) = &order.attach {
        t["attach"] = json!(attach);
    }
    if order.state.was_paid() {
        let total = order.total_fee.get().saturating_add(extra_fen);
        t["transaction_id"] = json!(order.transaction_id);
        t["trade_type"] = json!(order.trade_type);
        t["bank_type"] = json!("OTHERS");
        t["success_time"] = json!(order.time_end.map(WeChatTime::to_rfc3339));
        t["payer"] = json!({ "openid": order.openid });
        t["amount"] = json!({
            "total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY",
        });
    }
    t
}

fn query(sim: &Sim, merchant: &SimMerchant, field: &str, number: &str) -> Answer {
    let params: Params = [(field, number)].into_iter().collect();
    let key = merchant_api::find_order(sim, merchant, false, &params, true).map_err(from_v2)?;
    let store = lock(&sim.store);
    let order = store
        .get(&key)
        .ok_or_else(|| refusal(404, "ORDER_NOT_EXIST", "订单不存在"))?;
    Ok((200, Some(transaction_json(order, 0))))
}

#[derive(Deserialize)]
struct Close {
    mchid: String,
}

fn close(sim: &Sim, merchant: &SimMerchant, number: &str, body: &[u8]) -> Answer {
    let request: Close = json_body(body)?;
    same_merchant(merchant, Some(&request.mchid))?;
    let params: Params = [("out_trade_no", number)].into_iter().collect();
    merchant_api::close_order(sim, merchant, false, &params).map_err(from_v2)?;
    Ok((204, None))
}

#[derive(Deserialize)]
struct RefundAmount {
    refund: u64,
    total: u64,
    currency: String,
}

#[derive(Deserialize)]
struct RefundBody {
    transaction_id: Option<String>,
    out_trade_no: Option<String>,
    out_refund_no: String,
    reason: Option<String>,
    notify_url: Option<String>,
    amount: RefundAmount,
}

/// `yyyy-MM-dd HH:mm:ss` (Beijing) as RFC 3339.
fn dashed_to_rfc3339(t: &str) -> String {
    format!("{}+08:00", t.replacen(' ', "T", 1))
}

/// The refund object of `refund` (§3.5); `extra_fen` is added to the refunded amount (the
/// wrong-amount fault).
pub(crate) fn refund_json(order: &Order, refund: &Refund, extra_fen: u64) -> Value {
    let amount = refund.refund_fee.get().saturating_add(extra_fen);
    let total = order.total_fee.get();
    json!({
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": order.transaction_id,
        "out_trade_no": order.key.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "success_time": refund.success_time.as_deref().map(dashed_to_rfc3339),
        "create_time": refund.requested_at.to_rfc3339(),
        "status": v3::RefundStatus::from(refund.status).as_str(),
        "funds_account": "AVAILABLE",
        "amount": {
            "total": total, "refund": amount, "payer_total": total, "payer_refund": amount,
            "settlement_total": total, "settlement_refund": amount, "discount_refund": 0,
            "currency": "CNY", "refund_fee": 0,
        },
    })
}

fn refund(sim: &Arc<Sim>, merchant: &SimMerchant, body: &[u8]) -> Answer {
    let request: RefundBody = json_body(body)?;
    if request.amount.currency != "CNY" {
        return Err(refusal(400, "PARAM_ERROR", "amount.currency 只支持CNY"));
    }
    let mut params = Params::new();
    match (request.transaction_id, request.out_trade_no) {
        (Some(id), _) => {
            params.insert("transaction_id", id);
        }
        (None, Some(number)) => {
            params.insert("out_trade_no", number);
        }
        (None, None) => {
            return Err(refusal(
                400,
                "PARAM_ERROR",
                "transaction_id和out_trade_no必须填一个",
            ));
        }
    }
    params.insert("out_refund_no", request.out_refund_no.clone());
    params.insert("total_fee", request.amount.total.to_string());
    params.insert("refund_fee", request.amount.refund.to_string());
    if let Some(reason) = request.reason {
        params.insert("refund_desc", reason);
    }
    if let Some(url) = request.notify_url {
        params.insert("notify_url", url);
    }
    merchant_api::refund(sim, merchant, false, &params).map_err(from_v2)?;
    refund_query(sim, merchant, &request.out_refund_no)
}

fn refund_query(sim: &Sim, merchant: &SimMerchant, number: &str) -> Answer {
    let not_found = || refusal(404, "RESOURCE_NOT_EXISTS", "退款单不存在");
    let store = lock(&sim.store);
    let key = store
        .by_refund(false, &merchant.mch_id, number)
        .ok_or_else(not_found)?;
    let order = store.get(key).ok_or_else(not_found)?;
    let refund = order.refund(number).ok_or_else(not_found)?;
    Ok((200, Some(refund_json(order, refund, 0))))
}

fn certificates(sim: &Sim) -> Answer {
    let v3 = &sim.config.v3;
    let nonce: String = NonceStr::generate().as_str().chars().take(12).collect();
    let sealed = Resource::seal(
        &v3.api_v3_key,
        &nonce,
        "certificate",
        Some("certificate"),
        v3.platform_cert_pem.as_bytes(),
    )
    .map_err(|_| refusal(500, "SYSTEM_ERROR", "系统错误"))?;
    Ok((
        200,
        Some(json!({ "data": [{
            "serial_no": v3.platform_serial,
            "effective_time": "2026-12-02T17:28:15+08:00",
            "expire_time": "2036-11-29T17:28:15+08:00",
            "encrypt_certificate": sealed,
        }]})),
    ))
}

/// The v3 notification of `order`'s payment: the envelope with the transaction encrypted
/// under the APIv3 key (`None`: v3 notifies successful payments only).
pub(crate) fn payment_notification(sim: &Sim, order: &Order, extra_fen: u64) -> Option<String> {
    if order.state != TradeState::Success {
        return None;
    }
    let plain = transaction_json(order, extra_fen).to_string();
    envelope(
        sim,
        "TRANSACTION.SUCCESS",
        "支付成功",
        "transaction",
        &plain,
    )
}

/// The v3 notification of `refund`'s final state.
pub(crate) fn refund_notification(
    sim: &Sim,
    order: &Order,
    refund: &Refund,
    extra_fen: u64,
) -> Option<String> {
    let (event, summary) = match refund.status {
        RefundStatus::Success => ("REFUND.SUCCESS", "退款成功"),
        RefundStatus::Refundclose => ("REFUND.CLOSED", "退款关闭"),
        RefundStatus::Change => ("REFUND.ABNORMAL", "退款异常"),
        RefundStatus::Processing => return None,
    };
    let object = refund_json(order, refund, extra_fen);
    let resource = json!({
        "mchid": order.key.mch_id,
        "out_trade_no": object["out_trade_no"],
        "transaction_id": object["transaction_id"],
        "out_refund_no": object["out_refund_no"],
        "refund_id": object["refund_id"],
        "refund_status": object["status"],
        "success_time": object["success_time"],
        "user_received_account": object["user_received_account"],
        "amount": {
            "total": object["amount"]["total"], "refund": object["amount"]["refund"],
            "payer_total": object["amount"]["payer_total"],
            "payer_refund": object["amount"]["payer_refund"],
        },
    });
    envelope(sim, event, summary, "refund", &resource.to_string())
}

fn envelope(sim: &Sim, event: &str, summary: &str, kind: &str, plain: &str) -> Option<String> {
    let nonce: String = NonceStr::generate().as_str().chars().take(12).collect();
    let resource = Resource::seal(
        &sim.config.v3.api_v3_key,
        &nonce,
        kind,
        Some(kind),
        plain.as_bytes(),
    )
    .ok()?;
    let id = format!("EV-{:032x}", rand::rng().random::<u128>());
    Some(
        json!({
            "id": id,
            "create_time": sim.clock.wechat_now().to_rfc3339(),
            "resource_type": "encrypt-resource",
            "event_type": event,
            "summary": summary,
            "resource": resource,
        })
        .to_string(),
    )
}
