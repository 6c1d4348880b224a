//! The client of pay-gateway-svc, and the one place its statuses become order-svc errors.

use std::time::Duration;

use proto::paygateway::v1 as pb;
use proto::paygateway::v1::pay_gateway_client::PayGatewayClient;
use service_runtime::telemetry::inject_trace_id;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::error::AppError;

type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, Status>;

/// pay-gateway-svc, reached over a lazily connected channel (order-svc starts and serves
/// even while pay-gateway-svc is down; payment calls then answer 503).
#[derive(Debug, Clone)]
pub struct Payments {
    client: PayGatewayClient<InterceptedService<Channel, Interceptor>>,
}

impl Payments {
    /// A client for `url`; every call gives up after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|e| format!("PAY_GATEWAY_URL: {e}"))?
            .connect_timeout(Duration::from_secs(2).min(timeout))
            .timeout(timeout)
            .connect_lazy();
        let interceptor: Interceptor = inject_trace_id;
        Ok(Payments {
            client: PayGatewayClient::with_interceptor(channel, interceptor),
        })
    }

    /// jscode2session through the gateway.
    pub async fn code2session(&self, js_code: &str) -> Result<pb::Code2SessionResponse, AppError> {
        let request = pb::Code2SessionRequest {
            js_code: js_code.to_owned(),
        };
        self.client
            .clone()
            .code2_session(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(from_status)
    }

    /// CreatePrepay through the gateway.
    pub async fn create_prepay(
        &self,
        request: pb::CreatePrepayRequest,
    ) -> Result<pb::CreatePrepayResponse, AppError> {
        self.client
            .clone()
            .create_prepay(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(from_status)
    }
}

/// The single mapping from pay-gateway-svc's statuses to order-svc's errors.
fn from_status(status: Status) -> AppError {
    let reason = status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default();
    match (status.code(), reason.as_str()) {
        (Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled, _) => {
            tracing::warn!(code = ?status.code(), reason, message = status.message(), "pay-gateway-svc unavailable");
            AppError::PaymentUnavailable
        }
        (Code::InvalidArgument, "INVALID_CODE" | "CODE_USED") | (Code::PermissionDenied, _) => {
            AppError::LoginFailed(status.message().to_owned())
        }
        (Code::ResourceExhausted, _) => AppError::RateLimited(status.message().to_owned()),
        (Code::FailedPrecondition, "ORDER_PAID") => AppError::OrderNotPayable(
            "WeChat says this order is already paid; its status will update shortly".into(),
        ),
        (Code::FailedPrecondition, "ORDER_CLOSED") => {
            AppError::OrderNotPayable("the order is closed at WeChat".into())
        }
        (code, reason) => {
            tracing::error!(code = ?code, reason, message = status.message(), "pay-gateway-svc refused the call");
            AppError::PaymentRefused
        }
    }
}

/// What an order query found.
#[derive(Debug)]
pub enum QueryOutcome {
    /// WeChat knows the order.
    Found(pb::QueryPaymentResponse),
    /// WeChat has no such order (it never got a unified order for it).
    NotFound,
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

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

impl Payments {
    /// Order query through the gateway.
    pub async fn query_payment(&self, out_trade_no: &str) -> Result<QueryOutcome, AppError> {
        let request = pb::QueryPaymentRequest {
            out_trade_no: out_trade_no.to_owned(),
        };
        match self.client.clone().query_payment(request).await {
            Ok(r) => Ok(QueryOutcome::Found(r.into_inner())),
            Err(s) if s.code() == Code::NotFound && reason(&s) == "ORDER_NOT_EXIST" => {
                Ok(QueryOutcome::NotFound)
            }
            Err(s) => Err(from_status(s)),
        }
    }

    /// Close order through the gateway.
    pub async fn close_payment(&self, out_trade_no: &str) -> Result<CloseOutcome, AppError> {
        let request = pb::ClosePaymentRequest {
            out_trade_no: out_trade_no.to_owned(),
        };
        match self.client.clone().close_payment(request).await {
            Ok(_) => Ok(CloseOutcome::Closed),
            Err(s) if s.code() == Code::FailedPrecondition && reason(&s) == "ORDER_PAID" => {
                Ok(CloseOutcome::AlreadyPaid)
            }
            Err(s) if s.code() == Code::NotFound && reason(&s) == "ORDER_NOT_EXIST" => {
                Ok(CloseOutcome::NotFound)
            }
            Err(s) => Err(from_status(s)),
        }
    }
}
