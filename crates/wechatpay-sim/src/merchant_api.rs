//! WeChat's v2 merchant API, at WeChat's paths: unified order, order query, close order,
//! refund and refund query, the same under `/sandboxnew/`, and the sandbox sign key.
//!
//! Refusals follow the reference (§6): a bad method, body, signature or merchant gets
//! `return_code=FAIL` with a `return_msg` and no signature; a business refusal gets
//! `return_code=SUCCESS`, `result_code=FAIL`, `err_code` and `err_code_des`, signed with the
//! request's `sign_type`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use wechat_pay::v2::{
    self, ApiKey, Endpoint, Params, RefundQueryResponse, RefundRecord, RefundStatus, SignType,
    TradeState, xml,
};
use wechat_pay::{Fen, NonceStr, OutRefundNo, OutTradeNo, RefundId, TransactionId, WeChatTime};

use crate::config::SimMerchant;
use crate::sim::{Sim, lock};
use crate::store::{NotificationLog, Order, OrderKey, Refund};

/// A business refusal: `err_code` and `err_code_des`.
pub(crate) type Refusal = (&'static str, String);

pub(crate) fn refuse(code: &'static str, des: impl Into<String>) -> Refusal {
    (code, des.into())
}

/// `return_code=FAIL`, unsigned.
fn protocol_fail(return_msg: &str) -> String {
    let p: Params = [("return_code", "FAIL"), ("return_msg", return_msg)]
        .into_iter()
        .collect();
    xml::encode(&p).unwrap_or_default()
}

/// Signs answers for one verified request.
struct Reply<'a> {
    key: &'a ApiKey,
    sign_type: SignType,
    appid: Option<&'a str>,
    mch_id: &'a str,
}

impl Reply<'_> {
    fn answer(&self, result: Result<Params, Refusal>) -> String {
        let mut p = Params::new();
        p.insert("return_code", "SUCCESS");
        p.insert("return_msg", "OK");
        if let Some(appid) = self.appid {
            p.insert("appid", appid);
        }
        p.insert("mch_id", self.mch_id);
        p.insert("nonce_str", NonceStr::generate().to_string());
        match result {
            Ok(fields) => {
                p.insert("result_code", "SUCCESS");
                for (k, v) in fields {
                    p.insert(k, v);
                }
            }
            Err((code, des)) => {
                p.insert("result_code", "FAIL");
                p.insert("err_code", code);
                p.insert("err_code_des", des);
            }
        }
        v2::sign_params(&mut p, self.key, self.sign_type);
        xml::encode(&p).unwrap_or_else(|_| protocol_fail("SYSTEMERROR"))
    }
}

fn xml_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// The axum handler for one endpoint (`sandbox` selects the `/sandboxnew` variant;
/// `client_cert`: the connection presented a merchant certificate the CA signed).
pub(crate) async fn handle(
    sim: State<Arc<Sim>>,
    endpoint: Endpoint,
    sandbox: bool,
    client_cert: bool,
    method: Method,
    body: Bytes,
) -> Response {
    let latency = sim.faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    // ⚠ WeChat fails the handshake or the request without the certificate (reference
    // §2.10); the simulator answers `return_code=FAIL` so that the refusal can be read. Over
    // plain HTTP there is no certificate to ask for, and none is required.
    if endpoint == Endpoint::Refund && sim.config.tls.is_some() && !client_cert {
        return xml_response(protocol_fail("请求未携带商户API证书"));
    }
    if endpoint == Endpoint::DownloadBill {
        return match authenticate(&sim, endpoint, sandbox, &method, &body) {
            Ok(request) if injected_system_error(&sim) => {
                drop(request);
                bill_busy()
            }
            Ok(request) => sim.download_bill(request.merchant_id, &request.params),
            Err(refusal) => xml_response(refusal),
        };
    }
    xml_response(call(&sim, endpoint, sandbox, &method, &body))
}

/// The bill download's `System Error` (what the SYSTEMERROR fault gives there).
fn bill_busy() -> Response {
    let p: Params = [
        ("return_code", "FAIL"),
        ("return_msg", "System Error"),
        ("error_code", "100"),
    ]
    .into_iter()
    .collect();
    xml_response(xml::encode(&p).unwrap_or_default())
}

/// A request whose merchant and signature were checked.
struct Authenticated<'a> {
    params: Params,
    merchant: &'a SimMerchant,
    merchant_id: &'a str,
    key: ApiKey,
    sign_type: SignType,
}

/// The checks before any business: method, body, XML, sign type, merchant, signature; a
/// refusal is `return_code=FAIL`, unsigned.
fn authenticate<'a>(
    sim: &'a Sim,
    endpoint: Endpoint,
    sandbox: bool,
    method: &Method,
    body: &[u8],
) -> Result<Authenticated<'a>, String> {
    if method != Method::POST {
        return Err(protocol_fail("请使用post方法"));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(protocol_fail("post数据为空"));
    }
    let params = match xml::decode(body) {
        Ok(p) => p,
        Err(xml::XmlError::InvalidUtf8) => return Err(protocol_fail("编码格式错误")),
        Err(_) => return Err(protocol_fail("XML格式错误")),
    };
    let sign_type = match SignType::of_message(&params) {
        Ok(t) if endpoint == Endpoint::SandboxSignKey && t != SignType::Md5 => {
            return Err(protocol_fail("getsignkey只支持MD5签名"));
        }
        Ok(t) => t,
        Err(_) => return Err(protocol_fail("sign_type参数错误")),
    };
    let Some(merchant) = params.get_non_empty("mch_id").and_then(|m| sim.merchant(m)) else {
        return Err(protocol_fail(if params.get_non_empty("mch_id").is_none() {
            "缺少参数mch_id"
        } else {
            "商户号mch_id不存在"
        }));
    };
    if params.get_non_empty("sign").is_none() {
        return Err(protocol_fail("缺少参数sign"));
    }
    let key = if sandbox && endpoint != Endpoint::SandboxSignKey {
        merchant.sandbox_key()
    } else {
        merchant.key.clone()
    };
    if v2::verify(&params, &key, sign_type).is_err() {
        return Err(protocol_fail("签名错误"));
    }
    Ok(Authenticated {
        params,
        merchant,
        merchant_id: &merchant.mch_id,
        key,
        sign_type,
    })
}

/// One merchant API call, from raw request to raw answer.
fn call(sim: &Arc<Sim>, endpoint: Endpoint, sandbox: bool, method: &Method, body: &[u8]) -> String {
    let Authenticated {
        params,
        merchant,
        merchant_id: mch_id,
        key,
        sign_type,
    } = match authenticate(sim, endpoint, sandbox, method, body) {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    let key = &key;
    if endpoint == Endpoint::SandboxSignKey {
        let reply = Reply {
            key,
            sign_type,
            appid: None,
            mch_id,
        };
        let fields: Params = [(
            "sandbox_signkey",
            merchant.sandbox_key().expose().to_owned(),
        )]
        .into_iter()
        .collect();
        return reply.answer(Ok(fields));
    }
    let reply = Reply {
        key,
        sign_type,
        appid: params.get_non_empty("appid"),
        mch_id,
    };
    reply.answer(business(
        sim, merchant, endpoint, sandbox, &params, sign_type,
    ))
}

/// Checks common to every business call, the fault, then the endpoint itself.
fn business(
    sim: &Arc<Sim>,
    merchant: &SimMerchant,
    endpoint: Endpoint,
    sandbox: bool,
    params: &Params,
    sign_type: SignType,
) -> Result<Params, Refusal> {
    let appid = required(params, "appid")?;
    if appid != merchant.appid {
        return Err(refuse("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配"));
    }
    let nonce = required(params, "nonce_str")?;
    if nonce.len() > NonceStr::MAX_LEN {
        return Err(refuse("INVALID_REQUEST", "nonce_str参数长度有误"));
    }
    if injected_system_error(sim) {
        return Err(refuse("SYSTEMERROR", "系统超时"));
    }
    match endpoint {
        Endpoint::UnifiedOrder => unified_order(sim, merchant, sandbox, params, sign_type, false),
        Endpoint::OrderQuery => order_query(sim, merchant, sandbox, params),
        Endpoint::CloseOrder => close_order(sim, merchant, sandbox, params),
        Endpoint::Refund => refund(sim, merchant, sandbox, params),
        Endpoint::RefundQuery => refund_query(sim, merchant, sandbox, params),
        Endpoint::SandboxSignKey | Endpoint::DownloadBill => {
            Err(refuse("INVALID_REQUEST", "unexpected endpoint"))
        }
    }
}

pub(crate) fn injected_system_error(sim: &Sim) -> bool {
    let mut faults = lock(&sim.faults);
    if faults.system_error_next > 0 {
        faults.system_error_next -= 1;
        return true;
    }
    faults.system_error_rate > 0.0
        && rand::rng().random_bool(faults.system_error_rate.clamp(0.0, 1.0))
}

fn required<'p>(params: &'p Params, name: &str) -> Result<&'p str, Refusal> {
    params
        .get_non_empty(name)
        .ok_or_else(|| refuse("LACK_PARAMS", format!("缺少参数{name}")))
}

pub(crate) fn format_error(name: &str) -> Refusal {
    refuse("INVALID_REQUEST", format!("{name}参数格式错误"))
}

fn max_chars(params: &Params, name: &str, max: usize) -> Result<(), Refusal> {
    match params.get(name) {
        Some(v) if v.chars().count() > max => {
            Err(refuse("INVALID_REQUEST", format!("{name}参数长度有误")))
        }
        _ => Ok(()),
    }
}

/// Validated unified order fields.
struct NewOrder {
    out_trade_no: OutTradeNo,
    total_fee: Fen,
    trade_type: String,
    openid: Option<String>,
    notify_url: String,
    time_start: Option<WeChatTime>,
    time_expire: Option<WeChatTime>,
}

impl NewOrder {
    /// A new order's `time_expire` must leave at least a minute to pay. Checked only when the
    /// order is created: re-entry of an existing order answers from its state instead.
    fn check_window(&self, now: WeChatTime) -> Result<(), Refusal> {
        if let Some(expire) = self.time_expire {
            let now = now.unix_seconds();
            let from = self.time_start.map_or(now, |s| s.unix_seconds().max(now));
            if expire.unix_seconds() - from < wechat_pay::MIN_EXPIRE_WINDOW_SECONDS {
                return Err(refuse("INVALID_REQUEST", "time_expire时间过短，至少1分钟"));
            }
        }
        Ok(())
    }
}

/// WeChat requires https and no query; the simulator also takes http so local receivers
/// work.
fn notify_url_ok(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains('?')
        && url.parse::<reqwest::Url>().is_ok()
}

fn validate_unified_order(sim: &Sim, appid: &str, params: &Params) -> Result<NewOrder, Refusal> {
    for name in [
        "body",
        "out_trade_no",
        "total_fee",
        "spbill_create_ip",
        "notify_url",
        "trade_type",
    ] {
        required(params, name)?;
    }
    for (name, max) in [
        ("body", 127),
        ("attach", 127),
        ("detail", 6000),
        ("goods_tag", 32),
        ("device_info", 32),
        ("openid", 128),
        ("scene_info", 256),
        ("notify_url", 256),
        ("product_id", 32),
    ] {
        max_chars(params, name, max)?;
    }
    let out_trade_no = OutTradeNo::parse(required(params, "out_trade_no")?)
        .map_err(|_| format_error("out_trade_no"))?;
    let total_fee: Fen = required(params, "total_fee")?
        .parse()
        .map_err(|_| format_error("total_fee"))?;
    if total_fee.is_zero() {
        return Err(format_error("total_fee"));
    }
    if params.get_non_empty("fee_type").is_some_and(|f| f != "CNY") {
        return Err(format_error("fee_type"));
    }
    required(params, "spbill_create_ip")?
        .parse::<IpAddr>()
        .map_err(|_| format_error("spbill_create_ip"))?;
    let notify_url = required(params, "notify_url")?;
    // WeChat requires https; the simulator also takes http so local receivers work.
    if !notify_url_ok(notify_url) {
        return Err(format_error("notify_url"));
    }
    let time = |name: &str| -> Result<Option<WeChatTime>, Refusal> {
        params
            .get_non_empty(name)
            .map(|v| WeChatTime::parse(v).map_err(|_| format_error(name)))
            .transpose()
    };
    let time_start = time("time_start")?;
    let time_expire = time("time_expire")?;
    if params
        .get_non_empty("limit_pay")
        .is_some_and(|v| v != "no_credit")
    {
        return Err(format_error("limit_pay"));
    }
    let trade_type = required(params, "trade_type")?;
    let openid = params.get_non_empty("openid").map(str::to_owned);
    match trade_type {
        "JSAPI" => {
            let Some(openid) = &openid else {
                return Err(refuse("LACK_PARAMS", "JSAPI支付必须传openid"));
            };
            if !lock(&sim.logins).issued(appid, openid) {
                return Err(refuse("PARAM_ERROR", "appid和openid不匹配"));
            }
        }
        "NATIVE" => {
            required(params, "product_id")?;
        }
        "APP" | "MWEB" => {}
        _ => return Err(format_error("trade_type")),
    }
    Ok(NewOrder {
        out_trade_no,
        total_fee,
        trade_type: trade_type.to_owned(),
        openid,
        notify_url: notify_url.to_owned(),
        time_start,
        time_expire,
    })
}

/// Unified order (and, with `v3`, the v3 JSAPI prepay translated to its fields: the same
/// rules, the order then notified as v3).
pub(crate) fn unified_order(
    sim: &Arc<Sim>,
    merchant: &SimMerchant,
    sandbox: bool,
    params: &Params,
    sign_type: SignType,
    v3: bool,
) -> Result<Params, Refusal> {
    let new = validate_unified_order(sim, &merchant.appid, params)?;
    let mut fingerprint = params.clone().into_inner();
    fingerprint.remove("nonce_str");
    fingerprint.remove("sign");
    let key = OrderKey {
        sandbox,
        mch_id: merchant.mch_id.clone(),
        out_trade_no: new.out_trade_no.to_string(),
    };
    let mut store = lock(&sim.store);
    let mut fresh_prepay = false;
    let prepay_id = match store.get_mut(&key) {
        Some(order) => {
            match order.state {
                TradeState::Success | TradeState::Refund => {
                    return Err(refuse("ORDERPAID", "该订单已支付"));
                }
                TradeState::Closed | TradeState::Revoked => {
                    return Err(refuse("ORDERCLOSED", "该订单已关闭"));
                }
                _ => {}
            }
            if order.fingerprint != fingerprint {
                return Err(refuse("OUT_TRADE_NO_USED", "商户订单号重复"));
            }
            if order
                .time_expire
                .is_some_and(|t| t.unix_seconds() <= sim.clock.wechat_now().unix_seconds())
            {
                return Err(refuse("ORDERCLOSED", "订单已过期"));
            }
            let now = sim.clock.now();
            if now.saturating_duration_since(order.prepay_issued) > sim.config.prepay_ttl {
                order.prepay_id = sim.new_prepay_id();
                order.prepay_issued = now;
                fresh_prepay = true;
            }
            order.prepay_id.clone()
        }
        None => {
            new.check_window(sim.clock.wechat_now())?;
            let prepay_id = sim.new_prepay_id();
            store.insert(Order {
                key: key.clone(),
                appid: merchant.appid.clone(),
                fingerprint,
                total_fee: new.total_fee,
                attach: params.get_non_empty("attach").map(str::to_owned),
                openid: new.openid,
                trade_type: new.trade_type.clone(),
                notify_url: new.notify_url,
                sign_type,
                v3,
                time_expire: new.time_expire,
                prepay_id: prepay_id.clone(),
                prepay_issued: sim.clock.now(),
                state: TradeState::Notpay,
                transaction_id: None,
                time_end: None,
                notifications: NotificationLog::default(),
                refunds: Vec::new(),
            });
            fresh_prepay = true;
            prepay_id
        }
    };
    drop(store);
    if fresh_prepay {
        sim.schedule_auto_pay(key);
    }
    let mut out = Params::new();
    out.insert("trade_type", new.trade_type.clone());
    out.insert("prepay_id", prepay_id.clone());
    if new.trade_type == "NATIVE" {
        out.insert(
            "code_url",
            format!(
                "weixin://wxpay/bizpayurl?pr={}",
                &prepay_id[prepay_id.len().saturating_sub(8)..]
            ),
        );
    }
    Ok(out)
}

/// The order a call names: by `transaction_id` when one is given and `by_transaction` allows
/// it (order query), else by `out_trade_no` (close order takes only that).
pub(crate) fn find_order(
    sim: &Sim,
    merchant: &SimMerchant,
    sandbox: bool,
    params: &Params,
    by_transaction: bool,
) -> Result<OrderKey, Refusal> {
    let store = lock(&sim.store);
    if let Some(txn) = params
        .get_non_empty("transaction_id")
        .filter(|_| by_transaction)
    {
        return store
            .by_transaction(sandbox, &merchant.mch_id, txn)
            .cloned()
            .ok_or_else(|| refuse("ORDERNOTEXIST", "订单不存在"));
    }
    let number = params
        .get_non_empty("out_trade_no")
        .ok_or_else(|| refuse("LACK_PARAMS", "缺少参数out_trade_no"))?;
    OutTradeNo::parse(number).map_err(|_| format_error("out_trade_no"))?;
    let key = OrderKey {
        sandbox,
        mch_id: merchant.mch_id.clone(),
        out_trade_no: number.to_owned(),
    };
    if store.get(&key).is_none() {
        return Err(refuse("ORDERNOTEXIST", "订单不存在"));
    }
    Ok(key)
}

fn order_query(
    sim: &Sim,
    merchant: &SimMerchant,
    sandbox: bool,
    params: &Params,
) -> Result<Params, Refusal> {
    let key = find_order(sim, merchant, sandbox, params, true)?;
    let store = lock(&sim.store);
    let order = store
        .get(&key)
        .ok_or_else(|| refuse("ORDERNOTEXIST", "订单不存在"))?;
    let mut out = Params::new();
    out.insert("trade_state", order.state.as_str());
    out.insert("trade_state_desc", trade_state_desc(order.state));
    out.insert("out_trade_no", order.key.out_trade_no.clone());
    if let Some(attach) = &order.attach {
        out.insert("attach", attach.clone());
    }
    if order.state.was_paid() {
        if let Some(openid) = &order.openid {
            out.insert("openid", openid.clone());
        }
        out.insert("is_subscribe", "N");
        out.insert("trade_type", order.trade_type.clone());
        out.insert("bank_type", "OTHERS");
        out.insert("total_fee", order.total_fee.to_string());
        out.insert("cash_fee", order.total_fee.to_string());
        out.insert("fee_type", "CNY");
        if let Some(txn) = &order.transaction_id {
            out.insert("transaction_id", txn.clone());
        }
        if let Some(t) = order.time_end {
            out.insert("time_end", t.to_string());
        }
    }
    Ok(out)
}

pub(crate) fn trade_state_desc(state: TradeState) -> &'static str {
    match state {
        TradeState::Success => "支付成功",
        TradeState::Refund => "转入退款",
        TradeState::Notpay => "订单未支付",
        TradeState::Closed => "已关闭",
        TradeState::Revoked => "已撤销",
        TradeState::Userpaying => "用户支付中",
        TradeState::Payerror => "支付失败",
        TradeState::Accept => "已接收，等待扣款",
    }
}

pub(crate) fn close_order(
    sim: &Sim,
    merchant: &SimMerchant,
    sandbox: bool,
    params: &Params,
) -> Result<Params, Refusal> {
    required(params, "out_trade_no")?;
    let key = find_order(sim, merchant, sandbox, params, false)?;
    let mut store = lock(&sim.store);
    let order = store
        .get_mut(&key)
        .ok_or_else(|| refuse("ORDERNOTEXIST", "订单不存在"))?;
    match order.state {
        TradeState::Success | TradeState::Refund => {
            Err(refuse("ORDERPAID", "订单已支付，不能发起关单"))
        }
        TradeState::Closed | TradeState::Revoked => {
            Err(refuse("ORDERCLOSED", "订单已关闭，无法重复关闭"))
        }
        _ => {
            order.state = TradeState::Closed;
            Ok([("result_msg", "OK")].into_iter().collect())
        }
    }
}

/// Most refunds one order can have (reference §2.10).
const MAX_REFUNDS: usize = 50;

fn fen(params: &Params, name: &str) -> Result<Fen, Refusal> {
    let amount: Fen = required(params, name)?
        .parse()
        .map_err(|_| format_error(name))?;
    if amount.is_zero() {
        return Err(format_error(name));
    }
    Ok(amount)
}

/// The refund's answer fields (also for a repeated request: the same refund).
fn refund_fields(order: &Order, refund: &Refund) -> Params {
    let mut out = Params::new();
    if let Some(txn) = &order.transaction_id {
        out.insert("transaction_id", txn.clone());
    }
    out.insert("out_trade_no", order.key.out_trade_no.clone());
    out.insert("out_refund_no", refund.out_refund_no.clone());
    out.insert("refund_id", refund.refund_id.clone());
    out.insert("refund_fee", refund.refund_fee.to_string());
    out.insert("settlement_refund_fee", refund.refund_fee.to_string());
    out.insert("total_fee", order.total_fee.to_string());
    out.insert("settlement_total_fee", order.total_fee.to_string());
    out.insert("fee_type", "CNY");
    out.insert("cash_fee", order.total_fee.to_string());
    out.insert("cash_refund_fee", refund.refund_fee.to_string());
    out
}

/// `/secapi/pay/refund`: accepts a refund of a paid order (PROCESSING until settled). The
/// same `out_refund_no` with the same amount is the same refund; never more than was paid.
///
/// ⚠ WeChat also wants partial refunds of one order at least a minute apart; the simulator
/// does not enforce it, so that tests can refund several times in a row.
pub(crate) fn refund(
    sim: &Arc<Sim>,
    merchant: &SimMerchant,
    sandbox: bool,
    params: &Params,
) -> Result<Params, Refusal> {
    let out_refund_no = OutRefundNo::parse(required(params, "out_refund_no")?)
        .map_err(|_| format_error("out_refund_no"))?;
    let total_fee = fen(params, "total_fee")?;
    let refund_fee = fen(params, "refund_fee")?;
    max_chars(params, "refund_desc", 80)?;
    if params
        .get_non_empty("refund_fee_type")
        .is_some_and(|f| f != "CNY")
    {
        return Err(format_error("refund_fee_type"));
    }
    let notify_url = match params.get_non_empty("notify_url") {
        Some(url) if !notify_url_ok(url) => return Err(format_error("notify_url")),
        Some(url) => Some(url.to_owned()),
        None => sim.config.refund_notify_url.clone(),
    };
    let key = find_order(sim, merchant, sandbox, params, true)
        .map_err(|_| refuse("ORDERNOTEXIST", "订单不存在"))?;
    let mut store = lock(&sim.store);
    let order = store
        .get_mut(&key)
        .ok_or_else(|| refuse("ORDERNOTEXIST", "订单不存在"))?;
    if !order.state.was_paid() {
        return Err(refuse("ORDERNOTEXIST", "订单未支付"));
    }
    if total_fee != order.total_fee {
        return Err(refuse("INVALID_REQUEST", "订单金额与原订单不一致"));
    }
    if let Some(existing) = order.refund(out_refund_no.as_str()) {
        if existing.refund_fee != refund_fee {
            return Err(refuse(
                "INVALID_REQUEST",
                "同一退款单号的退款金额与之前请求不一致",
            ));
        }
        return Ok(refund_fields(order, existing));
    }
    if order.refunds.len() >= MAX_REFUNDS {
        return Err(refuse("ERROR", "退款次数超过限制"));
    }
    if order.refunded().saturating_add(refund_fee.get()) > order.total_fee.get() {
        return Err(refuse("ERROR", "申请退款金额超过订单可退金额"));
    }
    let refund = Refund {
        out_refund_no: out_refund_no.to_string(),
        refund_id: sim.new_refund_id(),
        refund_fee,
        status: RefundStatus::Processing,
        success_time: None,
        requested_at: sim.clock.wechat_now(),
        notify_url,
        notifications: NotificationLog::default(),
    };
    order.state = TradeState::Refund;
    let fields = refund_fields(order, &refund);
    let refund_id = refund.refund_id.clone();
    order.refunds.push(refund);
    store.index_refund(&key, out_refund_no.as_str(), &refund_id);
    drop(store);
    sim.schedule_auto_refund(key, out_refund_no.to_string());
    Ok(fields)
}

/// `/pay/refundquery`: the refunds of an order, or the one named, by `refund_id`, then
/// `out_refund_no`, `transaction_id`, `out_trade_no` (WeChat's precedence).
fn refund_query(
    sim: &Sim,
    merchant: &SimMerchant,
    sandbox: bool,
    params: &Params,
) -> Result<Params, Refusal> {
    let not_found = || refuse("REFUNDNOTEXIST", "退款订单查询失败");
    let one = params
        .get_non_empty("refund_id")
        .or_else(|| params.get_non_empty("out_refund_no"));
    let key = match one {
        Some(number) => lock(&sim.store)
            .by_refund(sandbox, &merchant.mch_id, number)
            .cloned()
            .ok_or_else(not_found)?,
        None => find_order(sim, merchant, sandbox, params, true).map_err(|_| not_found())?,
    };
    let store = lock(&sim.store);
    let order = store.get(&key).ok_or_else(not_found)?;
    let listed: Vec<&Refund> = order
        .refunds
        .iter()
        .filter(|r| one.is_none_or(|n| r.out_refund_no == n || r.refund_id == n))
        .collect();
    if listed.is_empty() {
        return Err(not_found());
    }
    let invalid = |_| refuse("SYSTEMERROR", "系统错误");
    let refunds = listed
        .iter()
        .map(|r| {
            Ok(RefundRecord {
                out_refund_no: OutRefundNo::parse(r.out_refund_no.clone()).map_err(invalid)?,
                refund_id: RefundId::parse(r.refund_id.clone()).map_err(invalid)?,
                refund_fee: r.refund_fee,
                refund_status: r.status,
                refund_success_time: r.success_time.clone(),
                refund_recv_accout: Some("支付用户零钱".into()),
            })
        })
        .collect::<Result<Vec<_>, Refusal>>()?;
    let answer = RefundQueryResponse {
        appid: order.appid.clone(),
        mch_id: order.key.mch_id.clone(),
        transaction_id: TransactionId::parse(order.transaction_id.clone().unwrap_or_default())
            .map_err(invalid)?,
        out_trade_no: OutTradeNo::parse(order.key.out_trade_no.clone()).map_err(invalid)?,
        total_fee: order.total_fee,
        total_refund_count: u32::try_from(order.refunds.len()).ok(),
        refunds,
    };
    Ok(answer.to_params())
}
