//! notify-svc's settings, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use service_runtime::grpc_auth::GrpcToken;
use service_runtime::server::HttpSettings;
use service_runtime::settings::{SettingsError, Source, WeChatMode, wechat_api_v3};
use wechat_pay::example::{API_KEY as SIM_API_KEY, APPID as SIM_APPID, MCH_ID as SIM_MCH_ID};
use wechat_pay::v2::ApiKey;
use wechat_pay::v3::{self, ApiV3Key, WeChatPublicKey};

/// Everything notify-svc needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where WeChat's callbacks arrive (`NOTIFY_HTTP_ADDR`, default `0.0.0.0:8081`).
    pub http_addr: SocketAddr,
    /// `/healthz`, `/readyz` and `/metrics`, apart from WeChat's port (`NOTIFY_OPS_ADDR`,
    /// default `0.0.0.0:9081`).
    pub ops_addr: SocketAddr,
    /// Timeouts and connection limit of both HTTP servers (`HTTP_*`).
    pub http: HttpSettings,
    /// RabbitMQ (`AMQP_URL`, default `amqp://guest:guest@127.0.0.1:5672/%2f`; secret: it may
    /// hold a password).
    pub amqp_url: secrecy::SecretString,
    /// Prefix of every exchange and queue name (`AMQP_PREFIX`, default empty).
    pub amqp_prefix: String,
    /// Longest wait for the broker's confirm (`PUBLISH_CONFIRM_TIMEOUT`, default 3s).
    pub confirm_timeout: Duration,
    /// Largest notification body (`NOTIFY_MAX_BODY`, default 65536 bytes).
    pub max_body: usize,
    /// The Mini Program the notifications must be for (`WECHAT_APPID`).
    pub appid: String,
    /// The merchant they must be for (`WECHAT_MCH_ID`).
    pub mch_id: String,
    /// The v2 API key that signs them (`WECHAT_API_KEY`, secret; verification only).
    pub api_key: ApiKey,
    /// API v3's notifications (`WECHAT_API_VERSION=v3`): `POST /wechat/v3/pay/notify` and
    /// `/wechat/v3/refund/notify`. `None`: v2 only.
    pub v3: Option<V3Settings>,
}

/// What v3 notifications are verified, de-duplicated and decrypted with. `Debug` shows no
/// secret.
#[derive(Debug, Clone)]
pub struct V3Settings {
    /// Decrypts the resources (`WECHAT_API_V3_KEY`, secret).
    pub api_v3_key: ApiV3Key,
    /// The WeChat Pay public key and its id (`WECHAT_PUBLIC_KEY_FILE` or `WECHAT_PUBLIC_KEY`,
    /// `WECHAT_PUBLIC_KEY_ID`), if the merchant has one.
    pub public_key: Option<(String, WeChatPublicKey)>,
    /// Where the platform certificates come from: pay-gateway-svc (`PAY_GATEWAY_URL`, default
    /// `http://127.0.0.1:50052`, and its token `PAY_GATEWAY_TOKEN` or
    /// `PAY_GATEWAY_TOKEN_FILE`), which fetches and checks them. `None` with
    /// `WECHAT_PLATFORM_CERTIFICATES=off` (then the public key is required).
    pub certificates: Option<GatewayLink>,
    /// Redis, where each notification's nonce and id are remembered to refuse replays
    /// (`REDIS_URL`, default `redis://127.0.0.1:6379`; secret: it may hold a password).
    pub redis_url: SecretString,
    /// Prefix of the replay keys (`REDIS_PREFIX`, default `minipay:`).
    pub redis_prefix: String,
    /// Longest wait for Redis (`REDIS_TIMEOUT`, default 500ms): slower is a refusal, which
    /// WeChat retries.
    pub redis_timeout: Duration,
    /// How long a notification is remembered (`NOTIFY_REPLAY_WINDOW`, default 10m): longer
    /// than the 5 minutes a signed timestamp stays acceptable, so a replay is refused for as
    /// long as its signature would verify.
    pub replay_window: Duration,
}

/// How to reach pay-gateway-svc.
#[derive(Debug, Clone)]
pub struct GatewayLink {
    /// Its gRPC URL.
    pub url: String,
    /// Its token.
    pub token: Option<GrpcToken>,
    /// Longest wait for it (`PAY_GATEWAY_TIMEOUT`, default 5s).
    pub timeout: Duration,
}

impl V3Settings {
    /// The v3 settings, or `None` under `WECHAT_API_VERSION=v2` (the default).
    fn from_source(env: &impl Source, mode: WeChatMode) -> Result<Option<Self>, SettingsError> {
        if !wechat_api_v3(env)? {
            return Ok(None);
        }
        let api_v3_key = mode.merchant(env, "WECHAT_API_V3_KEY", v3::EXAMPLE_API_V3_KEY)?;
        let api_v3_key = ApiV3Key::new(&api_v3_key).map_err(|e| SettingsError::Invalid {
            name: "WECHAT_API_V3_KEY".into(),
            reason: e.to_string(),
        })?;
        let public_key = mode.wechat_public_key(
            env,
            WeChatPublicKey::from_pem,
            v3::EXAMPLE_WECHAT_PUBLIC_KEY_PEM,
            v3::EXAMPLE_WECHAT_PUBLIC_KEY_ID,
            v3::PUBLIC_KEY_ID_PREFIX,
        )?;
        let certificates = if env.on_off_or("WECHAT_PLATFORM_CERTIFICATES", true)? {
            Some(GatewayLink {
                url: env.or("PAY_GATEWAY_URL", "http://127.0.0.1:50052".to_owned())?,
                token: GrpcToken::required_unless_simulator(env, "PAY_GATEWAY_TOKEN")?,
                timeout: env.duration_or("PAY_GATEWAY_TIMEOUT", Duration::from_secs(5))?,
            })
        } else if public_key.is_none() {
            return Err(SettingsError::MerchantMissing {
                name: "WECHAT_PUBLIC_KEY_FILE".into(),
            });
        } else {
            None
        };
        let replay_window = env.duration_or("NOTIFY_REPLAY_WINDOW", Duration::from_secs(600))?;
        if replay_window <= Duration::from_secs(v3::FRESHNESS_SECS.unsigned_abs()) {
            return Err(SettingsError::Invalid {
                name: "NOTIFY_REPLAY_WINDOW".into(),
                reason: "must be longer than the 5 minutes a signed timestamp is accepted".into(),
            });
        }
        Ok(Some(V3Settings {
            api_v3_key,
            public_key,
            certificates,
            redis_url: SecretString::from(
                env.or("REDIS_URL", "redis://127.0.0.1:6379".to_owned())?,
            ),
            redis_prefix: env.or("REDIS_PREFIX", "minipay:".to_owned())?,
            redis_timeout: env.duration_or("REDIS_TIMEOUT", Duration::from_millis(500))?,
            replay_window,
        }))
    }
}

impl Settings {
    /// Reads the settings; a missing or invalid variable fails with its name. The merchant
    /// (`WECHAT_APPID`, `WECHAT_MCH_ID`, `WECHAT_API_KEY`) is required unless
    /// `WECHAT_MODE=simulator`, where each defaults to the simulator's example merchant.
    pub fn from_source(env: &impl Source) -> Result<Self, SettingsError> {
        let mode = WeChatMode::from_source(env)?;
        let appid = mode.merchant(env, "WECHAT_APPID", SIM_APPID)?;
        let mch_id = mode.merchant(env, "WECHAT_MCH_ID", SIM_MCH_ID)?;
        let key = mode.merchant(env, "WECHAT_API_KEY", SIM_API_KEY)?;
        let api_key = ApiKey::new(key).map_err(|e| SettingsError::Invalid {
            name: "WECHAT_API_KEY".into(),
            reason: e.to_string(),
        })?;
        let amqp_url: String = env.or(
            "AMQP_URL",
            "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
        )?;
        if !amqp_url.starts_with("amqp://") {
            return Err(SettingsError::Invalid {
                name: "AMQP_URL".into(),
                reason: "must be an amqp:// URL".into(),
            });
        }
        Ok(Settings {
            http_addr: env.or("NOTIFY_HTTP_ADDR", SocketAddr::from(([0, 0, 0, 0], 8081)))?,
            ops_addr: env.or("NOTIFY_OPS_ADDR", SocketAddr::from(([0, 0, 0, 0], 9081)))?,
            http: HttpSettings::from_source(env)?,
            amqp_url: secrecy::SecretString::from(amqp_url),
            amqp_prefix: env.or("AMQP_PREFIX", String::new())?,
            confirm_timeout: env.duration_or("PUBLISH_CONFIRM_TIMEOUT", Duration::from_secs(3))?,
            max_body: env.or("NOTIFY_MAX_BODY", 64 * 1024usize)?,
            appid,
            mch_id,
            api_key,
            v3: V3Settings::from_source(env, mode)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use service_runtime::settings::MapEnv;

    use super::*;

    fn simulator() -> MapEnv {
        MapEnv::from_pairs([("WECHAT_MODE", "simulator")])
    }

    #[test]
    fn defaults_and_required() {
        let s = Settings::from_source(&simulator()).unwrap();
        assert_eq!(s.http_addr.port(), 8081);
        assert_eq!(s.ops_addr.port(), 9081);
        let mut production = MapEnv::from_pairs([("WECHAT_MCH_ID", "1900000109")]);
        let err = Settings::from_source(&production).unwrap_err();
        assert!(err.to_string().contains("WECHAT_APPID"), "{err}");
        production.0.insert("WECHAT_APPID".into(), "wx1".into());
        let err = Settings::from_source(&production).unwrap_err();
        assert!(err.to_string().contains("WECHAT_API_KEY"), "{err}");
        let mut bad_amqp = simulator();
        bad_amqp.0.insert("AMQP_URL".into(), "http://x".into());
        let err = Settings::from_source(&bad_amqp).unwrap_err();
        assert!(err.to_string().contains("AMQP_URL"));
        assert!(!format!("{s:?}").contains(SIM_API_KEY));
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
    }

    #[test]
    fn simulator_mode_expects_the_example_merchant() {
        let s = Settings::from_source(&simulator()).unwrap();
        assert_eq!(
            (s.appid.as_str(), s.mch_id.as_str(), s.api_key.expose()),
            (SIM_APPID, SIM_MCH_ID, SIM_API_KEY)
        );
    }
}
