//! pay-gateway-svc's settings, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use service_runtime::grpc_auth::GrpcSettings;
use service_runtime::server::HttpSettings;
use service_runtime::settings::{SettingsError, Source, WeChatMode, wechat_api_v3};

use std::sync::Arc;

use url::Url;
use wechat_pay::v3::{self, ApiV3Key, MerchantKey, WeChatPublicKey};

use crate::cert::MerchantCert;
use wechat_pay::example;
use wechat_pay::v2::{ApiKey, PRODUCTION_BASE_URL, SignType};

/// The simulator's default address: the target in simulator mode.
const SIMULATOR_BASE_URL: &str = "http://127.0.0.1:8090";

/// Everything pay-gateway-svc needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// gRPC listen address (`PAY_GATEWAY_GRPC_ADDR`, default `0.0.0.0:50052`).
    pub grpc_addr: SocketAddr,
    /// The ops port: `/healthz`, `/readyz` and `/metrics` (`PAY_GATEWAY_OPS_ADDR`, default
    /// `0.0.0.0:8082`).
    pub ops_addr: SocketAddr,
    /// Timeouts and connection limit of the ops server (`HTTP_*`).
    pub http: HttpSettings,
    /// The token gRPC callers must send, and reflection (`GRPC_TOKEN`, `GRPC_REFLECTION`).
    pub grpc: GrpcSettings,
    /// The merchant and where WeChat is.
    pub wechat: WeChatSettings,
}

/// The merchant's credentials and the WeChat endpoints.
#[derive(Debug, Clone)]
pub struct WeChatSettings {
    /// Merchant API base URL (`WECHAT_PAY_BASE_URL`).
    pub pay_base_url: Url,
    /// Login API base URL (`WECHAT_LOGIN_BASE_URL`).
    pub login_base_url: Url,
    /// Mini Program AppID (`WECHAT_APPID`).
    pub appid: String,
    /// Merchant number (`WECHAT_MCH_ID`).
    pub mch_id: String,
    /// v2 API key (`WECHAT_API_KEY`, secret).
    pub api_key: ApiKey,
    /// Mini Program AppSecret (`WECHAT_APP_SECRET`, secret).
    pub app_secret: SecretString,
    /// `MD5` or `HMAC-SHA256` (`WECHAT_SIGN_TYPE`, default `HMAC-SHA256`).
    pub sign_type: SignType,
    /// Where WeChat sends payment notifications: notify-svc's public URL (`WECHAT_NOTIFY_URL`;
    /// the default is notify-svc's local path of the API version).
    pub notify_url: String,
    /// Per-call timeout (`WECHAT_TIMEOUT`, default 5s).
    pub timeout: Duration,
    /// Attempts per call, the first included (`WECHAT_RETRY_ATTEMPTS`, default 3).
    pub retry_attempts: u32,
    /// No retry starts after this long (`WECHAT_RETRY_DEADLINE`, default 8s).
    pub retry_deadline: Duration,
    /// How long a prepay_id is valid (`WECHAT_PREPAY_TTL`, default 2h).
    pub prepay_ttl: Duration,
    /// True in simulator mode (`WECHAT_MODE=simulator`).
    pub simulator: bool,
    /// The merchant's API certificate and key (`WECHAT_CERT_FILE`, `WECHAT_KEY_FILE`), which
    /// refunds need; checked at start-up. `WECHAT_REFUNDS=on` requires them; without them
    /// (and `WECHAT_REFUNDS` unset or `off`) refunds are off.
    pub merchant_cert: Option<MerchantCert>,
    /// Where WeChat sends refund notifications: notify-svc's public URL
    /// (`WECHAT_REFUND_NOTIFY_URL`).
    pub refund_notify_url: String,
    /// Certificate authorities trusted for WeChat's API besides the system's (`WECHAT_CA_FILE`,
    /// PEM: a simulator serving HTTPS with a test CA).
    pub extra_roots: Vec<reqwest::Certificate>,
    /// API v3's credentials when the merchant speaks v3 (`WECHAT_API_VERSION=v3`); `None`:
    /// v2.
    pub v3: Option<V3Settings>,
}

/// A v3 merchant's credentials. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct V3Settings {
    /// The merchant API private key (`WECHAT_MCH_PRIVATE_KEY_FILE`, or the PEM in
    /// `WECHAT_MCH_PRIVATE_KEY`) and its certificate's serial (`WECHAT_MCH_SERIAL`).
    pub key: Arc<MerchantKey>,
    /// The APIv3 key (`WECHAT_API_V3_KEY`, secret).
    pub api_v3_key: ApiV3Key,
    /// The WeChat Pay public key (`WECHAT_PUBLIC_KEY_FILE` or `WECHAT_PUBLIC_KEY`) and its id
    /// (`WECHAT_PUBLIC_KEY_ID`), if the merchant has one.
    pub public_key: Option<(String, WeChatPublicKey)>,
    /// Fetch the platform certificates from `/v3/certificates` at start and on an unknown
    /// serial (`WECHAT_PLATFORM_CERTIFICATES`, default `on`). With `off`, the public key is
    /// required.
    pub platform_certificates: bool,
}

impl V3Settings {
    /// The v3 credentials, or `None` under `WECHAT_API_VERSION=v2` (the default).
    pub fn from_source(env: &impl Source, mode: WeChatMode) -> Result<Option<Self>, SettingsError> {
        if !wechat_api_v3(env)? {
            return Ok(None);
        }
        let invalid = |name: &str, reason: String| SettingsError::Invalid {
            name: name.into(),
            reason,
        };
        let serial = mode.merchant(env, "WECHAT_MCH_SERIAL", v3::EXAMPLE_MERCHANT_SERIAL)?;
        let pem = mode
            .pem(env, "WECHAT_MCH_PRIVATE_KEY", v3::EXAMPLE_MERCHANT_KEY_PEM)?
            .ok_or_else(|| SettingsError::MerchantMissing {
                name: "WECHAT_MCH_PRIVATE_KEY_FILE".into(),
            })?;
        let key = MerchantKey::from_pem(&pem, &serial)
            .map_err(|e| invalid("WECHAT_MCH_PRIVATE_KEY_FILE", e.to_string()))?;
        let api_v3_key = mode.merchant(env, "WECHAT_API_V3_KEY", v3::EXAMPLE_API_V3_KEY)?;
        let api_v3_key =
            ApiV3Key::new(&api_v3_key).map_err(|e| invalid("WECHAT_API_V3_KEY", e.to_string()))?;
        let public_key = mode.wechat_public_key(
            env,
            WeChatPublicKey::from_pem,
            v3::EXAMPLE_WECHAT_PUBLIC_KEY_PEM,
            v3::EXAMPLE_WECHAT_PUBLIC_KEY_ID,
            v3::PUBLIC_KEY_ID_PREFIX,
        )?;
        let platform_certificates = env.on_off_or("WECHAT_PLATFORM_CERTIFICATES", true)?;
        if !platform_certificates && public_key.is_none() {
            return Err(SettingsError::MerchantMissing {
                name: "WECHAT_PUBLIC_KEY_FILE".into(),
            });
        }
        Ok(Some(V3Settings {
            key: Arc::new(key),
            api_v3_key,
            public_key,
            platform_certificates,
        }))
    }
}

impl Settings {
    /// Reads the settings; a missing or invalid variable fails with its name.
    ///
    /// The merchant (`WECHAT_APPID`, `WECHAT_MCH_ID`, `WECHAT_API_KEY`, `WECHAT_APP_SECRET`)
    /// is required and the base URLs default to WeChat's production hosts, unless
    /// `WECHAT_MODE=simulator`: then each defaults to the simulator's example merchant and
    /// address.
    pub fn from_source(env: &impl Source) -> Result<Self, SettingsError> {
        let mode = WeChatMode::from_source(env)?;
        let simulator = mode == WeChatMode::Simulator;
        let appid = mode.merchant(env, "WECHAT_APPID", example::APPID)?;
        let mch_id = mode.merchant(env, "WECHAT_MCH_ID", example::MCH_ID)?;
        let api_key = mode.merchant(env, "WECHAT_API_KEY", example::API_KEY)?;
        let app_secret = mode.merchant(env, "WECHAT_APP_SECRET", example::APP_SECRET)?;
        let default_base = if simulator {
            SIMULATOR_BASE_URL
        } else {
            PRODUCTION_BASE_URL
        };
        let api_key = ApiKey::new(api_key).map_err(|e| SettingsError::Invalid {
            name: "WECHAT_API_KEY".into(),
            reason: e.to_string(),
        })?;
        let pay_base_url: Url = env.or("WECHAT_PAY_BASE_URL", url(default_base))?;
        let login_default = if simulator {
            pay_base_url.clone()
        } else {
            url(wechat_pay::login::PRODUCTION_LOGIN_BASE_URL)
        };
        let sign_type = match env.get("WECHAT_SIGN_TYPE").as_deref() {
            None | Some("HMAC-SHA256") => SignType::HmacSha256,
            Some("MD5") => SignType::Md5,
            Some(_) => {
                return Err(SettingsError::Invalid {
                    name: "WECHAT_SIGN_TYPE".into(),
                    reason: "expected MD5 or HMAC-SHA256".into(),
                });
            }
        };
        // Refunds are on when asked for (`WECHAT_REFUNDS=on`) or when a certificate is given;
        // on without one is a start-up error, never a refund that fails later.
        let refunds = env.on_off_or("WECHAT_REFUNDS", env.get("WECHAT_CERT_FILE").is_some())?;
        let merchant_cert = match (env.get("WECHAT_CERT_FILE"), env.get("WECHAT_KEY_FILE")) {
            (None, None) if refunds => {
                return Err(SettingsError::Missing {
                    name: "WECHAT_CERT_FILE".into(),
                });
            }
            (None, None) => None,
            (Some(cert), Some(key)) => Some(MerchantCert::load(
                cert.as_ref(),
                "WECHAT_CERT_FILE",
                key.as_ref(),
                "WECHAT_KEY_FILE",
            )?),
            (Some(_), None) => {
                return Err(SettingsError::Missing {
                    name: "WECHAT_KEY_FILE".into(),
                });
            }
            (None, Some(_)) => {
                return Err(SettingsError::Missing {
                    name: "WECHAT_CERT_FILE".into(),
                });
            }
        };
        let extra_roots = match env.get("WECHAT_CA_FILE") {
            None => Vec::new(),
            Some(path) => {
                let invalid = |reason: String| SettingsError::Invalid {
                    name: "WECHAT_CA_FILE".into(),
                    reason,
                };
                let pem = std::fs::read(&path)
                    .map_err(|e| invalid(format!("cannot read {path}: {e}")))?;
                let roots = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| invalid(e.to_string()))?;
                if roots.is_empty() {
                    return Err(invalid("no PEM certificate in the file".into()));
                }
                roots
            }
        };
        let v3 = V3Settings::from_source(env, mode)?;
        // notify-svc's paths for the version's notifications.
        let version_path = if v3.is_some() { "v3/" } else { "" };
        Ok(Settings {
            grpc_addr: env.or(
                "PAY_GATEWAY_GRPC_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 50052)),
            )?,
            ops_addr: env.or(
                "PAY_GATEWAY_OPS_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 8082)),
            )?,
            http: HttpSettings::from_source(env)?,
            grpc: GrpcSettings::from_source(env)?,
            wechat: WeChatSettings {
                pay_base_url,
                login_base_url: env.or("WECHAT_LOGIN_BASE_URL", login_default)?,
                appid,
                mch_id,
                api_key,
                app_secret: SecretString::from(app_secret),
                sign_type,
                notify_url: env.or(
                    "WECHAT_NOTIFY_URL",
                    format!("http://127.0.0.1:8081/wechat/{version_path}pay/notify"),
                )?,
                timeout: env.duration_or("WECHAT_TIMEOUT", Duration::from_secs(5))?,
                retry_attempts: env.or("WECHAT_RETRY_ATTEMPTS", 3u32)?.max(1),
                retry_deadline: env.duration_or("WECHAT_RETRY_DEADLINE", Duration::from_secs(8))?,
                prepay_ttl: env.duration_or("WECHAT_PREPAY_TTL", Duration::from_secs(2 * 3600))?,
                simulator,
                merchant_cert,
                refund_notify_url: env.or(
                    "WECHAT_REFUND_NOTIFY_URL",
                    format!("http://127.0.0.1:8081/wechat/{version_path}refund/notify"),
                )?,
                extra_roots,
                v3,
            },
        })
    }
}

fn url(s: &str) -> Url {
    // The constants above are valid URLs.
    Url::parse(s).unwrap_or_else(|_| unreachable!("constant URL {s} parses"))
}

#[cfg(test)]
mod tests {
    use service_runtime::settings::MapEnv;

    use super::*;

    fn simulator() -> MapEnv {
        MapEnv::from_pairs([("WECHAT_MODE", "simulator")])
    }

    #[test]
    fn simulator_mode_targets_the_simulator_with_the_example_merchant() {
        let s = Settings::from_source(&simulator()).unwrap();
        assert!(s.wechat.simulator);
        assert_eq!(s.wechat.pay_base_url.as_str(), "http://127.0.0.1:8090/");
        assert_eq!(s.wechat.mch_id, "10000100");
        assert_eq!(s.wechat.appid, example::APPID);
        assert_eq!(s.grpc_addr.port(), 50052);
        assert_eq!(s.ops_addr.port(), 8082);
        assert!(s.grpc.token.is_none() && !s.grpc.reflection);
    }

    #[test]
    fn the_grpc_token_is_required_outside_simulator_mode() {
        let mut merchant = MapEnv::from_pairs([
            ("WECHAT_MCH_ID", "1900000109"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_API_KEY", "192006250b4c09247ec02edce69f6a2d"),
            ("WECHAT_APP_SECRET", "0123456789abcdef0123456789abcdef"),
        ]);
        let err = Settings::from_source(&merchant).unwrap_err();
        assert!(err.to_string().contains("GRPC_TOKEN"), "{err}");
        let token = "pay-gateway-grpc-token-0123456789abcdef";
        merchant.0.insert("GRPC_TOKEN".into(), token.into());
        let s = Settings::from_source(&merchant).unwrap();
        assert!(s.grpc.token.is_some());
        assert!(
            !format!("{s:?}").contains(token),
            "Debug must not show the token"
        );
    }

    #[test]
    fn without_a_mode_or_a_merchant_the_start_is_refused_naming_the_variable() {
        for env in [
            MapEnv::default(),
            MapEnv::from_pairs([("WECHAT_MODE", "production")]),
        ] {
            let err = Settings::from_source(&env).unwrap_err();
            assert!(
                err.to_string().contains("WECHAT_APPID")
                    && err.to_string().contains("WECHAT_MODE=simulator"),
                "{err}"
            );
        }
        let err =
            Settings::from_source(&MapEnv::from_pairs([("WECHAT_MODE", "live")])).unwrap_err();
        assert!(err.to_string().contains("WECHAT_MODE"), "{err}");
    }

    #[test]
    fn a_configured_merchant_needs_all_its_credentials() {
        let err = Settings::from_source(&MapEnv::from_pairs([("WECHAT_MCH_ID", "1900000109")]))
            .unwrap_err();
        assert!(err.to_string().contains("WECHAT_APPID"), "{err}");
        let err = Settings::from_source(&MapEnv::from_pairs([
            ("WECHAT_MCH_ID", "1900000109"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_API_KEY", "short-and-secret"),
            ("WECHAT_APP_SECRET", "s"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("WECHAT_API_KEY")
                && !err.to_string().contains("short-and-secret")
        );
        let ok = Settings::from_source(&MapEnv::from_pairs([
            ("WECHAT_MCH_ID", "1900000109"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_API_KEY", "0123456789abcdef0123456789abcdef"),
            ("WECHAT_APP_SECRET", "s"),
            ("GRPC_TOKEN", "pay-gateway-grpc-token-0123456789abcdef"),
        ]))
        .unwrap();
        assert_eq!(
            ok.wechat.pay_base_url.as_str(),
            "https://api.mch.weixin.qq.com/"
        );
        assert!(
            !format!("{ok:?}").contains("0123456789abcdef0123456789abcdef"),
            "Debug must not show the key"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let with = |name: &str, value: &str| {
            let mut env = simulator();
            env.0.insert(name.into(), value.into());
            env
        };
        let err = Settings::from_source(&with("WECHAT_SIGN_TYPE", "SHA1")).unwrap_err();
        assert!(err.to_string().contains("WECHAT_SIGN_TYPE"));
        let err = Settings::from_source(&with("PAY_GATEWAY_GRPC_ADDR", "nowhere")).unwrap_err();
        assert!(err.to_string().contains("PAY_GATEWAY_GRPC_ADDR"));
    }
}
