//! The `PayGateway` gRPC service over the protocol library.

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::paygateway::v1 as pb;
use proto::paygateway::v1::pay_gateway_server::PayGateway;
use service_runtime::telemetry::grpc_call;
use tonic::{Request, Response, Status};
use wechat_pay::login::{LoginClient, LoginError};
use wechat_pay::v2::{
    self, Client, ClientConfig, CloseOrderRequest, ErrCode, Merchant, OrderQueryRequest,
    RequestPayment, RetryPolicy, TradeState, UnifiedOrderRequest,
};
use wechat_pay::{Fen, OutTradeNo, WeChatTime};

use crate::error::GatewayError;
use crate::settings::WeChatSettings;

const SERVICE: &str = "pay-gateway-svc";

/// The gateway: one merchant, its v2 client and its login client.
#[derive(Debug, Clone)]
pub struct Gateway {
    pay: Client,
    login: LoginClient,
    settings: WeChatSettings,
}

impl Gateway {
    /// Builds the clients from the settings.
    pub fn new(settings: WeChatSettings) -> Result<Self, GatewayError> {
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
        let pay = Client::new(merchant, config).map_err(|source| GatewayError::WeChat {
            endpoint: "client",
            source,
        })?;
        let login = LoginClient::new(
            settings.login_base_url.clone(),
            settings.appid.clone(),
            settings.app_secret.clone(),
            settings.timeout,
        )?
        .with_retry(retry);
        Ok(Gateway {
            pay,
            login,
            settings,
        })
    }

    async fn code2session(
        &self,
        request: pb::Code2SessionRequest,
    ) -> Result<pb::Code2SessionResponse, GatewayError> {
        let session = observe(
            "jscode2session",
            self.login.code2session(&request.js_code),
            |e: &LoginError| match e {
                LoginError::Busy => "busy",
                LoginError::Transport(_) => "transport",
                _ => "refused",
            },
        )
        .await?;
        tracing::info!("user logged in");
        Ok(pb::Code2SessionResponse {
            openid: session.openid,
            unionid: session.unionid.unwrap_or_default(),
        })
    }

    async fn create_prepay(
        &self,
        request: pb::CreatePrepayRequest,
    ) -> Result<pb::CreatePrepayResponse, GatewayError> {
        let invalid = |m: &str| GatewayError::InvalidArgument(m.to_owned());
        let out_trade_no = OutTradeNo::parse(request.out_trade_no)
            .map_err(|e| GatewayError::InvalidArgument(e.to_string()))?;
        let amount = Fen::from_i64(request.amount_fen)
            .map_err(|_| invalid("amount_fen must be positive"))?;
        if amount.is_zero() {
            return Err(invalid("amount_fen must be positive"));
        }
        if !request.reuse_prepay_id.is_empty() {
            let reuse = &request.reuse_prepay_id;
            if reuse.len() > 64 || !reuse.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid("reuse_prepay_id is not a prepay_id"));
            }
            let payment = RequestPayment::new(
                &self.settings.appid,
                reuse,
                self.settings.sign_type,
                &self.settings.api_key,
            );
            return Ok(pb::CreatePrepayResponse {
                prepay_id: reuse.clone(),
                payment: Some(to_pb(payment)),
                prepay_expires_at_unix: 0,
            });
        }
        let description = request.description.trim();
        if description.is_empty() || description.chars().count() > 127 {
            return Err(invalid("description must be 1 to 127 characters"));
        }
        if request.openid.is_empty() || request.openid.len() > 128 {
            return Err(invalid("openid must be 1 to 128 characters"));
        }
        let client_ip: IpAddr = if request.client_ip.is_empty() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            request
                .client_ip
                .parse()
                .map_err(|_| invalid("client_ip is not an IP address"))?
        };
        let time = |secs: i64| {
            (secs > 0)
                .then(|| WeChatTime::from_unix(secs))
                .transpose()
                .map_err(|_| invalid("time out of range"))
        };
        let mut order = UnifiedOrderRequest::jsapi(
            out_trade_no.clone(),
            description,
            amount,
            request.openid,
            self.settings.notify_url.clone(),
            client_ip.to_string(),
        );
        order.time_start = time(request.time_start_unix)?;
        order.time_expire = time(request.time_expire_unix)?;
        let answer = observe("unifiedorder", self.pay.unified_order(&order), v2_result)
            .await
            .map_err(|source| GatewayError::WeChat {
                endpoint: "unifiedorder",
                source,
            })?;
        tracing::info!(out_trade_no = %out_trade_no, "prepay created");
        let payment = RequestPayment::new(
            &self.settings.appid,
            &answer.prepay_id,
            self.settings.sign_type,
            &self.settings.api_key,
        );
        let expires = unix_now()
            .saturating_add(i64::try_from(self.settings.prepay_ttl.as_secs()).unwrap_or(i64::MAX));
        Ok(pb::CreatePrepayResponse {
            prepay_id: answer.prepay_id,
            payment: Some(to_pb(payment)),
            prepay_expires_at_unix: expires,
        })
    }

    async fn query_payment(
        &self,
        request: pb::QueryPaymentRequest,
    ) -> Result<pb::QueryPaymentResponse, GatewayError> {
        let out_trade_no = OutTradeNo::parse(request.out_trade_no)
            .map_err(|e| GatewayError::InvalidArgument(e.to_string()))?;
        let answer = observe(
            "orderquery",
            self.pay
                .order_query(&OrderQueryRequest::by_out_trade_no(out_trade_no)),
            v2_result,
        )
        .await
        .map_err(|source| GatewayError::WeChat {
            endpoint: "orderquery",
            source,
        })?;
        Ok(pb::QueryPaymentResponse {
            state: trade_state(answer.trade_state) as i32,
            out_trade_no: answer.out_trade_no.to_string(),
            transaction_id: answer.transaction_id.unwrap_or_default(),
            amount_fen: answer.total_fee.map_or(0, Fen::as_i64),
            appid: answer.appid,
            mch_id: answer.mch_id,
            openid: answer.openid.unwrap_or_default(),
            paid_at_unix: answer.time_end.map_or(0, WeChatTime::unix_seconds),
        })
    }

    async fn close_payment(
        &self,
        request: pb::ClosePaymentRequest,
    ) -> Result<pb::ClosePaymentResponse, GatewayError> {
        let out_trade_no = OutTradeNo::parse(request.out_trade_no)
            .map_err(|e| GatewayError::InvalidArgument(e.to_string()))?;
        match observe(
            "closeorder",
            self.pay.close_order(&CloseOrderRequest { out_trade_no }),
            v2_result,
        )
        .await
        {
            Ok(_) => Ok(pb::ClosePaymentResponse {
                already_closed: false,
            }),
            Err(v2::Error::Business {
                code: ErrCode::OrderClosed,
                ..
            }) => Ok(pb::ClosePaymentResponse {
                already_closed: true,
            }),
            Err(source) => Err(GatewayError::WeChat {
                endpoint: "closeorder",
                source,
            }),
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
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
            Ok(Response::new(
                self.code2session(request.get_ref().clone()).await?,
            ))
        })
        .await
    }

    async fn create_prepay(
        &self,
        request: Request<pb::CreatePrepayRequest>,
    ) -> Result<Response<pb::CreatePrepayResponse>, Status> {
        grpc_call(SERVICE, "CreatePrepay", &request, async {
            Ok(Response::new(
                self.create_prepay(request.get_ref().clone()).await?,
            ))
        })
        .await
    }

    async fn query_payment(
        &self,
        request: Request<pb::QueryPaymentRequest>,
    ) -> Result<Response<pb::QueryPaymentResponse>, Status> {
        grpc_call(SERVICE, "QueryPayment", &request, async {
            Ok(Response::new(
                self.query_payment(request.get_ref().clone()).await?,
            ))
        })
        .await
    }

    async fn close_payment(
        &self,
        request: Request<pb::ClosePaymentRequest>,
    ) -> Result<Response<pb::ClosePaymentResponse>, Status> {
        grpc_call(SERVICE, "ClosePayment", &request, async {
            Ok(Response::new(
                self.close_payment(request.get_ref().clone()).await?,
            ))
        })
        .await
    }
}
