//! The `PayGateway` gRPC service over the protocol library: each call converts the request
//! (`crate::convert`), calls WeChat, converts the answer.
//!
//! Each call has a span with the order number (the log line lists every enclosing span, so
//! the request's trace id is there too); the methods answer `Status` so that a failure is
//! mapped, and logged, inside that span.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::paygateway::v1 as pb;
use proto::paygateway::v1::pay_gateway_server::PayGateway;
use proto::paygateway::v1::reason;
use service_runtime::telemetry::grpc_call;
use tonic::{Request, Response, Status};
use tracing::field::display;
use wechat_pay::login::{LoginClient, LoginError};
use wechat_pay::v2::{
    self, Client, ClientConfig, CloseOrderRequest, ErrCode, Merchant, OrderQueryRequest,
    RefundQueryRequest, RequestPayment, RetryPolicy,
};
use wechat_pay::v3;

use crate::convert::{self, PrepayRequest};
use crate::error::GatewayError;
use crate::settings::WeChatSettings;
use crate::{SERVICE, StartError};

/// One merchant, its v2 client (every call under v2; the daily bill under v3 too), its v3
/// client when it speaks v3, and its login client.
#[derive(Debug, Clone)]
pub(crate) struct Gateway {
    pay: Client,
    v3: Option<v3::Client>,
    login: LoginClient,
    settings: WeChatSettings,
}

impl Gateway {
    pub(crate) fn new(settings: WeChatSettings) -> Result<Self, StartError> {
        let merchant = Merchant {
            appid: settings.appid.clone(),
            mch_id: settings.mch_id.clone(),
            key: settings.api_key.clone(),
            sign_type: settings.sign_type,
        };
        let mut config = ClientConfig::new(settings.pay_base_url.clone());
        config.timeout = settings.timeout;
        let retry = RetryPolicy {
            max_attempts: settings.retry_attempts,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            deadline: settings.retry_deadline,
        };
        config.retry = retry;
        config.identity = settings
            .merchant_cert
            .as_ref()
            .map(|c| c.identity().clone());
        config.extra_roots.clone_from(&settings.extra_roots);
        let pay = Client::new(merchant, config).map_err(StartError::PayClient)?;
        let v3 = settings
            .v3
            .as_ref()
            .map(|v3_settings| {
                let verifier = v3::Verifier::new();
                if let Some((id, key)) = &v3_settings.public_key {
                    verifier.set_public_key(id, key.clone());
                }
                let mut config = v3::ClientConfig::new(settings.pay_base_url.clone());
                config.timeout = settings.timeout;
                config.retry = retry;
                config.extra_roots.clone_from(&settings.extra_roots);
                config.platform_certificates = v3_settings.platform_certificates;
                let merchant = v3::Merchant {
                    appid: settings.appid.clone(),
                    mchid: settings.mch_id.clone(),
                    key: Arc::clone(&v3_settings.key),
                    api_v3_key: v3_settings.api_v3_key.clone(),
                };
                v3::Client::new(merchant, verifier, config)
            })
            .transpose()
            .map_err(StartError::PayClientV3)?;
        let login = LoginClient::new(
            settings.login_base_url.clone(),
            settings.appid.clone(),
            settings.app_secret.clone(),
            settings.timeout,
        )
        .map_err(StartError::LoginClient)?
        .with_retry(retry);
        Ok(Gateway {
            pay,
            v3,
            login,
            settings,
        })
    }

    /// Under v3 with platform certificates, fetches them once before serving. A failure is
    /// logged, not fatal: answers naming an unknown certificate fetch them again, and until
    /// then they are refused (never trusted).
    pub(crate) async fn prepare(&self) {
        if let Some(client) = self.v3_certificates() {
            match client.refresh_certificates().await {
                Ok(count) => tracing::info!(count = ?count, "platform certificates fetched"),
                Err(e) => {
                    tracing::warn!(error = %e, "platform certificates could not be fetched at start; answers signed with one are refused until a later fetch")
                }
            }
        }
    }

    /// The v3 client, when it fetches platform certificates.
    fn v3_certificates(&self) -> Option<&v3::Client> {
        self.v3.as_ref().filter(|_| {
            self.settings
                .v3
                .as_ref()
                .is_some_and(|s| s.platform_certificates)
        })
    }

    async fn list_platform_certificates(
        &self,
        request: pb::ListPlatformCertificatesRequest,
    ) -> Result<pb::ListPlatformCertificatesResponse, Status> {
        let Some(client) = self.v3_certificates() else {
            return Ok(pb::ListPlatformCertificatesResponse::default());
        };
        if request.refresh {
            observe("certificates", client.refresh_certificates(), v3_result)
                .await
                .map_err(wechat_v3("certificates", false))?;
        }
        Ok(convert::certificates_answer(
            client.verifier().certificates(),
        ))
    }

    async fn code2session(
        &self,
        request: pb::Code2SessionRequest,
    ) -> Result<pb::Code2SessionResponse, Status> {
        let session = observe(
            "jscode2session",
            self.login.code2session(&request.js_code),
            login_result,
        )
        .await
        .map_err(GatewayError::Login)?;
        tracing::info!("user logged in");
        Ok(convert::login_answer(session))
    }

    #[tracing::instrument(skip_all, fields(out_trade_no))]
    async fn create_prepay(
        &self,
        request: pb::CreatePrepayRequest,
    ) -> Result<pb::CreatePrepayResponse, Status> {
        let request = PrepayRequest::try_from(request)?;
        tracing::Span::current().record("out_trade_no", display(request.out_trade_no()));
        if let Some(client) = &self.v3 {
            let (prepay_id, expires_at_unix) = match request {
                PrepayRequest::Reuse { prepay_id, .. } => (prepay_id, 0),
                PrepayRequest::New(order) => {
                    let order = order.jsapi_prepay(&self.settings.notify_url);
                    let answer = observe("jsapi", client.jsapi_prepay(&order), v3_result)
                        .await
                        .map_err(wechat_v3("jsapi", false))?;
                    tracing::info!("prepay created");
                    (answer.prepay_id, self.prepay_expiry())
                }
            };
            let payment = client.request_payment(&prepay_id);
            return Ok(convert::prepay_answer(prepay_id, payment, expires_at_unix));
        }
        let (prepay_id, expires_at_unix) = match request {
            PrepayRequest::Reuse { prepay_id, .. } => (prepay_id, 0),
            PrepayRequest::New(order) => {
                let order = order.unified_order(&self.settings.notify_url);
                let answer = observe("unifiedorder", self.pay.unified_order(&order), v2_result)
                    .await
                    .map_err(wechat("unifiedorder"))?;
                tracing::info!("prepay created");
                (answer.prepay_id, self.prepay_expiry())
            }
        };
        let payment = RequestPayment::new(
            &self.settings.appid,
            &prepay_id,
            self.settings.sign_type,
            &self.settings.api_key,
        );
        Ok(convert::prepay_answer(prepay_id, payment, expires_at_unix))
    }

    #[tracing::instrument(skip_all, fields(out_trade_no))]
    async fn query_payment(
        &self,
        request: pb::QueryPaymentRequest,
    ) -> Result<pb::QueryPaymentResponse, Status> {
        let out_trade_no = convert::out_trade_no(request.out_trade_no)?;
        tracing::Span::current().record("out_trade_no", display(&out_trade_no));
        if let Some(client) = &self.v3 {
            let answer = observe(
                "query",
                client.query_by_out_trade_no(&out_trade_no),
                v3_result,
            )
            .await
            .map_err(wechat_v3("query", false))?;
            return Ok(convert::v3_query_answer(answer));
        }
        let query = OrderQueryRequest::by_out_trade_no(out_trade_no);
        let answer = observe("orderquery", self.pay.order_query(&query), v2_result)
            .await
            .map_err(wechat("orderquery"))?;
        Ok(convert::query_answer(answer))
    }

    #[tracing::instrument(skip_all, fields(out_trade_no))]
    async fn close_payment(
        &self,
        request: pb::ClosePaymentRequest,
    ) -> Result<pb::ClosePaymentResponse, Status> {
        let out_trade_no = convert::out_trade_no(request.out_trade_no)?;
        tracing::Span::current().record("out_trade_no", display(&out_trade_no));
        if let Some(client) = &self.v3 {
            let already_closed = match observe("close", client.close(&out_trade_no), v3_result)
                .await
                .map_err(|e| convert::v3_error(e, false))
            {
                Ok(()) => false,
                Err(v2::Error::Business {
                    code: ErrCode::OrderClosed,
                    ..
                }) => true,
                Err(source) => return Err(wechat("close")(source).into()),
            };
            return Ok(pb::ClosePaymentResponse { already_closed });
        }
        let close = CloseOrderRequest { out_trade_no };
        let already_closed =
            match observe("closeorder", self.pay.close_order(&close), v2_result).await {
                Ok(_) => false,
                // Closing twice is not an error for the caller: the order is closed either way.
                Err(v2::Error::Business {
                    code: ErrCode::OrderClosed,
                    ..
                }) => true,
                Err(source) => return Err(wechat("closeorder")(source).into()),
            };
        Ok(pb::ClosePaymentResponse { already_closed })
    }

    #[tracing::instrument(skip_all, fields(out_trade_no, out_refund_no))]
    async fn refund(&self, request: pb::RefundRequest) -> Result<pb::RefundResponse, Status> {
        if let Some(client) = &self.v3 {
            let request = convert::refund_request(request, &self.settings.refund_notify_url)?;
            if let Some(n) = &request.out_trade_no {
                tracing::Span::current().record("out_trade_no", display(n));
            }
            tracing::Span::current().record("out_refund_no", display(&request.out_refund_no));
            let request = convert::v3_refund_request(request);
            let answer = observe("refund", client.refund(&request), v3_result)
                .await
                .map_err(wechat_v3("refund", false))?;
            tracing::info!(refund_id = %answer.refund_id, refund_fen = answer.amount.refund.get(), "refund accepted by WeChat");
            return Ok(convert::v3_refund_answer(answer));
        }
        if self.settings.merchant_cert.is_none() {
            return Err(GatewayError::RefundsDisabled.into());
        }
        let request = convert::refund_request(request, &self.settings.refund_notify_url)?;
        if let Some(n) = &request.out_trade_no {
            tracing::Span::current().record("out_trade_no", display(n));
        }
        tracing::Span::current().record("out_refund_no", display(&request.out_refund_no));
        let answer = observe("refund", self.pay.refund(&request), v2_result)
            .await
            .map_err(wechat("refund"))?;
        tracing::info!(refund_id = %answer.refund_id, refund_fen = answer.refund_fee.get(), "refund accepted by WeChat");
        Ok(convert::refund_answer(answer))
    }

    #[tracing::instrument(skip_all, fields(out_refund_no))]
    async fn query_refund(
        &self,
        request: pb::QueryRefundRequest,
    ) -> Result<pb::QueryRefundResponse, Status> {
        let out_refund_no = convert::out_refund_no(request.out_refund_no)?;
        tracing::Span::current().record("out_refund_no", display(&out_refund_no));
        if let Some(client) = &self.v3 {
            let answer = observe(
                "refundquery",
                client.query_refund(&out_refund_no),
                v3_result,
            )
            .await
            .map_err(wechat_v3("refundquery", true))?;
            return Ok(convert::v3_refund_query_answer(answer));
        }
        let query = RefundQueryRequest::by_out_refund_no(out_refund_no.clone());
        let answer = observe("refundquery", self.pay.refund_query(&query), v2_result)
            .await
            .map_err(wechat("refundquery"))?;
        convert::refund_query_answer(&answer, &out_refund_no).ok_or_else(|| {
            crate::error::status(
                tonic::Code::NotFound,
                reason::REFUND_NOT_EXIST,
                "WeChat's answer does not list this refund",
            )
        })
    }

    async fn download_bill(
        &self,
        request: pb::DownloadBillRequest,
    ) -> Result<pb::DownloadBillResponse, Status> {
        let bill_date = convert::bill_date(&request.date)?;
        let request = v2::DownloadBillRequest {
            bill_date,
            bill_type: v2::BillType::All,
            gzip: true,
        };
        let answer = observe("downloadbill", self.pay.download_bill(&request), v2_result)
            .await
            .map_err(wechat("downloadbill"))?;
        Ok(convert::bill_answer(answer))
    }

    /// When a prepay_id issued now stops being valid (WeChat says 2 hours by default).
    fn prepay_expiry(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        now.saturating_add(i64::try_from(self.settings.prepay_ttl.as_secs()).unwrap_or(i64::MAX))
    }
}

fn wechat(endpoint: &'static str) -> impl FnOnce(v2::Error) -> GatewayError {
    move |source| GatewayError::WeChat { endpoint, source }
}

/// A v3 failure of `endpoint` in the gateway's one vocabulary (`refund`: "not found" is the
/// refund's; [`convert::v3_error`]).
fn wechat_v3(endpoint: &'static str, refund: bool) -> impl FnOnce(v3::Error) -> GatewayError {
    move |source| wechat(endpoint)(convert::v3_error(source, refund))
}

fn v3_result(e: &v3::Error) -> &str {
    match e {
        v3::Error::Api { code, .. } if !code.is_empty() => code,
        v3::Error::Api { .. } => "http_status",
        v3::Error::Transport(_) => "transport",
        v3::Error::Signature(_) => "bad_signature",
        _ => "error",
    }
}

fn login_result(e: &LoginError) -> &str {
    match e {
        LoginError::Busy => "busy",
        LoginError::Transport(_) => "transport",
        _ => "refused",
    }
}

fn v2_result(e: &v2::Error) -> &str {
    match e {
        v2::Error::Business { code, .. } => code.as_str(),
        v2::Error::Transport(_) => "transport",
        v2::Error::HttpStatus { .. } => "http_status",
        v2::Error::Signature(_) => "bad_signature",
        _ => "error",
    }
}

/// Times a WeChat call and counts it by endpoint and result
/// (`wechat_calls_total`, `wechat_call_duration_seconds`).
async fn observe<T, E>(
    endpoint: &'static str,
    call: impl Future<Output = Result<T, E>>,
    result_of: impl Fn(&E) -> &str,
) -> Result<T, E> {
    let started = Instant::now();
    let result = call.await;
    let outcome = match &result {
        Ok(_) => "success".to_owned(),
        Err(e) => result_of(e).to_owned(),
    };
    let labels = [("endpoint", endpoint.to_owned()), ("result", outcome)];
    metrics::counter!("wechat_calls_total", &labels).increment(1);
    metrics::histogram!("wechat_call_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    result
}

#[tonic::async_trait]
impl PayGateway for Gateway {
    async fn code2_session(
        &self,
        request: Request<pb::Code2SessionRequest>,
    ) -> Result<Response<pb::Code2SessionResponse>, Status> {
        grpc_call(SERVICE, "Code2Session", &request, async {
            self.code2session(request.get_ref().clone())
                .await
                .map(Response::new)
        })
        .await
    }

    async fn create_prepay(
        &self,
        request: Request<pb::CreatePrepayRequest>,
    ) -> Result<Response<pb::CreatePrepayResponse>, Status> {
        grpc_call(SERVICE, "CreatePrepay", &request, async {
            self.create_prepay(request.get_ref().clone())
                .await
                .map(Response::new)
        })
        .await
    }

    async fn query_payment(
        &self,
        request: Request<pb::QueryPaymentRequest>,
    ) -> Result<Response<pb::QueryPaymentResponse>, Status> {
        grpc_call(SERVICE, "QueryPayment", &request, async {
            self.query_payment(request.get_ref().clone())
                .await
                .map(Response::new)
        })
        .await
    }

    async fn close_payment(
        &self,
        request: Request<pb::ClosePaymentRequest>,
    ) -> Result<Response<pb::ClosePaymentResponse>, Status> {
        grpc_call(SERVICE, "ClosePayment", &request, async {
            self.close_payment(request.get_ref().clone())
                .await
                .map(Response::new)
        })
        .await
    }

    async fn refund(
        &self,
        request: Request<pb::RefundRequest>,
    ) -> Result<Response<pb::RefundResponse>, Status> {
        grpc_call(SERVICE, "Refund", &request, async {
            self.refund(request.get_ref().clone())
                .await
                .map(Response::new)
        })
        .await
    }

    async fn download_bill(
        &self,
        request: Request<pb::DownloadBillRequest>,
    ) -> Result<Response<pb::DownloadBillResponse>, Status> {
        grpc_call(SERVICE, "DownloadBill", &request, async {
            self.download_bill(request.get_ref().clone())
                .await
                .map(Response::new)
        })
        .await
    }

    async fn list_platform_certificates(
        &self,
        request: Request<pb::ListPlatformCertificatesRequest>,
    ) -> Result<Response<pb::ListPlatformCertificatesResponse>, Status> {
        grpc_call(SERVICE, "ListPlatformCertificates", &request, async {
            self.list_platform_certificates(*request.get_ref())
                .await
                .map(Response::new)
        })
        .await
    }

    async fn query_refund(
        &self,
        request: Request<pb::QueryRefundRequest>,
    ) -> Result<Response<pb::QueryRefundResponse>, Status> {
        grpc_call(SERVICE, "QueryRefund", &request, async {
            self.query_refund(request.get_ref().clone())
                .await
                .map(Response::new)
        })
        .await
    }
}
