//! Every conversion between pay-gateway-svc's protobuf messages and wechat-pay's typed values,
//! in one place. Requests are validated here, before anything reaches WeChat: a refusal is a
//! `GatewayError::InvalidArgument` whose message the caller sees.

use std::net::IpAddr;

use proto::paygateway::v1 as pb;
use wechat_pay::login::MiniSession;
use wechat_pay::v2::{
    self, ErrCode, OrderQueryResponse, RefundQueryResponse, RefundResponse, RefundStatus,
    RequestPayment, TradeState, UnifiedOrderRequest,
};
use wechat_pay::v3;
use wechat_pay::{Fen, IdError, OpenId, OutRefundNo, OutTradeNo, WeChatTime};

use crate::error::GatewayError;

fn invalid(message: &str) -> GatewayError {
    GatewayError::InvalidArgument(message.to_owned())
}

/// The order number of any request, refused with the identifier's own message.
pub(crate) fn out_trade_no(text: String) -> Result<OutTradeNo, GatewayError> {
    OutTradeNo::parse(text).map_err(|e| GatewayError::InvalidArgument(e.to_string()))
}

/// A refund number, refused with the identifier's own message.
pub(crate) fn out_refund_no(text: String) -> Result<OutRefundNo, GatewayError> {
    OutRefundNo::parse(text).map_err(|e| GatewayError::InvalidArgument(e.to_string()))
}

fn fen(value: i64, name: &str) -> Result<Fen, GatewayError> {
    match Fen::from_i64(value) {
        Ok(f) if !f.is_zero() => Ok(f),
        _ => Err(invalid(&format!(
            "{name} must be a whole number of fen above zero"
        ))),
    }
}

/// A `RefundRequest` as WeChat's refund, checked (amounts, the reason's length) before it
/// leaves.
pub(crate) fn refund_request(
    request: pb::RefundRequest,
    notify_url: &str,
) -> Result<wechat_pay::v2::RefundRequest, GatewayError> {
    let refund = wechat_pay::v2::RefundRequest {
        transaction_id: None,
        out_trade_no: Some(out_trade_no(request.out_trade_no)?),
        out_refund_no: out_refund_no(request.out_refund_no)?,
        total_fee: fen(request.total_fen, "total_fen")?,
        refund_fee: fen(request.refund_fen, "refund_fen")?,
        refund_fee_type: None,
        refund_desc: Some(request.reason).filter(|r| !r.is_empty()),
        refund_account: None,
        notify_url: Some(notify_url.to_owned()),
    };
    refund.check().map_err(GatewayError::InvalidArgument)?;
    Ok(refund)
}

pub(crate) fn refund_answer(answer: RefundResponse) -> pb::RefundResponse {
    pb::RefundResponse {
        refund_id: answer.refund_id.to_string(),
        transaction_id: answer.transaction_id.to_string(),
        refund_fen: answer.refund_fee.as_i64(),
    }
}

/// The refund numbered `out_refund_no` in a refund query's answer, if listed.
pub(crate) fn refund_query_answer(
    answer: &RefundQueryResponse,
    out_refund_no: &OutRefundNo,
) -> Option<pb::QueryRefundResponse> {
    let refund = answer.refund(out_refund_no)?;
    Some(pb::QueryRefundResponse {
        state: refund_state(refund.refund_status).into(),
        out_refund_no: refund.out_refund_no.to_string(),
        refund_id: refund.refund_id.to_string(),
        refund_fen: refund.refund_fee.as_i64(),
        out_trade_no: answer.out_trade_no.to_string(),
        transaction_id: answer.transaction_id.to_string(),
        succeeded_at: refund.refund_success_time.clone().unwrap_or_default(),
    })
}

fn refund_state(status: RefundStatus) -> pb::RefundState {
    match status {
        RefundStatus::Processing => pb::RefundState::Processing,
        RefundStatus::Success => pb::RefundState::Success,
        RefundStatus::Change => pb::RefundState::Change,
        RefundStatus::Refundclose => pb::RefundState::Closed,
    }
}

/// A validated `CreatePrepayRequest`.
#[derive(Debug)]
pub(crate) enum PrepayRequest {
    /// A prepay_id WeChat issued earlier for this order, still valid: it is signed again for
    /// the client without calling WeChat.
    Reuse {
        out_trade_no: OutTradeNo,
        prepay_id: String,
    },
    /// A unified order to place.
    New(NewPrepay),
}

/// A unified order's fields, each already its WeChat type.
#[derive(Debug)]
pub(crate) struct NewPrepay {
    pub(crate) out_trade_no: OutTradeNo,
    amount: Fen,
    description: String,
    openid: OpenId,
    client_ip: IpAddr,
    time_start: Option<WeChatTime>,
    time_expire: Option<WeChatTime>,
}

impl PrepayRequest {
    pub(crate) fn out_trade_no(&self) -> &OutTradeNo {
        match self {
            PrepayRequest::Reuse { out_trade_no, .. } => out_trade_no,
            PrepayRequest::New(order) => &order.out_trade_no,
        }
    }
}

impl TryFrom<pb::CreatePrepayRequest> for PrepayRequest {
    type Error = GatewayError;

    // The checks run in this order, and a reuse skips those of the order's own fields: the
    // caller resends them, but only the prepay_id is used.
    fn try_from(request: pb::CreatePrepayRequest) -> Result<Self, GatewayError> {
        let out_trade_no = out_trade_no(request.out_trade_no)?;
        let amount = Fen::from_i64(request.amount_fen)
            .ok()
            .filter(|a| !a.is_zero())
            .ok_or_else(|| invalid("amount_fen must be positive"))?;
        if !request.reuse_prepay_id.is_empty() {
            let prepay_id = request.reuse_prepay_id;
            if prepay_id.len() > 64 || !prepay_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid("reuse_prepay_id is not a prepay_id"));
            }
            return Ok(PrepayRequest::Reuse {
                out_trade_no,
                prepay_id,
            });
        }
        let description = request.description.trim();
        if description.is_empty() || description.chars().count() > 127 {
            return Err(invalid("description must be 1 to 127 characters"));
        }
        let openid = OpenId::parse(request.openid).map_err(|e| match e {
            IdError::Length { .. } => invalid("openid must be 1 to 128 characters"),
            IdError::Charset { .. } => GatewayError::InvalidArgument(e.to_string()),
        })?;
        let client_ip = if request.client_ip.is_empty() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            request
                .client_ip
                .parse()
                .map_err(|_| invalid("client_ip is not an IP address"))?
        };
        Ok(PrepayRequest::New(NewPrepay {
            out_trade_no,
            amount,
            description: description.to_owned(),
            openid,
            client_ip,
            time_start: unix_time(request.time_start_unix)?,
            time_expire: unix_time(request.time_expire_unix)?,
        }))
    }
}

/// proto3 has no "absent": 0 (or less) means no time.
fn unix_time(secs: i64) -> Result<Option<WeChatTime>, GatewayError> {
    (secs > 0)
        .then(|| WeChatTime::from_unix(secs))
        .transpose()
        .map_err(|_| invalid("time out of range"))
}

impl NewPrepay {
    /// The JSAPI unified order, with WeChat calling `notify_url` once the user paid.
    pub(crate) fn unified_order(self, notify_url: &str) -> UnifiedOrderRequest {
        let mut order = UnifiedOrderRequest::jsapi(
            self.out_trade_no,
            self.description,
            self.amount,
            self.openid.as_str(),
            notify_url,
            self.client_ip.to_string(),
        );
        order.time_start = self.time_start;
        order.time_expire = self.time_expire;
        order
    }
}

impl NewPrepay {
    /// The v3 JSAPI prepay of this order (v3 has no `time_start` nor client IP; `appid` and
    /// `mchid` are the client's).
    pub(crate) fn jsapi_prepay(self, notify_url: &str) -> v3::JsapiPrepayRequest {
        v3::JsapiPrepayRequest {
            appid: String::new(),
            mchid: String::new(),
            description: self.description,
            out_trade_no: self.out_trade_no,
            time_expire: self.time_expire.map(WeChatTime::to_rfc3339),
            attach: None,
            notify_url: notify_url.to_owned(),
            amount: v3::PrepayAmount {
                total: self.amount,
                currency: Some("CNY".into()),
            },
            payer: v3::Payer {
                openid: self.openid.as_str().to_owned(),
            },
        }
    }
}

/// A checked v2 refund request as v3's (the same fields; v3 needs no client certificate).
pub(crate) fn v3_refund_request(refund: wechat_pay::v2::RefundRequest) -> v3::RefundRequest {
    v3::RefundRequest {
        transaction_id: refund.transaction_id.map(|t| t.to_string()),
        out_trade_no: refund.out_trade_no,
        out_refund_no: refund.out_refund_no,
        reason: refund.refund_desc,
        notify_url: refund.notify_url,
        amount: v3::RefundRequestAmount {
            refund: refund.refund_fee,
            total: refund.total_fee,
            currency: "CNY".into(),
        },
    }
}

pub(crate) fn v3_refund_answer(answer: v3::Refund) -> pb::RefundResponse {
    pb::RefundResponse {
        refund_id: answer.refund_id,
        transaction_id: answer.transaction_id,
        refund_fen: answer.amount.refund.as_i64(),
    }
}

/// An RFC 3339 time as v2 writes refund times (`yyyy-MM-dd HH:mm:ss`, Beijing); empty when
/// absent or unreadable.
fn dashed(rfc3339: Option<&str>) -> String {
    rfc3339
        .and_then(|t| WeChatTime::parse_rfc3339(t).ok())
        .map(WeChatTime::to_dashed)
        .unwrap_or_default()
}

pub(crate) fn v3_refund_query_answer(answer: v3::Refund) -> pb::QueryRefundResponse {
    pb::QueryRefundResponse {
        state: refund_state(answer.status.as_v2()).into(),
        out_refund_no: answer.out_refund_no.to_string(),
        refund_id: answer.refund_id,
        refund_fen: answer.amount.refund.as_i64(),
        out_trade_no: answer.out_trade_no.to_string(),
        transaction_id: answer.transaction_id,
        succeeded_at: dashed(answer.success_time.as_deref()),
    }
}

/// The answer to `QueryPayment` from a v3 transaction.
pub(crate) fn v3_query_answer(t: v3::Transaction) -> pb::QueryPaymentResponse {
    let amount = t.amount.unwrap_or_default();
    pb::QueryPaymentResponse {
        state: trade_state(t.trade_state).into(),
        out_trade_no: t.out_trade_no.to_string(),
        transaction_id: t.transaction_id.unwrap_or_default(),
        amount_fen: amount.total.map_or(0, Fen::as_i64),
        appid: t.appid.unwrap_or_default(),
        mch_id: t.mchid,
        openid: t.payer.map(|p| p.openid).unwrap_or_default(),
        paid_at_unix: t
            .success_time
            .and_then(|s| WeChatTime::parse_rfc3339(&s).ok())
            .map_or(0, WeChatTime::unix_seconds),
        currency: amount.currency.unwrap_or_default(),
    }
}

/// A v3 failure in the gateway's one vocabulary of WeChat failures (v2's): the HTTP status
/// class first (5xx and 429 retryable), then the code spelled either way (§3.6), so that
/// callers see the same statuses and reasons under both versions. `refund` reads "not found"
/// as the refund's.
pub(crate) fn v3_error(error: v3::Error, refund: bool) -> v2::Error {
    match error {
        v3::Error::InvalidRequest(message) => v2::Error::InvalidRequest(message),
        v3::Error::Transport(e) => v2::Error::Transport(e),
        v3::Error::Api {
            status: 429,
            message,
            ..
        } => v2::Error::Business {
            code: ErrCode::FrequencyLimited,
            description: message,
        },
        v3::Error::Api {
            status, message, ..
        } if status >= 500 => v2::Error::Business {
            code: ErrCode::SystemError,
            description: message,
        },
        v3::Error::Api { code, message, .. } => {
            let known = [
                ("ORDER_PAID", ErrCode::OrderPaid),
                ("ORDER_CLOSED", ErrCode::OrderClosed),
                ("OUT_TRADE_NO_USED", ErrCode::OutTradeNoUsed),
                ("PARAM_ERROR", ErrCode::ParamError),
                ("INVALID_REQUEST", ErrCode::InvalidRequest),
                ("NOT_ENOUGH", ErrCode::NotEnough),
                ("SIGN_ERROR", ErrCode::SignError),
                ("NO_AUTH", ErrCode::NoAuth),
                ("APPID_MCHID_NOT_MATCH", ErrCode::AppIdMchIdNotMatch),
            ];
            let not_found =
                v3::code_is(&code, "ORDER_NOT_EXIST") || v3::code_is(&code, "RESOURCE_NOT_EXISTS");
            let code = if not_found && refund {
                ErrCode::Other("REFUNDNOTEXIST".into())
            } else if not_found {
                ErrCode::OrderNotExist
            } else {
                known
                    .into_iter()
                    .find(|(name, _)| v3::code_is(&code, name))
                    .map_or(ErrCode::Other(code), |(_, c)| c)
            };
            v2::Error::Business {
                code,
                description: message,
            }
        }
        v3::Error::MerchantMismatch { field } => v2::Error::MerchantMismatch { field },
        other => v2::Error::InvalidResponse(other.to_string()),
    }
}

/// The answer to `ListPlatformCertificates`.
pub(crate) fn certificates_answer(
    certificates: Vec<v3::PlatformCertificate>,
) -> pb::ListPlatformCertificatesResponse {
    pb::ListPlatformCertificatesResponse {
        certificates: certificates
            .into_iter()
            .map(|c| pb::PlatformCertificate {
                serial_no: c.serial_no,
                effective_unix: c.effective_time,
                expire_unix: c.expire_time,
                pem: c.pem,
            })
            .collect(),
    }
}

/// The answer to `CreatePrepay`; `expires_at_unix` is 0 when unknown (a reused prepay_id).
pub(crate) fn prepay_answer(
    prepay_id: String,
    payment: RequestPayment,
    expires_at_unix: i64,
) -> pb::CreatePrepayResponse {
    pb::CreatePrepayResponse {
        prepay_id,
        payment: Some(to_pb(payment)),
        prepay_expires_at_unix: expires_at_unix,
    }
}

fn to_pb(p: RequestPayment) -> pb::RequestPayment {
    pb::RequestPayment {
        app_id: p.app_id,
        time_stamp: p.time_stamp,
        nonce_str: p.nonce_str,
        package: p.package,
        sign_type: p.sign_type,
        pay_sign: p.pay_sign,
    }
}

/// The answer to `QueryPayment`; fields WeChat gives only once paid are empty or 0 before.
pub(crate) fn query_answer(answer: OrderQueryResponse) -> pb::QueryPaymentResponse {
    pb::QueryPaymentResponse {
        state: trade_state(answer.trade_state).into(),
        out_trade_no: answer.out_trade_no.to_string(),
        transaction_id: answer.transaction_id.unwrap_or_default(),
        amount_fen: answer.total_fee.map_or(0, Fen::as_i64),
        appid: answer.appid,
        mch_id: answer.mch_id,
        openid: answer.openid.unwrap_or_default(),
        paid_at_unix: answer.time_end.map_or(0, WeChatTime::unix_seconds),
        currency: answer.fee_type.unwrap_or_default(),
    }
}

fn trade_state(s: TradeState) -> pb::TradeState {
    match s {
        TradeState::Notpay => pb::TradeState::Notpay,
        TradeState::Success => pb::TradeState::Success,
        TradeState::Refund => pb::TradeState::Refund,
        TradeState::Closed => pb::TradeState::Closed,
        TradeState::Revoked => pb::TradeState::Revoked,
        TradeState::Userpaying => pb::TradeState::Userpaying,
        TradeState::Payerror => pb::TradeState::Payerror,
        TradeState::Accept => pb::TradeState::Accept,
    }
}

/// The answer to `Code2Session`: the user's ids, never the session key.
pub(crate) fn login_answer(session: MiniSession) -> pb::Code2SessionResponse {
    pb::Code2SessionResponse {
        openid: session.openid,
        unionid: session.unionid.unwrap_or_default(),
    }
}

/// `YYYY-MM-DD` as a day.
pub(crate) fn bill_date(text: &str) -> Result<time::Date, GatewayError> {
    const DAY: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, DAY).map_err(|_| invalid("date must be YYYY-MM-DD"))
}

/// A bill (checked by the protocol library) as the gRPC answer.
pub(crate) fn bill_answer(answer: wechat_pay::v2::BillAnswer) -> pb::DownloadBillResponse {
    use wechat_pay::v2::{BillAnswer, BillRowKind};
    let bill = match answer {
        BillAnswer::NoBill => {
            return pb::DownloadBillResponse {
                no_bill: true,
                ..pb::DownloadBillResponse::default()
            };
        }
        BillAnswer::Bill(bill) => bill,
    };
    let lines = bill
        .rows
        .into_iter()
        .map(|row| {
            let kind = match row.kind {
                BillRowKind::Payment => pb::BillLineKind::Payment,
                BillRowKind::Refund => pb::BillLineKind::Refund,
                BillRowKind::Revoked => pb::BillLineKind::Revoked,
            };
            let refund = row.refund.unwrap_or(wechat_pay::v2::BillRefund {
                refund_id: String::new(),
                out_refund_no: String::new(),
                amount_fen: 0,
                status: String::new(),
            });
            pb::BillLine {
                time: row.time,
                kind: kind.into(),
                out_trade_no: row.out_trade_no,
                transaction_id: row.transaction_id,
                order_fen: row.order_fen,
                settlement_fen: row.settlement_fen,
                fee_e5: row.fee_e5,
                out_refund_no: refund.out_refund_no,
                refund_id: refund.refund_id,
                refund_fen: refund.amount_fen,
                refund_status: refund.status,
            }
        })
        .collect();
    let s = bill.summary;
    pb::DownloadBillResponse {
        no_bill: false,
        lines,
        totals: Some(pb::BillTotals {
            lines: s.count,
            settlement_fen: s.settlement_fen,
            refund_fen: s.refund_fen,
            fee_e5: s.fee_e5,
            order_fen: s.order_fen,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> pb::CreatePrepayRequest {
        pb::CreatePrepayRequest {
            out_trade_no: "GW0000000001".into(),
            amount_fen: 1999,
            description: " Minipay-Tea ".into(),
            openid: "oUser0000000000000000000000A".into(),
            time_start_unix: 1_800_000_000,
            ..Default::default()
        }
    }

    fn refusal(r: pb::CreatePrepayRequest) -> String {
        match PrepayRequest::try_from(r) {
            Err(GatewayError::InvalidArgument(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_request_becomes_a_unified_order() {
        let PrepayRequest::New(order) = PrepayRequest::try_from(request()).unwrap() else {
            panic!("expected a new order")
        };
        let order = order.unified_order("http://notify.example/wechat/pay/notify");
        assert_eq!(order.body, "Minipay-Tea");
        assert_eq!(order.total_fee, Fen::new(1999).unwrap());
        assert_eq!(
            order.openid.as_deref(),
            Some("oUser0000000000000000000000A")
        );
        assert_eq!(order.spbill_create_ip, "127.0.0.1");
        assert_eq!(
            order.time_start.map(WeChatTime::unix_seconds),
            Some(1_800_000_000)
        );
        assert_eq!(order.time_expire, None);
    }

    #[test]
    fn invalid_fields_are_refused_with_their_message() {
        type Change = fn(&mut pb::CreatePrepayRequest);
        let cases: [(Change, &str); 6] = [
            (|r| r.amount_fen = 0, "amount_fen must be positive"),
            (|r| r.amount_fen = -5, "amount_fen must be positive"),
            (
                |r| r.description = "  ".into(),
                "description must be 1 to 127 characters",
            ),
            (
                |r| r.openid = String::new(),
                "openid must be 1 to 128 characters",
            ),
            (
                |r| r.client_ip = "nowhere".into(),
                "client_ip is not an IP address",
            ),
            (
                |r| r.reuse_prepay_id = "wx/../x".into(),
                "reuse_prepay_id is not a prepay_id",
            ),
        ];
        for (change, message) in cases {
            let mut r = request();
            change(&mut r);
            assert_eq!(refusal(r), message);
        }
        let mut r = request();
        r.out_trade_no = "bad no".into();
        assert!(refusal(r).contains("out_trade_no"));
    }

    #[test]
    fn a_reuse_checks_only_the_number_the_amount_and_the_prepay_id() {
        let r = pb::CreatePrepayRequest {
            reuse_prepay_id: "wx2017033010242291fcfe0db70013231072".into(),
            description: String::new(),
            openid: String::new(),
            ..request()
        };
        let PrepayRequest::Reuse { prepay_id, .. } = PrepayRequest::try_from(r).unwrap() else {
            panic!("expected a reuse")
        };
        assert_eq!(prepay_id, "wx2017033010242291fcfe0db70013231072");
    }

    #[test]
    fn a_paid_query_answer_keeps_its_facts() {
        let answer = OrderQueryResponse {
            appid: "wxd930ea5d5a258f4f".into(),
            mch_id: "10000100".into(),
            trade_state: TradeState::Success,
            trade_state_desc: None,
            out_trade_no: OutTradeNo::parse("GW0000000001").unwrap(),
            attach: None,
            transaction_id: Some("4200000000000000000000000001".into()),
            total_fee: Some(Fen::new(1999).unwrap()),
            cash_fee: None,
            fee_type: None,
            openid: Some("oUser0000000000000000000000A".into()),
            trade_type: None,
            bank_type: None,
            time_end: Some(WeChatTime::from_unix(1_800_000_000).unwrap()),
            extra: Default::default(),
        };
        let q = query_answer(answer);
        assert_eq!(q.state(), pb::TradeState::Success);
        assert_eq!(q.amount_fen, 1999);
        assert_eq!(q.transaction_id, "4200000000000000000000000001");
        assert_eq!(q.paid_at_unix, 1_800_000_000);
    }
}
