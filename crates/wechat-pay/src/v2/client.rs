//! The async v2 client: signs every request, verifies every response before reading it,
//! and retries only what WeChat says may be retried.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::api::{
    CloseOrderRequest, CloseOrderResponse, ENVELOPE_FIELDS, Endpoint, OrderQueryRequest,
    OrderQueryResponse, SandboxSignKeyResponse, UnifiedOrderRequest, UnifiedOrderResponse,
};
use super::bill::{self, BillAnswer, BillXmlAnswer, DownloadBillRequest};
use super::error::{ErrCode, Error};
use super::message::{from_params, to_params};
use super::refund::{RefundQueryRequest, RefundQueryResponse, RefundRequest, RefundResponse};
use super::sign::{ApiKey, SignType, sign_params, verify};
use super::{Params, xml};
use crate::domain::NonceStr;
use crate::http::{TransportError, build_client_with, read_limited};
use crate::retry::{RetryPolicy, with_retries};

/// WeChat's production host for the merchant API.
pub const PRODUCTION_BASE_URL: &str = "https://api.mch.weixin.qq.com";

/// Largest response body accepted.
const MAX_RESPONSE_BYTES: usize = xml::DEFAULT_MAX_BYTES;

/// A merchant's v2 identity: the appid it sells under, its mch_id, its API key, and the
/// digest it signs with.
#[derive(Debug, Clone)]
pub struct Merchant {
    /// Mini Program AppID.
    pub appid: String,
    /// Merchant number.
    pub mch_id: String,
    /// The v2 API key (in sandbox mode, the sandbox sign key).
    pub key: ApiKey,
    /// How requests are signed (responses are verified the same way).
    pub sign_type: SignType,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where the merchant API lives: [`PRODUCTION_BASE_URL`], or a simulator.
    pub base_url: Url,
    /// Timeout of each HTTP attempt.
    pub timeout: Duration,
    /// Retries of retryable failures.
    pub retry: RetryPolicy,
    /// Use WeChat's legacy sandbox paths (`/sandboxnew/...`; the refund then goes to
    /// `/sandboxnew/secapi/pay/refund`: ⚠ the reference quotes both that and
    /// `/sandboxnew/pay/refund`; wechatpy and tenpay use the former, and so do we).
    pub sandbox: bool,
    /// The merchant's API certificate and key (`apiclient_cert.pem` + `apiclient_key.pem`),
    /// presented on every connection; the refund refuses to run without it.
    pub identity: Option<reqwest::Identity>,
    /// Certificate authorities trusted besides the system's (a simulator's test CA).
    pub extra_roots: Vec<reqwest::Certificate>,
}

impl ClientConfig {
    /// Settings for `base_url` with a 5 s timeout and the default retry policy.
    pub fn new(base_url: Url) -> Self {
        ClientConfig {
            base_url,
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            sandbox: false,
            identity: None,
            extra_roots: Vec::new(),
        }
    }
}

/// An async WeChat Pay v2 client for one merchant.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use wechat_pay::{Fen, OutTradeNo};
/// use wechat_pay::v2::{ApiKey, Client, ClientConfig, Merchant, SignType, UnifiedOrderRequest};
/// let merchant = Merchant {
///     appid: "wxd930ea5d5a258f4f".into(),
///     mch_id: "10000100".into(),
///     key: ApiKey::new("192006250b4c09247ec02edce69f6a2d")?,
///     sign_type: SignType::HmacSha256,
/// };
/// let client = Client::new(merchant, ClientConfig::new("http://127.0.0.1:8090".parse()?))?;
/// let order = UnifiedOrderRequest::jsapi(
///     OutTradeNo::parse("MP20240101000001")?, "Shop-Tea", Fen::new(1999)?,
///     "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "https://shop.example/wechat/pay/notify", "127.0.0.1",
/// );
/// let prepay = client.unified_order(&order).await?;
/// println!("prepay_id={}", prepay.prepay_id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    merchant: Merchant,
    config: ClientConfig,
}

impl Client {
    /// A client for `merchant` with `config`.
    pub fn new(merchant: Merchant, config: ClientConfig) -> Result<Self, Error> {
        let http = build_client_with(
            config.timeout,
            config.identity.as_ref(),
            &config.extra_roots,
        )
        .map_err(|e| Error::Transport(TransportError::Network(e.without_url())))?;
        Ok(Client {
            http,
            merchant,
            config,
        })
    }

    /// The merchant this client signs for.
    pub fn merchant(&self) -> &Merchant {
        &self.merchant
    }

    /// Unified order (统一下单): creates the prepay session.
    pub async fn unified_order(
        &self,
        request: &UnifiedOrderRequest,
    ) -> Result<UnifiedOrderResponse, Error> {
        if request.total_fee.is_zero() {
            return Err(Error::InvalidRequest(
                "total_fee must be greater than zero".into(),
            ));
        }
        self.call(Endpoint::UnifiedOrder, request).await
    }

    /// Order query (查询订单).
    pub async fn order_query(
        &self,
        request: &OrderQueryRequest,
    ) -> Result<OrderQueryResponse, Error> {
        if request.transaction_id.is_none() && request.out_trade_no.is_none() {
            return Err(Error::InvalidRequest(
                "give transaction_id or out_trade_no".into(),
            ));
        }
        self.call(Endpoint::OrderQuery, request).await
    }

    /// Close order (关闭订单).
    pub async fn close_order(
        &self,
        request: &CloseOrderRequest,
    ) -> Result<CloseOrderResponse, Error> {
        self.call(Endpoint::CloseOrder, request).await
    }

    /// Refund (申请退款): accepted, not done; the outcome comes by notification or
    /// [`Client::refund_query`]. Retry a failure with the same request (the same
    /// `out_refund_no`). Needs the merchant's API certificate ([`ClientConfig::identity`]).
    pub async fn refund(&self, request: &RefundRequest) -> Result<RefundResponse, Error> {
        if self.config.identity.is_none() {
            return Err(Error::InvalidRequest(
                "a refund needs the merchant API certificate (apiclient_cert.pem and apiclient_key.pem)".into(),
            ));
        }
        request.check().map_err(Error::InvalidRequest)?;
        self.call(Endpoint::Refund, request).await
    }

    /// Refund query (查询退款).
    pub async fn refund_query(
        &self,
        request: &RefundQueryRequest,
    ) -> Result<RefundQueryResponse, Error> {
        if !request.names_something() {
            return Err(Error::InvalidRequest(
                "give refund_id, out_refund_no, transaction_id or out_trade_no".into(),
            ));
        }
        let business = to_params(request).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let answer = self.call_params(Endpoint::RefundQuery, &business).await?;
        RefundQueryResponse::from_params(&answer).map_err(|e| Error::InvalidResponse(e.to_string()))
    }

    /// Download bill (下载对账单): the day's bill, checked against its summary, or
    /// [`BillAnswer::NoBill`] for a day without transactions. `System Error` (100) is retried
    /// under the client's policy like `SYSTEMERROR`. The bill is not signed: confirm what it
    /// says with a query before acting on it.
    pub async fn download_bill(&self, request: &DownloadBillRequest) -> Result<BillAnswer, Error> {
        let business = request.params();
        with_retries(&self.config.retry, Endpoint::DownloadBill.name(), || {
            let params = self.complete(&business);
            async move { self.fetch_bill(&params, request.gzip).await }
        })
        .await
    }

    async fn fetch_bill(&self, params: &Params, gzip: bool) -> Result<BillAnswer, Error> {
        let bytes = self
            .post(Endpoint::DownloadBill, params, bill::MAX_BILL_BYTES)
            .await?;
        if bill::is_xml_answer(&bytes) {
            return match bill::read_xml_answer(&bytes)? {
                BillXmlAnswer::NoBill => Ok(BillAnswer::NoBill),
                BillXmlAnswer::TryLater(message) => Err(Error::Business {
                    code: ErrCode::SystemError,
                    description: message,
                }),
                BillXmlAnswer::Refused(return_msg) => Err(Error::Protocol { return_msg }),
            };
        }
        let text = if gzip { bill::gunzip(&bytes)? } else { bytes };
        Ok(BillAnswer::Bill(bill::parse_bill(&text)?))
    }

    /// Fetches the sandbox sign key (MD5-signed with the production key, as WeChat requires).
    ///
    /// The answer must carry a valid signature (MD5, production key) like every other
    /// response; an unsigned answer is refused. Minipay's simulator signs it.
    pub async fn sandbox_sign_key(&self) -> Result<ApiKey, Error> {
        let mut params = Params::new();
        params.insert("mch_id", self.merchant.mch_id.clone());
        params.insert("nonce_str", NonceStr::generate().to_string());
        sign_params(&mut params, &self.merchant.key, SignType::Md5);
        let answer = self
            .retried(Endpoint::SandboxSignKey, || {
                self.send(Endpoint::SandboxSignKey, &params, SignType::Md5)
            })
            .await?;
        let response: SandboxSignKeyResponse = typed(answer)?;
        ApiKey::new(response.sandbox_signkey).map_err(|e| Error::InvalidResponse(e.to_string()))
    }

    /// One call: the business fields of `request`, completed, signed, sent, verified, typed.
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        request: &Req,
    ) -> Result<Resp, Error> {
        let business = to_params(request).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        typed(self.call_params(endpoint, &business).await?)
    }

    /// One call with `business` fields, answered with the checked fields.
    async fn call_params(&self, endpoint: Endpoint, business: &Params) -> Result<Params, Error> {
        self.retried(endpoint, || {
            // A fresh nonce for each attempt; the business fields stay identical, which is
            // what makes a retry idempotent at WeChat.
            let params = self.complete(business);
            async move { self.send(endpoint, &params, self.merchant.sign_type).await }
        })
        .await
    }

    /// Adds the merchant fields, a nonce and the signature.
    fn complete(&self, business: &Params) -> Params {
        let mut params = business.clone();
        params.insert("appid", self.merchant.appid.clone());
        params.insert("mch_id", self.merchant.mch_id.clone());
        params.insert("nonce_str", NonceStr::generate().to_string());
        params.insert("sign_type", self.merchant.sign_type.as_str());
        sign_params(&mut params, &self.merchant.key, self.merchant.sign_type);
        params
    }

    /// Runs `attempt` under the client's retry policy (the crate's one retry mechanism).
    async fn retried<F, Fut>(&self, endpoint: Endpoint, attempt: F) -> Result<Params, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Params, Error>>,
    {
        with_retries(&self.config.retry, endpoint.name(), attempt).await
    }

    fn url(&self, endpoint: Endpoint) -> Result<Url, Error> {
        let prefix = if self.config.sandbox && endpoint != Endpoint::SandboxSignKey {
            "/sandboxnew"
        } else {
            ""
        };
        let base = self.config.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{prefix}{}", endpoint.path()))
            .map_err(|e| Error::InvalidRequest(e.to_string()))
    }

    /// One HTTP attempt and the checks every answer must pass, in order: HTTP 200, a
    /// well-formed document, `return_code`, the signature, the merchant, `result_code`.
    async fn send(
        &self,
        endpoint: Endpoint,
        params: &Params,
        sign_type: SignType,
    ) -> Result<Params, Error> {
        let bytes = self.post(endpoint, params, MAX_RESPONSE_BYTES).await?;
        let answer = xml::decode(&bytes)?;
        self.check_answer(answer, sign_type)
    }

    /// One HTTP attempt: `params` as XML to `endpoint`; the body of a 200 answer, at most
    /// `limit` bytes.
    async fn post(
        &self,
        endpoint: Endpoint,
        params: &Params,
        limit: usize,
    ) -> Result<Vec<u8>, Error> {
        let body = xml::encode(params)?;
        let timeout = self.config.timeout;
        let response = self
            .http
            .post(self.url(endpoint)?)
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| TransportError::from_reqwest(e, timeout))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(Error::HttpStatus { status });
        }
        Ok(read_limited(response, limit, timeout).await?)
    }

    fn check_answer(&self, answer: Params, sign_type: SignType) -> Result<Params, Error> {
        if answer.get("return_code") != Some("SUCCESS") {
            let return_msg = answer.get("return_msg").unwrap_or("").to_owned();
            return Err(Error::Protocol { return_msg });
        }
        verify(&answer, &self.merchant.key, sign_type)?;
        for (field, ours) in [
            ("appid", &self.merchant.appid),
            ("mch_id", &self.merchant.mch_id),
        ] {
            if answer.get(field).is_some_and(|theirs| theirs != ours) {
                return Err(Error::MerchantMismatch { field });
            }
        }
        match answer.get("result_code") {
            Some("SUCCESS") | None => Ok(answer),
            Some(_) => Err(Error::Business {
                code: ErrCode::parse(answer.get("err_code").unwrap_or("")),
                description: answer.get("err_code_des").unwrap_or("").to_owned(),
            }),
        }
    }
}

/// Drops the envelope fields and reads the rest as `T`.
fn typed<T: DeserializeOwned>(mut answer: Params) -> Result<T, Error> {
    for field in ENVELOPE_FIELDS {
        answer.remove(field);
    }
    from_params(answer).map_err(|e| Error::InvalidResponse(e.to_string()))
}
