//! The async v3 client: signs every request over the exact bytes it sends, verifies every
//! answer (all four `Wechatpay-*` headers, freshness, the key the serial names, the raw body)
//! before reading a field of it, and retries only what may be retried.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::aead::ApiV3Key;
use super::api::{
    CloseRequest, ErrorBody, JsapiPrepayRequest, PrepayResponse, Refund, RefundRequest, Transaction,
};
use super::error::Error;
use super::keys::{PlatformCertificate, Verifier, decode_certificates};
use super::sign::{MerchantKey, pay_sign_message};
use super::verify::{SignedHeaders, verify_signed};
use crate::domain::NonceStr;
use crate::http::{TransportError, build_client_with, read_limited};
use crate::retry::{RetryPolicy, with_retries};
use crate::v2::RequestPayment;
use crate::{OutRefundNo, OutTradeNo};

/// Largest answer accepted (v3 answers are a few KB).
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The `signType` of the v3 `wx.requestPayment` object.
pub const PAY_SIGN_TYPE: &str = "RSA";

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A merchant's v3 identity. `Debug` hides the keys.
#[derive(Debug, Clone)]
pub struct Merchant {
    /// Mini Program AppID.
    pub appid: String,
    /// Merchant number.
    pub mchid: String,
    /// The API private key and its certificate's serial.
    pub key: Arc<MerchantKey>,
    /// The APIv3 key (decrypts certificates and notifications).
    pub api_v3_key: ApiV3Key,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where the merchant API lives: [`crate::v2::PRODUCTION_BASE_URL`], or a simulator.
    pub base_url: Url,
    /// Timeout of each HTTP attempt.
    pub timeout: Duration,
    /// Retries of retryable failures.
    pub retry: RetryPolicy,
    /// Certificate authorities trusted besides the system's (a simulator's test CA).
    pub extra_roots: Vec<reqwest::Certificate>,
    /// Fetch the platform certificates from `/v3/certificates` when an answer names an
    /// unknown certificate serial; off for a merchant verifying with the public key only
    /// (such an answer is then refused).
    pub platform_certificates: bool,
}

impl ClientConfig {
    /// Settings for `base_url` with a 5 s timeout and the default retry policy.
    pub fn new(base_url: Url) -> Self {
        ClientConfig {
            base_url,
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            extra_roots: Vec::new(),
            platform_certificates: true,
        }
    }
}

/// An async WeChat Pay v3 client for one merchant. Its [`Verifier`] holds the WeChat Pay
/// public key and platform certificates (refreshed from `/v3/certificates` once when an
/// answer names an unknown certificate serial).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    merchant: Merchant,
    verifier: Verifier,
    config: ClientConfig,
}

/// A verified 2xx answer.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Client {
    /// A client for `merchant`, verifying with `verifier`.
    pub fn new(
        merchant: Merchant,
        verifier: Verifier,
        config: ClientConfig,
    ) -> Result<Self, Error> {
        let http = build_client_with(config.timeout, None, &config.extra_roots)
            .map_err(|e| Error::Transport(TransportError::Network(e.without_url())))?;
        Ok(Client {
            http,
            merchant,
            verifier,
            config,
        })
    }

    /// The merchant this client signs for.
    pub fn merchant(&self) -> &Merchant {
        &self.merchant
    }

    /// The keys answers are verified with.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// JSAPI prepay (the Mini Program's): the prepay_id. `appid` and `mchid` are the
    /// client's.
    pub async fn jsapi_prepay(
        &self,
        request: &JsapiPrepayRequest,
    ) -> Result<PrepayResponse, Error> {
        if request.amount.total.is_zero() {
            return Err(Error::InvalidRequest(
                "amount.total must be greater than zero".into(),
            ));
        }
        let mut request = request.clone();
        request.appid.clone_from(&self.merchant.appid);
        request.mchid.clone_from(&self.merchant.mchid);
        let answer = self
            .call(Method::POST, "/v3/pay/transactions/jsapi", Some(&request))
            .await?;
        let prepay: PrepayResponse = typed(&answer)?;
        if prepay.prepay_id.is_empty() || prepay.prepay_id.len() > 64 {
            return Err(Error::InvalidResponse(
                "prepay_id is empty or too long".into(),
            ));
        }
        Ok(prepay)
    }

    /// Query by our order number (unpaid orders are queryable only this way).
    pub async fn query_by_out_trade_no(
        &self,
        out_trade_no: &OutTradeNo,
    ) -> Result<Transaction, Error> {
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={}",
            self.merchant.mchid
        );
        let transaction = self.transaction(&path).await?;
        if &transaction.out_trade_no != out_trade_no {
            return Err(Error::InvalidResponse(
                "the answer is about another order".into(),
            ));
        }
        Ok(transaction)
    }

    /// Query by WeChat's number (paid orders only).
    pub async fn query_by_transaction_id(
        &self,
        transaction_id: &str,
    ) -> Result<Transaction, Error> {
        if transaction_id.is_empty() || !transaction_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidRequest("transaction_id is digits".into()));
        }
        let path = format!(
            "/v3/pay/transactions/id/{transaction_id}?mchid={}",
            self.merchant.mchid
        );
        self.transaction(&path).await
    }

    async fn transaction(&self, path: &str) -> Result<Transaction, Error> {
        let answer = self.call::<()>(Method::GET, path, None).await?;
        let transaction: Transaction = typed(&answer)?;
        if transaction.mchid != self.merchant.mchid {
            return Err(Error::MerchantMismatch { field: "mchid" });
        }
        if transaction
            .appid
            .as_ref()
            .is_some_and(|appid| appid != &self.merchant.appid)
        {
            return Err(Error::MerchantMismatch { field: "appid" });
        }
        Ok(transaction)
    }

    /// Close an unpaid order (`204`).
    pub async fn close(&self, out_trade_no: &OutTradeNo) -> Result<(), Error> {
        let path = format!("/v3/pay/transactions/out-trade-no/{out_trade_no}/close");
        let body = CloseRequest {
            mchid: self.merchant.mchid.clone(),
        };
        let answer = self.call(Method::POST, &path, Some(&body)).await?;
        if answer.status != 204 && answer.status != 200 {
            return Err(Error::InvalidResponse(format!(
                "close answered {}",
                answer.status
            )));
        }
        Ok(())
    }

    /// Refund: accepted, not done; the outcome comes by notification or
    /// [`Client::query_refund`]. Retry a failure with the same request.
    pub async fn refund(&self, request: &RefundRequest) -> Result<Refund, Error> {
        if request.transaction_id.is_none() && request.out_trade_no.is_none() {
            return Err(Error::InvalidRequest(
                "give transaction_id or out_trade_no".into(),
            ));
        }
        if request.amount.refund.is_zero() || request.amount.refund > request.amount.total {
            return Err(Error::InvalidRequest(
                "the refund must be more than 0 and at most the order's total".into(),
            ));
        }
        let answer = self
            .call(Method::POST, "/v3/refund/domestic/refunds", Some(request))
            .await?;
        let refund: Refund = typed(&answer)?;
        if refund.out_refund_no != request.out_refund_no {
            return Err(Error::InvalidResponse(
                "the answer is about another refund".into(),
            ));
        }
        Ok(refund)
    }

    /// Refund query by our refund number.
    pub async fn query_refund(&self, out_refund_no: &OutRefundNo) -> Result<Refund, Error> {
        let path = format!("/v3/refund/domestic/refunds/{out_refund_no}");
        let answer = self.call::<()>(Method::GET, &path, None).await?;
        let refund: Refund = typed(&answer)?;
        if &refund.out_refund_no != out_refund_no {
            return Err(Error::InvalidResponse(
                "the answer is about another refund".into(),
            ));
        }
        Ok(refund)
    }

    /// Fetches the platform certificates (`GET /v3/certificates`), decrypts them with the
    /// APIv3 key, and checks the answer's signature with the keys held plus those just
    /// decrypted (the first fetch has nothing else to check with; the APIv3 key
    /// authenticates what it decrypts).
    pub async fn certificates(&self) -> Result<Vec<PlatformCertificate>, Error> {
        with_retries(&self.config.retry, "certificates", || async {
            let (status, headers, body) = self
                .send::<()>(&Method::GET, "/v3/certificates", None)
                .await?;
            if !(200..300).contains(&status) {
                return Err(self.refusal(status, &headers, &body).await);
            }
            let certificates = decode_certificates(&body, &self.merchant.api_v3_key)
                .map_err(|e| Error::InvalidResponse(e.to_string()))?;
            let now = unix_now();
            let fresh = Verifier::new();
            fresh.add_certificates(certificates.clone(), now);
            verify_signed(&signed_headers(&headers), &body, now, |serial| {
                self.verifier
                    .key_of(serial, now)
                    .or_else(|| fresh.key_of(serial, now))
            })?;
            Ok(certificates)
        })
        .await
    }

    /// Fetches the certificates and adds them to the verifier, at most once per
    /// [`super::MIN_REFRESH_INTERVAL`] ([`Verifier::refresh`]): how many came, or `None` when
    /// no refresh was due.
    pub async fn refresh_certificates(&self) -> Result<Option<usize>, Error> {
        self.verifier
            .refresh(unix_now(), || self.certificates())
            .await
    }

    /// The v3 `wx.requestPayment` object for `prepay_id`, signed now with a fresh nonce.
    pub fn request_payment(&self, prepay_id: &str) -> RequestPayment {
        request_payment(
            &self.merchant.appid,
            prepay_id,
            &self.merchant.key,
            unix_now(),
            &NonceStr::generate(),
        )
    }

    /// One call under the retry policy: serialized once, signed, sent, verified.
    async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Answer, Error> {
        let name = path.split('?').next().unwrap_or(path).to_owned();
        with_retries(&self.config.retry, &name, || async {
            let (status, headers, bytes) = self.send(&method, path, body).await?;
            if !(200..300).contains(&status) {
                return Err(self.refusal(status, &headers, &bytes).await);
            }
            self.verify(&headers, &bytes).await?;
            Ok(Answer {
                status,
                body: bytes,
            })
        })
        .await
    }

    /// A non-2xx answer as an error: WeChat's code when the answer verifies; a server error
    /// that does not verify (a proxy's 502) stays retryable without a code; any other
    /// unverified refusal is not trusted.
    async fn refusal(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
        match self.verify(headers, body).await {
            Ok(()) => {
                let error: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
                Error::Api {
                    status,
                    code: error.code.chars().take(64).collect(),
                    message: error.message.chars().take(256).collect(),
                }
            }
            Err(_) if status >= 500 || status == 429 => Error::Api {
                status,
                code: String::new(),
                message: "unsigned answer".into(),
            },
            Err(e) => e,
        }
    }

    async fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Error> {
        let signed = signed_headers(headers);
        if !self.config.platform_certificates {
            return self
                .verifier
                .verify(&signed, body, unix_now())
                .map_err(Error::Signature);
        }
        self.verifier
            .verify_refreshing(&signed, body, unix_now(), || Box::pin(self.certificates()))
            .await
            .map_err(Error::Signature)
    }

    /// One HTTP attempt: the body serialized once and signed as sent.
    async fn send<B: Serialize>(
        &self,
        method: &Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(u16, HeaderMap, Vec<u8>), Error> {
        let base = self.config.base_url.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}{path}"))
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let signed_url = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let bytes = match body {
            Some(body) => {
                serde_json::to_vec(body).map_err(|e| Error::InvalidRequest(e.to_string()))?
            }
            None => Vec::new(),
        };
        let nonce = NonceStr::generate();
        let authorization = self.merchant.key.authorization(
            &self.merchant.mchid,
            method.as_str(),
            &signed_url,
            unix_now(),
            nonce.as_str(),
            &bytes,
        );
        let timeout = self.config.timeout;
        let mut request = self
            .http
            .request(method.clone(), url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout);
        // With the public key, ask that answers be signed with it (§3.1); in certificate
        // mode send none, as the SDKs do, and WeChat signs with a platform certificate.
        if let Some(id) = self.verifier.public_key_id() {
            request = request.header("Wechatpay-Serial", id);
        }
        if body.is_some() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        let response = request
            .send()
            .await
            .map_err(|e| TransportError::from_reqwest(e, timeout))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if let Some(id) = headers.get("Request-ID").and_then(|v| v.to_str().ok()) {
            tracing::debug!(request_id = id, status, "wechat v3 answer");
        }
        let body = read_limited(response, MAX_RESPONSE_BYTES, timeout).await?;
        Ok((status, headers, body))
    }
}

/// The `Wechatpay-*` headers of an answer (a header that is not text counts as missing).
pub fn signed_headers(headers: &HeaderMap) -> SignedHeaders<'_> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    SignedHeaders {
        timestamp: get("Wechatpay-Timestamp"),
        nonce: get("Wechatpay-Nonce"),
        signature: get("Wechatpay-Signature"),
        serial: get("Wechatpay-Serial"),
        signature_type: get("Wechatpay-Signature-Type"),
    }
}

/// The v3 `wx.requestPayment` object (§3.7): `paySign` is the merchant's RSA signature of
/// appId, timeStamp, nonceStr and package; `signType` is `RSA` and not signed.
pub fn request_payment(
    appid: &str,
    prepay_id: &str,
    key: &MerchantKey,
    unix_seconds: i64,
    nonce: &NonceStr,
) -> RequestPayment {
    let time_stamp = unix_seconds.to_string();
    let package = format!("prepay_id={prepay_id}");
    let pay_sign = key.sign(&pay_sign_message(
        appid,
        &time_stamp,
        nonce.as_str(),
        &package,
    ));
    RequestPayment {
        app_id: appid.to_owned(),
        time_stamp,
        nonce_str: nonce.to_string(),
        package,
        sign_type: PAY_SIGN_TYPE.to_owned(),
        pay_sign,
    }
}

fn typed<T: DeserializeOwned>(answer: &Answer) -> Result<T, Error> {
    serde_json::from_slice(&answer.body).map_err(|e| Error::InvalidResponse(e.to_string()))
}
