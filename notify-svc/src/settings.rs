//! notify-svc's settings, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use service_runtime::server::HttpSettings;
use service_runtime::settings::{SettingsError, Source, WeChatMode};
use wechat_pay::example::{API_KEY as SIM_API_KEY, APPID as SIM_APPID, MCH_ID as SIM_MCH_ID};
use wechat_pay::v2::ApiKey;

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
