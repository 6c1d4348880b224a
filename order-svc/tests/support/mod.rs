//! The whole payment path in-process: the WeChat Pay simulator, pay-gateway-svc and
//! order-svc on port 0, against the real PostgreSQL (a fresh database per test) and Redis
//! (a fresh key prefix per test).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use service_runtime::settings::MapEnv;
use sqlx::Connection;
use wechatpay_sim::{RunningSim, SimConfig};

pub const SESSION_SECRET: &str = "test-session-secret-0123456789abcdef";

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A new empty database; its URL.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is not reachable at {admin} ({e}). Start it with `bash scripts/ensure-services.sh`, or set DATABASE_URL to a server where this user may create databases.")
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Databases of earlier runs (older than an hour) are dropped, best effort.
    let stale: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'minipay_test_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    for (name,) in stale {
        let born: u64 = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(now);
        if now.saturating_sub(born) > 3600 {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
    let name = format!("minipay_test_{now}_{:08x}", rand::rng().random::<u32>());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("create the test database");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_owned();
    format!("{base}/{name}")
}

/// Fails with a clear message when Redis is down (the service itself would silently fall
/// back to PostgreSQL, which would hide the cache from the tests that look at it).
pub async fn require_redis() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap_or_else(|e| {
        panic!("Redis is not reachable at {url} ({e}). Start it with `bash scripts/ensure-services.sh`, or set REDIS_URL.")
    })
}

pub fn dead_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub struct Options {
    pub redis_url: Option<String>,
    pub pay_gateway_url: Option<String>,
    pub order_ttl: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            redis_url: None,
            pay_gateway_url: None,
            order_ttl: "15m",
        }
    }
}

pub struct Stack {
    pub sim: RunningSim,
    pub base: String,
    pub grpc: SocketAddr,
    pub database_url: String,
    pub redis_prefix: String,
    pub http: reqwest::Client,
}

pub async fn stack() -> Stack {
    stack_with(Options::default()).await
}

pub async fn stack_with(options: Options) -> Stack {
    service_runtime::telemetry::init_logs("tests");
    let sim = wechatpay_sim::spawn(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        time_scale: 0.001,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let sim_base = sim.base_url();
    let gateway_env = MapEnv::from_pairs([
        ("PAY_GATEWAY_GRPC_ADDR", "127.0.0.1:0"),
        ("PAY_GATEWAY_HTTP_ADDR", "127.0.0.1:0"),
        ("WECHAT_PAY_BASE_URL", sim_base.as_str()),
        ("WECHAT_RETRY_ATTEMPTS", "3"),
    ]);
    let gateway = pay_gateway_svc::Application::build(
        pay_gateway_svc::Settings::from_source(&gateway_env).unwrap(),
    )
    .await
    .unwrap();
    let gateway_url = options
        .pay_gateway_url
        .unwrap_or_else(|| format!("http://{}", gateway.grpc_addr()));
    tokio::spawn(gateway.run_until_stopped(std::future::pending()));

    let redis = match options.redis_url {
        Some(url) => url,
        None => {
            require_redis().await;
            redis_url()
        }
    };
    let database_url = fresh_database().await;
    let redis_prefix = format!("minipay-test-{:08x}:", rand::rng().random::<u32>());
    let env = MapEnv::from_pairs([
        ("ORDER_HTTP_ADDR", "127.0.0.1:0"),
        ("ORDER_GRPC_ADDR", "127.0.0.1:0"),
        ("DATABASE_URL", database_url.as_str()),
        ("DATABASE_MAX_CONNECTIONS", "4"),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", redis_prefix.as_str()),
        ("PAY_GATEWAY_URL", gateway_url.as_str()),
        ("PAY_GATEWAY_TIMEOUT", "3s"),
        ("SESSION_SECRET", SESSION_SECRET),
        ("ORDER_TTL", options.order_ttl),
    ]);
    let app = order_svc::Application::build(order_svc::Settings::from_source(&env).unwrap())
        .await
        .unwrap();
    let (http, grpc) = (app.http_addr(), app.grpc_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    Stack {
        sim,
        base: format!("http://{http}"),
        grpc,
        database_url,
        redis_prefix,
        http: reqwest::Client::new(),
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl Stack {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Logs `name` in through the API (a fresh `test-` code each time).
    pub async fn login(&self, name: &str) -> String {
        let code = format!("test-{name}.{:08x}", rand::rng().random::<u32>());
        let a = self
            .call(
                Method::POST,
                "/api/v1/sessions",
                None,
                Some(&format!(r#"{{"code":"{code}"}}"#)),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        assert!(a.body["expires_in"].as_u64().unwrap() > 0);
        a.body["token"].as_str().unwrap().to_owned()
    }

    pub async fn create(&self, token: &str, body: &str) -> Answer {
        self.call(Method::POST, "/api/v1/orders", Some(token), Some(body), &[])
            .await
    }

    pub async fn get(&self, token: &str, id: &str) -> Answer {
        self.call(
            Method::GET,
            &format!("/api/v1/orders/{id}"),
            Some(token),
            None,
            &[],
        )
        .await
    }

    pub async fn pay(&self, token: &str, id: &str) -> Answer {
        self.call(
            Method::POST,
            &format!("/api/v1/orders/{id}/payment"),
            Some(token),
            None,
            &[],
        )
        .await
    }
}
