//! The client of pay-gateway-svc, and the one place its statuses become order-svc errors.
//! Requests and answers cross as domain types; `crate::convert` does the wire.

use std::time::Duration;

use proto::paygateway::v1 as pb;
use proto::paygateway::v1::pay_gateway_client::PayGatewayClient;
use proto::paygateway::v1::reason;
use service_runtime::grpc_auth::{ClientAuth, GrpcToken};
use time::OffsetDateTime;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use wechat_pay::{OpenId, OutTradeNo};

use crate::convert;
use crate::domain::reconciliation::BillLine;
use crate::domain::{LoginCode, Order, PaymentFacts, Refund, RefundResult, RefundStatus};
use crate::error::AppError;

/// `PAY_GATEWAY_URL` is not a URL tonic can connect to.
#[derive(Debug, thiserror::Error)]
#[error("PAY_GATEWAY_URL is not a valid endpoint")]
pub struct InvalidGatewayUrl(#[source] tonic::transport::Error);

/// A prepay session and the object the Mini Program passes to `wx.requestPayment`.
#[derive(Debug, Clone)]
pub struct Prepay {
    /// WeChat's prepay id.
    pub prepay_id: String,
    /// When it stops being valid.
    pub expires_at: OffsetDateTime,
    /// The `wx.requestPayment` object, signed by pay-gateway-svc.
    pub payment: pb::RequestPayment,
}

/// What closing at WeChat did.
#[derive(Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    /// Closed now, or it was already closed.
    Closed,
    /// WeChat says it is paid: it must not be closed.
    AlreadyPaid,
    /// WeChat has no such order: nothing to close there.
    NotFound,
}

/// What WeChat did with a refund sent to it.
#[derive(Debug, PartialEq, Eq)]
pub enum RefundSent {
    /// Accepted (PROCESSING), under WeChat's number.
    Accepted {
        /// WeChat's number.
        refund_id: String,
    },
    /// Refused for good (more than is left at WeChat, an order too old, refunds disabled at
    /// pay-gateway-svc): nothing moved. Why, in words.
    Refused(String),
}

/// A refund as WeChat's refund query reports it.
#[derive(Debug, PartialEq, Eq)]
pub enum RefundAtWeChat {
    /// Accepted and not final yet.
    Processing,
    /// Final.
    Done(RefundResult),
}

/// pay-gateway-svc, reached over a lazily connected channel (order-svc starts and serves
/// even while pay-gateway-svc is down; payment calls then answer 503).
#[derive(Debug, Clone)]
pub struct Payments {
    client: PayGatewayClient<InterceptedService<Channel, ClientAuth>>,
}

fn reason_of(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// The single mapping from pay-gateway-svc's statuses to order-svc's errors.
fn from_status(status: Status) -> AppError {
    match (status.code(), reason_of(&status).as_str()) {
        (Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled, _) => {
            AppError::PaymentUnavailable(Box::new(status))
        }
        (Code::InvalidArgument, reason::INVALID_CODE | reason::CODE_USED)
        | (Code::PermissionDenied, _) => AppError::LoginFailed(status.message().to_owned()),
        (Code::ResourceExhausted, _) => AppError::RateLimited(status.message().to_owned()),
        (Code::FailedPrecondition, reason::ORDER_PAID) => AppError::OrderNotPayable(
            "WeChat says this order is already paid; its status will update shortly".into(),
        ),
        (Code::FailedPrecondition, reason::ORDER_CLOSED) => {
            AppError::OrderNotPayable("the order is closed at WeChat".into())
        }
        _ => AppError::PaymentRefused(Box::new(status)),
    }
}

fn is(status: &Status, code: Code, expected: &str) -> bool {
    status.code() == code && reason_of(status) == expected
}

impl Payments {
    /// A client for `url`, sending `token`; every call gives up after `timeout`.
    pub fn new(
        url: &str,
        token: Option<&GrpcToken>,
        timeout: Duration,
    ) -> Result<Self, InvalidGatewayUrl> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(InvalidGatewayUrl)?
            .connect_timeout(Duration::from_secs(2).min(timeout))
            .timeout(timeout)
            .connect_lazy();
        Ok(Payments {
            client: PayGatewayClient::with_interceptor(channel, ClientAuth::new(token)),
        })
    }

    /// The openid of the user who got `code` from `wx.login`.
    pub async fn code2session(&self, code: &LoginCode) -> Result<OpenId, AppError> {
        let request = pb::Code2SessionRequest {
            js_code: code.as_str().to_owned(),
        };
        let answer = self
            .client
            .clone()
            .code2_session(request)
            .await
            .map_err(from_status)?
            .into_inner();
        convert::openid(answer).map_err(|e| AppError::internal("login answer", e))
    }

    /// A prepay for `order` (or `reuse`, a prepay_id still valid for it, re-signed).
    pub async fn create_prepay(
        &self,
        order: &Order,
        description: &str,
        reuse: Option<&str>,
    ) -> Result<Prepay, AppError> {
        let answer = self
            .client
            .clone()
            .create_prepay(convert::prepay_request(order, description, reuse))
            .await
            .map_err(from_status)?
            .into_inner();
        let expires_at = OffsetDateTime::from_unix_timestamp(answer.prepay_expires_at_unix)
            .map_err(|e| AppError::internal("prepay answer: prepay_expires_at_unix", e))?;
        let payment = answer
            .payment
            .ok_or_else(|| AppError::internal("prepay answer", "no payment object"))?;
        Ok(Prepay {
            prepay_id: answer.prepay_id,
            expires_at,
            payment,
        })
    }

    /// The payment WeChat reports for `out_trade_no`, if it was paid (`None` when it is
    /// unpaid or WeChat never saw the order).
    pub async fn paid_at_wechat(
        &self,
        out_trade_no: &OutTradeNo,
    ) -> Result<Option<PaymentFacts>, AppError> {
        let request = pb::QueryPaymentRequest {
            out_trade_no: out_trade_no.to_string(),
        };
        match self.client.clone().query_payment(request).await {
            Ok(answer) => convert::paid_facts(answer.into_inner())
                .map_err(|e| AppError::internal("order query answer", e)),
            Err(s) if is(&s, Code::NotFound, reason::ORDER_NOT_EXIST) => Ok(None),
            Err(s) => Err(from_status(s)),
        }
    }

    /// Sends `refund` of `order` to WeChat (again, with the same number, if it was sent
    /// before: the same refund). A passing failure is `PaymentUnavailable`: send it again
    /// later.
    pub async fn refund(&self, order: &Order, refund: &Refund) -> Result<RefundSent, AppError> {
        let request = pb::RefundRequest {
            out_trade_no: order.out_trade_no.to_string(),
            out_refund_no: refund.out_refund_no.to_string(),
            total_fen: order.amount.as_i64(),
            refund_fen: refund.amount.as_i64(),
            reason: refund.reason.clone(),
        };
        match self.client.clone().refund(request).await {
            Ok(answer) => Ok(RefundSent::Accepted {
                refund_id: answer.into_inner().refund_id,
            }),
            Err(s)
                if matches!(
                    s.code(),
                    Code::FailedPrecondition
                        | Code::InvalidArgument
                        | Code::NotFound
                        | Code::AlreadyExists
                ) =>
            {
                Ok(RefundSent::Refused(format!(
                    "{}: {}",
                    reason_of(&s),
                    s.message()
                )))
            }
            Err(s) => Err(from_status(s)),
        }
    }

    /// The state of the refund numbered `out_refund_no` at WeChat; `None` when WeChat has
    /// no such refund.
    pub async fn refund_at_wechat(
        &self,
        out_refund_no: &wechat_pay::OutRefundNo,
    ) -> Result<Option<RefundAtWeChat>, AppError> {
        let request = pb::QueryRefundRequest {
            out_refund_no: out_refund_no.to_string(),
        };
        let answer = match self.client.clone().query_refund(request).await {
            Ok(answer) => answer.into_inner(),
            Err(s) if is(&s, Code::NotFound, reason::REFUND_NOT_EXIST) => return Ok(None),
            Err(s) => return Err(from_status(s)),
        };
        let status = match answer.state() {
            pb::RefundState::Processing => return Ok(Some(RefundAtWeChat::Processing)),
            pb::RefundState::Success => RefundStatus::Success,
            pb::RefundState::Change => RefundStatus::Change,
            pb::RefundState::Closed => RefundStatus::Refundclose,
            pb::RefundState::Unspecified => {
                return Err(AppError::internal("refund query answer", "no state"));
            }
        };
        let invalid = |e: wechat_pay::IdError| AppError::internal("refund query answer", e);
        Ok(Some(RefundAtWeChat::Done(RefundResult {
            out_refund_no: wechat_pay::OutRefundNo::parse(answer.out_refund_no).map_err(invalid)?,
            out_trade_no: OutTradeNo::parse(answer.out_trade_no).map_err(invalid)?,
            refund_id: answer.refund_id,
            amount: wechat_pay::Fen::from_i64(answer.refund_fen)
                .map_err(|e| AppError::internal("refund query answer", e))?,
            status,
        })))
    }

    /// WeChat's bill of Beijing-time day `day` (checked against its summary by
    /// pay-gateway-svc): its lines and totals, `None` for a day without any.
    pub async fn bill(
        &self,
        day: time::Date,
    ) -> Result<Option<(Vec<BillLine>, pb::BillTotals)>, AppError> {
        let request = pb::DownloadBillRequest {
            date: day.to_string(),
        };
        let answer = self
            .client
            .clone()
            .download_bill(request)
            .await
            .map_err(from_status)?
            .into_inner();
        if answer.no_bill {
            return Ok(None);
        }
        let lines = answer
            .lines
            .into_iter()
            .map(|l| BillLine {
                refund: l.kind() == pb::BillLineKind::Refund,
                out_trade_no: l.out_trade_no,
                transaction_id: l.transaction_id,
                order_fen: l.order_fen,
                out_refund_no: l.out_refund_no,
                refund_fen: l.refund_fen,
                refund_status: l.refund_status,
            })
            .collect();
        Ok(Some((lines, answer.totals.unwrap_or_default())))
    }

    /// Closes `out_trade_no` at WeChat.
    pub async fn close_payment(&self, out_trade_no: &OutTradeNo) -> Result<CloseOutcome, AppError> {
        let request = pb::ClosePaymentRequest {
            out_trade_no: out_trade_no.to_string(),
        };
        match self.client.clone().close_payment(request).await {
            Ok(_) => Ok(CloseOutcome::Closed),
            Err(s) if is(&s, Code::FailedPrecondition, reason::ORDER_PAID) => {
                Ok(CloseOutcome::AlreadyPaid)
            }
            Err(s) if is(&s, Code::NotFound, reason::ORDER_NOT_EXIST) => Ok(CloseOutcome::NotFound),
            Err(s) => Err(from_status(s)),
        }
    }
}
