//! order-svc's settings, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use service_runtime::grpc_auth::{GrpcSettings, GrpcToken};
use service_runtime::server::HttpSettings;
use service_runtime::settings::{SettingsError, Source, WeChatMode};

/// Everything order-svc needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// HTTP API address (`ORDER_HTTP_ADDR`, default `0.0.0.0:8080`).
    pub http_addr: SocketAddr,
    /// gRPC address (`ORDER_GRPC_ADDR`, default `0.0.0.0:50051`).
    pub grpc_addr: SocketAddr,
    /// `/healthz`, `/readyz` and `/metrics`, apart from the public API (`ORDER_OPS_ADDR`,
    /// default `0.0.0.0:9080`).
    pub ops_addr: SocketAddr,
    /// Timeouts and connection limit of both HTTP servers (`HTTP_*`).
    pub http: HttpSettings,
    /// The token gRPC callers must send, and reflection (`GRPC_TOKEN`, `GRPC_REFLECTION`).
    pub grpc: GrpcSettings,
    /// PostgreSQL (`DATABASE_URL`, required; secret: it may hold a password).
    pub database_url: SecretString,
    /// Largest connection pool (`DATABASE_MAX_CONNECTIONS`, default 10).
    pub database_max_connections: u32,
    /// Redis (`REDIS_URL`, default `redis://127.0.0.1:6379`).
    pub redis_url: SecretString,
    /// Prefix of every Redis key (`REDIS_KEY_PREFIX`, default `minipay:`).
    pub redis_key_prefix: String,
    /// How long a cached status lives (`STATUS_CACHE_TTL`, default 10m).
    pub status_cache_ttl: Duration,
    /// Longest wait for Redis before falling back to PostgreSQL (`REDIS_TIMEOUT`, default 250ms).
    pub redis_timeout: Duration,
    /// pay-gateway-svc (`PAY_GATEWAY_URL`, default `http://127.0.0.1:50052`).
    pub pay_gateway_url: String,
    /// Longest wait for pay-gateway-svc (`PAY_GATEWAY_TIMEOUT`, default 10s).
    pub pay_gateway_timeout: Duration,
    /// pay-gateway-svc's gRPC token (`PAY_GATEWAY_TOKEN` or `PAY_GATEWAY_TOKEN_FILE`; required
    /// unless `WECHAT_MODE=simulator`).
    pub pay_gateway_token: Option<GrpcToken>,
    /// Key that signs session tokens (`SESSION_SECRET`, required, at least 32 bytes).
    pub session_secret: SecretString,
    /// Session token lifetime (`SESSION_TTL`, default 2h).
    pub session_ttl: Duration,
    /// How long an order stays payable (`ORDER_TTL`, default 15m).
    pub order_ttl: Duration,
    /// The `body` WeChat shows the payer (`PAYMENT_DESCRIPTION`, default `Minipay-商品`).
    pub payment_description: String,
    /// RabbitMQ (`AMQP_URL`, default `amqp://guest:guest@127.0.0.1:5672/%2f`; secret).
    pub amqp_url: SecretString,
    /// Prefix of every exchange and queue name (`AMQP_PREFIX`, default empty).
    pub amqp_prefix: String,
    /// Unacked payment events in flight (`AMQP_PREFETCH`, default 128): what one shared
    /// transaction can take up, so it bounds the batches.
    pub amqp_prefetch: u16,
    /// Deliveries of one event before it is dead-lettered (`AMQP_DELIVERY_LIMIT`, default 5).
    pub amqp_delivery_limit: i32,
    /// Pause before a failed event is given back for redelivery (`AMQP_RETRY_DELAY`, default 2s).
    pub amqp_retry_delay: Duration,
    /// The Mini Program payments must be for (`WECHAT_APPID`; required unless
    /// `WECHAT_MODE=simulator`, which defaults it to the simulator's).
    pub wechat_appid: String,
    /// The merchant payments must be for (`WECHAT_MCH_ID`; required unless
    /// `WECHAT_MODE=simulator`, which defaults it to the simulator's).
    pub wechat_mch_id: String,
    /// First order query this long after a prepay without notification (`PAYMENT_QUERY_AFTER`, default 10s).
    pub payment_query_after: Duration,
    /// Longest gap between order queries (`PAYMENT_QUERY_MAX_INTERVAL`, default 5m).
    pub payment_query_max_interval: Duration,
    /// How often expired orders are swept (`SWEEP_INTERVAL`, default 5s).
    pub sweep_interval: Duration,
    /// Logins allowed per minute from one client address, and with codes sharing their
    /// first 8 characters (`LOGIN_RATE_PER_MINUTE`, default 60).
    pub login_rate_per_minute: u32,
    /// A trusted reverse proxy is in front: the client address is the last hop of
    /// `X-Forwarded-For`, not the peer (`TRUSTED_PROXY`, `on` or `off`, default `off`).
    pub trusted_proxy: bool,
    /// The operators of the admin API: `operator:sha256hex` entries, comma-separated
    /// (`ADMIN_TOKENS`; unset, nobody gets in).
    pub admin_tokens: crate::operators::AdminTokens,
    /// First refund query (or resend) this long after a refund was asked or accepted
    /// (`REFUND_QUERY_AFTER`, default 10s).
    pub refund_query_after: Duration,
    /// Longest gap between refund queries (`REFUND_QUERY_MAX_INTERVAL`, default 5m).
    pub refund_query_max_interval: Duration,
    /// Run the background workers (consumer, outbox relay, sweeper, active query) in this
    /// process (`WORKERS`, `on` or `off`, default `on`).
    pub workers: bool,
    /// Reconcile the previous day every day (`RECONCILE_DAILY`, `on` or `off`, default `on`;
    /// an operator's request works either way).
    pub reconcile_daily: bool,
    /// The Beijing time after which the previous day is reconciled (`RECONCILE_AFTER`,
    /// `HH:MM`, default `10:00`: WeChat makes day D's bill from 09:00 on D+1).
    pub reconcile_after: time::Time,
}

impl Settings {
    /// Reads the settings; a missing or invalid variable fails with its name.
    pub fn from_source(env: &impl Source) -> Result<Self, SettingsError> {
        let session_secret: String = env.required("SESSION_SECRET")?;
        if session_secret.len() < 32 {
            return Err(SettingsError::Invalid {
                name: "SESSION_SECRET".into(),
                reason: "must be at least 32 bytes".into(),
            });
        }
        let database_url: String = env.required("DATABASE_URL")?;
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(SettingsError::Invalid {
                name: "DATABASE_URL".into(),
                reason: "must be a postgres:// URL".into(),
            });
        }
        let mode = WeChatMode::from_source(env)?;
        let wechat_appid = mode.merchant(env, "WECHAT_APPID", wechat_pay::example::APPID)?;
        let wechat_mch_id = mode.merchant(env, "WECHAT_MCH_ID", wechat_pay::example::MCH_ID)?;
        let order_ttl = env.duration_or("ORDER_TTL", Duration::from_secs(15 * 60))?;
        if order_ttl < Duration::from_secs(61) {
            return Err(SettingsError::Invalid {
                name: "ORDER_TTL".into(),
                reason: "WeChat needs at least 1 minute to pay".into(),
            });
        }
        Ok(Settings {
            http_addr: env.or("ORDER_HTTP_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            grpc_addr: env.or("ORDER_GRPC_ADDR", SocketAddr::from(([0, 0, 0, 0], 50051)))?,
            ops_addr: env.or("ORDER_OPS_ADDR", SocketAddr::from(([0, 0, 0, 0], 9080)))?,
            http: HttpSettings::from_source(env)?,
            grpc: GrpcSettings::from_source(env)?,
            database_url: SecretString::from(database_url),
            database_max_connections: env.or("DATABASE_MAX_CONNECTIONS", 10u32)?.max(1),
            redis_url: SecretString::from(
                env.or("REDIS_URL", "redis://127.0.0.1:6379".to_owned())?,
            ),
            redis_key_prefix: env.or("REDIS_KEY_PREFIX", "minipay:".to_owned())?,
            status_cache_ttl: env.duration_or("STATUS_CACHE_TTL", Duration::from_secs(600))?,
            redis_timeout: env.duration_or("REDIS_TIMEOUT", Duration::from_millis(250))?,
            pay_gateway_url: env.or("PAY_GATEWAY_URL", "http://127.0.0.1:50052".to_owned())?,
            pay_gateway_timeout: env.duration_or("PAY_GATEWAY_TIMEOUT", Duration::from_secs(10))?,
            pay_gateway_token: GrpcToken::required_unless_simulator(env, "PAY_GATEWAY_TOKEN")?,
            session_secret: SecretString::from(session_secret),
            session_ttl: env.duration_or("SESSION_TTL", Duration::from_secs(2 * 3600))?,
            order_ttl,
            payment_description: env.or("PAYMENT_DESCRIPTION", "Minipay-商品".to_owned())?,
            amqp_url: SecretString::from(env.or(
                "AMQP_URL",
                "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            )?),
            amqp_prefix: env.or("AMQP_PREFIX", String::new())?,
            amqp_prefetch: env.or("AMQP_PREFETCH", 128u16)?.max(1),
            amqp_delivery_limit: env.or("AMQP_DELIVERY_LIMIT", 5i32)?.max(1),
            amqp_retry_delay: env.duration_or("AMQP_RETRY_DELAY", Duration::from_secs(2))?,
            wechat_appid,
            wechat_mch_id,
            payment_query_after: env.duration_or("PAYMENT_QUERY_AFTER", Duration::from_secs(10))?,
            payment_query_max_interval: env
                .duration_or("PAYMENT_QUERY_MAX_INTERVAL", Duration::from_secs(300))?,
            sweep_interval: env.duration_or("SWEEP_INTERVAL", Duration::from_secs(5))?,
            login_rate_per_minute: match env.or("LOGIN_RATE_PER_MINUTE", 60u32)? {
                0 => {
                    return Err(SettingsError::Invalid {
                        name: "LOGIN_RATE_PER_MINUTE".into(),
                        reason: "must be at least 1".into(),
                    });
                }
                n => n,
            },
            trusted_proxy: env.on_off_or("TRUSTED_PROXY", false)?,
            admin_tokens: crate::operators::AdminTokens::parse(
                &env.get("ADMIN_TOKENS").unwrap_or_default(),
            )
            .map_err(|e| SettingsError::Invalid {
                name: "ADMIN_TOKENS".into(),
                reason: e.to_string(),
            })?,
            refund_query_after: env.duration_or("REFUND_QUERY_AFTER", Duration::from_secs(10))?,
            refund_query_max_interval: env
                .duration_or("REFUND_QUERY_MAX_INTERVAL", Duration::from_secs(300))?,
            workers: env.on_off_or("WORKERS", true)?,
            reconcile_daily: env.on_off_or("RECONCILE_DAILY", true)?,
            reconcile_after: match env.get("RECONCILE_AFTER") {
                None => time::Time::from_hms(10, 0, 0).unwrap_or(time::Time::MIDNIGHT),
                Some(text) => {
                    time::Time::parse(&text, time::macros::format_description!("[hour]:[minute]"))
                        .map_err(|_| SettingsError::Invalid {
                        name: "RECONCILE_AFTER".into(),
                        reason: "HH:MM, Beijing time (e.g. 10:00)".into(),
                    })?
                }
            },
        })
    }

    /// The database URL (to connect; never log it).
    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use service_runtime::settings::MapEnv;

    use super::*;

    #[test]
    fn required_and_invalid_variables_are_named() {
        let err = Settings::from_source(&MapEnv::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable SESSION_SECRET is required but not set"
        );
        let err = Settings::from_source(&MapEnv::from_pairs([(
            "SESSION_SECRET",
            "x".repeat(32).as_str(),
        )]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable DATABASE_URL is required but not set"
        );
        let err =
            Settings::from_source(&MapEnv::from_pairs([("SESSION_SECRET", "short")])).unwrap_err();
        assert!(err.to_string().contains("SESSION_SECRET") && !err.to_string().contains("short\""));
        let secret = "s".repeat(32);
        let ok = MapEnv::from_pairs([
            ("SESSION_SECRET", secret.as_str()),
            ("DATABASE_URL", "postgres://u:pw@db/x"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_MCH_ID", "1900000109"),
            ("GRPC_TOKEN", "order-svc-grpc-token-0123456789abcdef"),
            (
                "PAY_GATEWAY_TOKEN",
                "pay-gateway-grpc-token-0123456789abcdef",
            ),
        ]);
        let s = Settings::from_source(&ok).unwrap();
        assert_eq!(s.http_addr.port(), 8080);
        assert_eq!(s.grpc_addr.port(), 50051);
        assert_eq!(s.ops_addr.port(), 9080);
        assert!(!s.grpc.reflection, "reflection is off unless asked for");
        assert!(
            !format!("{s:?}").contains("grpc-token"),
            "Debug must not show the gRPC tokens"
        );
        for token in ["GRPC_TOKEN", "PAY_GATEWAY_TOKEN"] {
            let mut without = ok.clone();
            without.0.remove(token);
            let err = Settings::from_source(&without).unwrap_err();
            assert!(err.to_string().contains(token), "{err}");
            without.0.insert("WECHAT_MODE".into(), "simulator".into());
            assert!(Settings::from_source(&without).is_ok());
        }
        assert!(
            !format!("{s:?}").contains("pw@db"),
            "Debug must not show the database password"
        );
        let mut bad = ok.clone();
        bad.0.insert("ORDER_TTL".into(), "30s".into());
        assert!(
            Settings::from_source(&bad)
                .unwrap_err()
                .to_string()
                .contains("ORDER_TTL")
        );
    }

    fn base() -> MapEnv {
        MapEnv::from_pairs([
            ("SESSION_SECRET", "s".repeat(32).as_str()),
            ("DATABASE_URL", "postgres://db/x"),
            ("GRPC_TOKEN", "order-svc-grpc-token-0123456789abcdef"),
            (
                "PAY_GATEWAY_TOKEN",
                "pay-gateway-grpc-token-0123456789abcdef",
            ),
        ])
    }

    #[test]
    fn without_a_mode_or_a_merchant_the_start_is_refused_naming_the_variable() {
        let err = Settings::from_source(&base()).unwrap_err();
        assert!(
            err.to_string().contains("WECHAT_APPID")
                && err.to_string().contains("WECHAT_MODE=simulator"),
            "{err}"
        );
        let mut only_appid = base();
        only_appid.0.insert("WECHAT_APPID".into(), "wx1".into());
        let err = Settings::from_source(&only_appid).unwrap_err();
        assert!(err.to_string().contains("WECHAT_MCH_ID"), "{err}");
        only_appid
            .0
            .insert("WECHAT_MCH_ID".into(), "1900000109".into());
        let s = Settings::from_source(&only_appid).unwrap();
        assert_eq!(
            (s.wechat_appid.as_str(), s.wechat_mch_id.as_str()),
            ("wx1", "1900000109")
        );
    }

    #[test]
    fn simulator_mode_expects_the_example_merchant() {
        let mut env = base();
        env.0.insert("WECHAT_MODE".into(), "simulator".into());
        let s = Settings::from_source(&env).unwrap();
        assert_eq!(
            (s.wechat_appid.as_str(), s.wechat_mch_id.as_str()),
            (wechat_pay::example::APPID, wechat_pay::example::MCH_ID)
        );
    }

    #[test]
    fn login_limits_have_a_default_and_refuse_nonsense() {
        let mut env = base();
        env.0.insert("WECHAT_MODE".into(), "simulator".into());
        let s = Settings::from_source(&env).unwrap();
        assert_eq!((s.login_rate_per_minute, s.trusted_proxy), (60, false));
        for (name, value) in [("LOGIN_RATE_PER_MINUTE", "0"), ("TRUSTED_PROXY", "yes")] {
            let mut bad = env.clone();
            bad.0.insert(name.into(), value.into());
            let err = Settings::from_source(&bad).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
