//! API v3 notifications, steps 2 and 3: the signature (all `Wechatpay-*` headers, the
//! timestamp within 5 minutes, the key the serial names: the WeChat Pay public key, or a
//! platform certificate asked of pay-gateway-svc once when its serial is unknown), then the
//! replay check (the signed nonce and the notification id remembered in Redis, set-if-absent,
//! for longer than a signature stays fresh; Redis unreachable is a refusal, so WeChat
//! retries), then the decryption with the APIv3 key, the merchant and the amounts.
//!
//! A retry from WeChat is signed anew (a new nonce and timestamp), so it passes the replay
//! check; a captured request sent again is refused even though its signature verifies.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use proto::paygateway::v1 as pb;
use proto::paygateway::v1::pay_gateway_client::PayGatewayClient;
use service_runtime::grpc_auth::ClientAuth;
use service_runtime::redis::LazyRedis;
use sha2::{Digest, Sha256};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tracing::field::display;
use wechat_pay::v3::{self, ApiV3Key, PlatformCertificate, Verifier};

use crate::convert::PaymentEvent;
use crate::notify::{Kind, Refusal, now_ms};
use crate::settings::{GatewayLink, Settings, V3Settings};

/// Where platform certificates come from: pay-gateway-svc, over a lazily connected channel.
#[derive(Debug, Clone)]
struct Certificates {
    client: PayGatewayClient<InterceptedService<Channel, ClientAuth>>,
}

impl Certificates {
    fn new(link: &GatewayLink) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(link.url.clone())?
            .connect_timeout(Duration::from_secs(2).min(link.timeout))
            .timeout(link.timeout)
            .connect_lazy();
        Ok(Certificates {
            client: PayGatewayClient::with_interceptor(
                channel,
                ClientAuth::new(link.token.as_ref()),
            ),
        })
    }

    /// The certificates pay-gateway-svc holds; when `serial` is not among them, asks it to
    /// fetch them from WeChat first.
    async fn fetch(&self, serial: &str) -> Result<Vec<PlatformCertificate>, String> {
        let listed = self.list(false).await?;
        let wanted = v3::serial_number(serial);
        if listed.iter().any(|c| Some(&c.serial_no) == wanted.as_ref()) {
            return Ok(listed);
        }
        self.list(true).await
    }

    async fn list(&self, refresh: bool) -> Result<Vec<PlatformCertificate>, String> {
        let answer = self
            .client
            .clone()
            .list_platform_certificates(pb::ListPlatformCertificatesRequest { refresh })
            .await
            .map_err(|s| format!("pay-gateway-svc: {:?} {}", s.code(), s.message()))?
            .into_inner();
        Ok(answer
            .certificates
            .into_iter()
            .filter_map(|c| {
                let serial = c.serial_no.clone();
                PlatformCertificate::from_pem(&c.serial_no, c.effective_unix, c.expire_unix, c.pem)
                    .map_err(|_| tracing::warn!(%serial, "pay-gateway-svc listed an unusable certificate"))
                    .ok()
            })
            .collect())
    }
}

/// What v3 notifications are received with.
#[derive(Debug)]
pub(crate) struct V3Receiver {
    verifier: Verifier,
    api_v3_key: ApiV3Key,
    certificates: Option<Certificates>,
    redis: LazyRedis,
    prefix: String,
    window: Duration,
}

impl V3Receiver {
    pub(crate) fn new(settings: &V3Settings) -> Result<Self, tonic::transport::Error> {
        let verifier = Verifier::new();
        if let Some((id, key)) = &settings.public_key {
            verifier.set_public_key(id, key.clone());
        }
        Ok(V3Receiver {
            verifier,
            api_v3_key: settings.api_v3_key.clone(),
            certificates: settings
                .certificates
                .as_ref()
                .map(Certificates::new)
                .transpose()?,
            redis: LazyRedis::new(&settings.redis_url, settings.redis_timeout),
            prefix: settings.redis_prefix.clone(),
            window: settings.replay_window,
        })
    }

    /// Steps 2 and 3 of a v3 notification, up to the event to publish.
    pub(crate) async fn accept(
        &self,
        settings: &Settings,
        headers: &HeaderMap,
        body: &Bytes,
        kind: Kind,
        trace_id: &str,
    ) -> Result<PaymentEvent, Refusal> {
        let span = tracing::Span::current();
        // Step 2: the signature over the raw body, before anything in it is read.
        let signed = v3::signed_headers(headers);
        let serial = signed.serial.unwrap_or_default();
        self.verifier
            .verify_refreshing(&signed, body, v3::unix_now(), || async {
                match &self.certificates {
                    Some(source) => source.fetch(serial).await,
                    None => Err(
                        "platform certificates are off (WECHAT_PLATFORM_CERTIFICATES=off)"
                            .to_owned(),
                    ),
                }
            })
            .await?;
        let notification = v3::Notification::parse(body)?;
        span.record("notification_id", display(&notification.id));
        // Step 2b: a signed notification is taken once.
        self.remember(&notification.id, signed.nonce.unwrap_or_default())
            .await?;
        // Step 3: decrypted with our APIv3 key, for our Mini Program and merchant.
        let event = match kind {
            Kind::Payment => {
                let t = notification.transaction(
                    &self.api_v3_key,
                    &settings.appid,
                    &settings.mch_id,
                )?;
                span.record("out_trade_no", display(&t.out_trade_no));
                PaymentEvent::v3_payment(&t, trace_id, now_ms())?
            }
            Kind::Refund => {
                let r = notification.refund(&self.api_v3_key, &settings.mch_id)?;
                span.record("out_trade_no", display(&r.out_trade_no));
                span.record("out_refund_no", display(&r.out_refund_no));
                PaymentEvent::v3_refund(&r, &settings.appid, trace_id, now_ms())?
            }
        };
        Ok(event)
    }

    /// Remembers the notification's id and signed nonce for the replay window; refused when
    /// they were already there, or when Redis cannot say.
    async fn remember(&self, id: &str, nonce: &str) -> Result<(), Refusal> {
        let digest = hex::encode(Sha256::digest(format!("{id}\n{nonce}")));
        let key = format!("{}notify:v3:seen:{digest}", self.prefix);
        let Some(mut conn) = self.redis.connection().await else {
            return Err(Refusal::ReplayCheck);
        };
        let mut command = redis::cmd("SET");
        command
            .arg(&key)
            .arg(now_ms())
            .arg("NX")
            .arg("EX")
            .arg(self.window.as_secs().max(1));
        let answer: Result<Result<Option<String>, redis::RedisError>, _> =
            tokio::time::timeout(self.redis.timeout(), command.query_async(&mut conn)).await;
        match answer {
            Ok(Ok(Some(_))) => Ok(()),
            Ok(Ok(None)) => Err(Refusal::Replay),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "replay check failed");
                self.redis.reset().await;
                Err(Refusal::ReplayCheck)
            }
            Err(_) => {
                self.redis.reset().await;
                Err(Refusal::ReplayCheck)
            }
        }
    }
}
