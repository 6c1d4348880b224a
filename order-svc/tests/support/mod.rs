//! The whole payment path in-process: the WeChat Pay simulator, pay-gateway-svc and
//! order-svc on port 0, against the real PostgreSQL (a fresh database per test) and Redis
//! (a fresh key prefix per test).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
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
    /// Run order-svc's background workers (consumer, relay, sweeper, active query).
    pub workers: bool,
    /// notify-svc's RabbitMQ URL (a proxy, for outage tests).
    pub notify_amqp_url: Option<String>,
    pub payment_query_after: &'static str,
    pub sweep_interval: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            redis_url: None,
            pay_gateway_url: None,
            order_ttl: "15m",
            workers: true,
            notify_amqp_url: None,
            payment_query_after: "10s",
            sweep_interval: "200ms",
        }
    }
}

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Fails with a clear message when RabbitMQ is down.
pub async fn require_rabbitmq() -> lapin::Connection {
    let url = amqp_url();
    messaging::connect(&url, "tests").await.unwrap_or_else(|e| {
        panic!("RabbitMQ is not reachable at {url} ({e}). Start it with `bash scripts/ensure-services.sh`, or set AMQP_URL.")
    })
}

/// Deletes a test's queues and exchanges when the test ends (also when it fails).
pub struct AmqpCleanup {
    pub topology: messaging::Topology,
}

impl Drop for AmqpCleanup {
    fn drop(&mut self) {
        let topology = self.topology.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(conn) = messaging::connect(&amqp_url(), "tests-cleanup").await else {
                    return;
                };
                let Ok(ch) = conn.create_channel().await else {
                    return;
                };
                topology.delete_all(&ch).await;
                let _ = conn.close(200, "cleanup").await;
            });
        })
        .join();
    }
}

pub struct Stack {
    pub sim: RunningSim,
    pub topology: messaging::Topology,
    pub amqp_prefix: String,
    /// notify-svc's base URL.
    pub notify: String,
    pub gateway_url: String,
    pub database_url: String,
    pub redis_prefix: String,
    pub http: reqwest::Client,
    /// order-svc's HTTP base URL and gRPC address (of the running instance).
    pub base: String,
    pub grpc: SocketAddr,
    pub workers: Option<order_svc::workers::Workers>,
    order_env: OrderEnv,
    order_run: Option<(
        service_runtime::shutdown::Shutdown,
        tokio::task::JoinHandle<()>,
    )>,
    _cleanup: AmqpCleanup,
}

struct OrderEnv {
    redis: String,
    workers: bool,
    order_ttl: &'static str,
    payment_query_after: &'static str,
    sweep_interval: &'static str,
}

pub async fn stack() -> Stack {
    stack_with(Options::default()).await
}

pub async fn stack_with(options: Options) -> Stack {
    service_runtime::telemetry::init_test_logs();
    let _ = require_rabbitmq().await.close(200, "checked").await;
    let amqp_prefix = format!("t{:08x}.", rand::rng().random::<u32>());
    let topology = messaging::Topology::new(amqp_prefix.clone());
    let cleanup = AmqpCleanup {
        topology: topology.clone(),
    };
    let sim = wechatpay_sim::spawn(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        time_scale: 0.001,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let sim_base = sim.base_url();

    let notify_amqp = options.notify_amqp_url.unwrap_or_else(amqp_url);
    let notify_env = MapEnv::from_pairs([
        ("NOTIFY_HTTP_ADDR", "127.0.0.1:0"),
        ("AMQP_URL", notify_amqp.as_str()),
        ("AMQP_PREFIX", amqp_prefix.as_str()),
        ("PUBLISH_CONFIRM_TIMEOUT", "2s"),
    ]);
    let notify =
        notify_svc::Application::build(notify_svc::Settings::from_source(&notify_env).unwrap())
            .await
            .unwrap();
    let notify_base = format!("http://{}", notify.http_addr());
    tokio::spawn(notify.run_until_stopped(std::future::pending()));

    let notify_url = format!("{notify_base}/wechat/pay/notify");
    let gateway_env = MapEnv::from_pairs([
        ("PAY_GATEWAY_GRPC_ADDR", "127.0.0.1:0"),
        ("PAY_GATEWAY_HTTP_ADDR", "127.0.0.1:0"),
        ("WECHAT_PAY_BASE_URL", sim_base.as_str()),
        ("WECHAT_NOTIFY_URL", notify_url.as_str()),
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
    let mut stack = Stack {
        sim,
        topology,
        amqp_prefix,
        notify: notify_base,
        gateway_url,
        database_url: fresh_database().await,
        redis_prefix: format!("minipay-test-{:08x}:", rand::rng().random::<u32>()),
        http: reqwest::Client::new(),
        base: String::new(),
        grpc: dead_addr(),
        workers: None,
        order_env: OrderEnv {
            redis,
            workers: options.workers,
            order_ttl: options.order_ttl,
            payment_query_after: options.payment_query_after,
            sweep_interval: options.sweep_interval,
        },
        order_run: None,
        _cleanup: cleanup,
    };
    stack.start_order_svc().await;
    stack
}

impl Stack {
    /// The environment order-svc gets (the same database, Redis prefix and AMQP prefix on
    /// every start).
    pub fn order_settings(&self) -> order_svc::Settings {
        let e = &self.order_env;
        let env = MapEnv::from_pairs([
            ("ORDER_HTTP_ADDR", "127.0.0.1:0"),
            ("ORDER_GRPC_ADDR", "127.0.0.1:0"),
            ("DATABASE_URL", self.database_url.as_str()),
            ("DATABASE_MAX_CONNECTIONS", "4"),
            ("REDIS_URL", e.redis.as_str()),
            ("REDIS_KEY_PREFIX", self.redis_prefix.as_str()),
            ("PAY_GATEWAY_URL", self.gateway_url.as_str()),
            ("PAY_GATEWAY_TIMEOUT", "3s"),
            ("SESSION_SECRET", SESSION_SECRET),
            ("ORDER_TTL", e.order_ttl),
            ("AMQP_URL", &amqp_url()),
            ("AMQP_PREFIX", self.amqp_prefix.as_str()),
            ("WORKERS", if e.workers { "on" } else { "off" }),
            ("PAYMENT_QUERY_AFTER", e.payment_query_after),
            ("SWEEP_INTERVAL", e.sweep_interval),
            ("AMQP_RETRY_DELAY", "100ms"),
        ]);
        order_svc::Settings::from_source(&env).unwrap()
    }

    /// Starts order-svc (again).
    pub async fn start_order_svc(&mut self) {
        let app = order_svc::Application::build(self.order_settings())
            .await
            .unwrap();
        self.base = format!("http://{}", app.http_addr());
        self.grpc = app.grpc_addr();
        self.workers = Some(app.workers());
        let stop = service_runtime::shutdown::Shutdown::new();
        let task = tokio::spawn(app.run_until_stopped(stop.wait()).map(|r| r.unwrap()));
        self.order_run = Some((stop, task));
        if self.order_env.workers {
            self.wait_for_consumer().await;
        }
    }

    /// Stops order-svc as SIGTERM would, and waits until it has.
    pub async fn stop_order_svc(&mut self) {
        if let Some((stop, task)) = self.order_run.take() {
            stop.trigger();
            task.await.unwrap();
        }
    }

    /// Waits until order-svc's queue has a consumer (its topology is declared).
    pub async fn wait_for_consumer(&self) {
        let conn = require_rabbitmq().await;
        for _ in 0..200 {
            // A passive declare of a missing queue closes the channel: a fresh one each try.
            let ch = conn.create_channel().await.unwrap();
            let passive = lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            if let Ok(q) = ch
                .queue_declare(
                    &self.topology.order_payments_queue(),
                    passive,
                    lapin::types::FieldTable::default(),
                )
                .await
                && q.consumer_count() > 0
            {
                let _ = conn.close(200, "ok").await;
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "order-svc never started consuming {}",
            self.topology.order_payments_queue()
        );
    }

    pub fn workers(&self) -> &order_svc::workers::Workers {
        self.workers.as_ref().unwrap()
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

/// A TCP proxy to RabbitMQ that a test can cut and restore, to play a broker outage
/// without stopping the shared broker.
pub struct Proxy {
    pub addr: SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            up,
            generation,
        }
    }

    /// Cuts every connection and refuses new ones.
    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accepts connections again.
    pub fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// (routing key, body) of every event seen.
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// Collects every event published to the orders exchange (bound before anything is paid).
pub struct OrderEvents {
    pub seen: Seen,
    _conn: lapin::Connection,
}

impl OrderEvents {
    pub async fn listen(topology: &messaging::Topology) -> OrderEvents {
        use futures_util::StreamExt;
        let conn = require_rabbitmq().await;
        let ch = conn.create_channel().await.unwrap();
        topology.declare_orders_exchange(&ch).await.unwrap();
        let q = ch
            .queue_declare(
                "",
                lapin::options::QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .unwrap();
        ch.queue_bind(
            q.name().as_str(),
            &topology.orders_exchange(),
            "#",
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
        let mut consumer = ch
            .basic_consume(
                q.name().as_str(),
                "test-listener",
                lapin::options::BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .unwrap();
        let seen: Seen = Default::default();
        let sink = seen.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                sink.lock()
                    .unwrap()
                    .push((d.routing_key.to_string(), d.data.clone()));
            }
        });
        OrderEvents { seen, _conn: conn }
    }

    pub fn count(&self, routing_key: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k == routing_key)
            .count()
    }
}

impl Stack {
    /// Messages waiting in order-svc's dead-letter queue.
    pub async fn dead_letters(&self) -> u32 {
        let conn = require_rabbitmq().await;
        let ch = conn.create_channel().await.unwrap();
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let q = ch
            .queue_declare(
                &self.topology.order_payments_dlq(),
                passive,
                lapin::types::FieldTable::default(),
            )
            .await
            .unwrap();
        let _ = conn.close(200, "ok").await;
        q.message_count()
    }

    /// Polls the order until its status is `status` (at most 15 s).
    pub async fn wait_status(&self, token: &str, id: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..300 {
            let a = self.get(token, id).await;
            if a.body["status"] == status {
                return a.body;
            }
            last = a.body;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("order {id} never became {status}; last seen: {last}");
    }

    /// A logged-in user's new order with a prepay at the simulator: (token, order id, out_trade_no).
    pub async fn prepaid_order(&self, user: &str) -> (String, String, String) {
        let token = self.login(user).await;
        let order = self
            .create(&token, r#"{"items":[{"sku":"TEA-JASMINE","quantity":1}]}"#)
            .await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
        let id = order.body["id"].as_str().unwrap().to_owned();
        let pay = self.pay(&token, &id).await;
        assert_eq!(pay.status, StatusCode::OK, "{}", pay.body);
        (
            token,
            id,
            order.body["out_trade_no"].as_str().unwrap().to_owned(),
        )
    }

    /// The user pays in WeChat (the simulator then notifies notify-svc).
    pub fn user_pays(&self, out_trade_no: &str) {
        let sim = self.sim.sim();
        sim.pay(
            &sim.find(out_trade_no, None).unwrap(),
            wechatpay_sim::PayResult::Success,
        )
        .unwrap();
    }

    /// The simulator's view of an order.
    pub fn at_wechat(&self, out_trade_no: &str) -> wechatpay_sim::OrderView {
        let sim = self.sim.sim();
        sim.view(&sim.find(out_trade_no, None).unwrap()).unwrap()
    }

    pub async fn sql_count(&self, sql: &str) -> i64 {
        let mut conn = sqlx::PgConnection::connect(&self.database_url)
            .await
            .unwrap();
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap();
        n
    }

    pub async fn sql(&self, sql: &str) {
        let mut conn = sqlx::PgConnection::connect(&self.database_url)
            .await
            .unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
}
