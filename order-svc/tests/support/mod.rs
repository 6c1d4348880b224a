//! order-svc's in-process stack: the WeChat Pay simulator, notify-svc, pay-gateway-svc and
//! order-svc on port 0, against the real PostgreSQL (a fresh database per test), Redis (a
//! fresh key prefix per test) and RabbitMQ (a fresh name prefix per test). What is not
//! specific to order-svc (service checks, cleanup, the API client, waits) is `test-support`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::FutureExt;
use prost::Message as _;
use reqwest::StatusCode;
use serde_json::Value;
use service_runtime::settings::MapEnv;
use sqlx::Connection;
pub use test_support::{
    AmqpCleanup, OrderApi, OrderEvents, SIMULATOR_MODE, amqp_url, dead_addr, fresh_database,
    queue_state, redis_url, require_rabbitmq, require_redis, unique_id, wait_until,
};
use wechatpay_sim::{RunningSim, SimConfig};

pub const SESSION_SECRET: &str = "test-session-secret-0123456789abcdef";

/// order-svc's gRPC token in these tests.
pub const ORDER_GRPC_TOKEN: &str = "order-svc-test-grpc-token-0123456789abcdef";

/// pay-gateway-svc's gRPC token in these tests (order-svc sends it).
pub const GATEWAY_GRPC_TOKEN: &str = "pay-gateway-test-grpc-token-0123456789abcdef";

/// The operator's token of the admin API in these tests (`ADMIN_TOKENS` holds its hash).
pub const ADMIN_TOKEN: &str = "admin-test-token-0123456789abcdef";
/// The operator it belongs to.
pub const ADMIN_OPERATOR: &str = "ops-tester";

/// Longest wait for something the stack does on its own (a notification applied, an event
/// relayed): far above what it takes, so only a real failure reaches it.
pub const PATIENCE: Duration = Duration::from_secs(15);

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
    /// order-svc's `LOGIN_RATE_PER_MINUTE`.
    pub login_rate_per_minute: &'static str,
    /// order-svc's `TRUSTED_PROXY`.
    pub trusted_proxy: bool,
    /// More of order-svc's settings (e.g. short `HTTP_*` timeouts).
    pub order_env: Vec<(&'static str, &'static str)>,
    /// order-svc's `DATABASE_MAX_CONNECTIONS`.
    pub database_max_connections: &'static str,
    /// order-svc reaches PostgreSQL through an outage [`Proxy`] (`Stack::db_proxy`).
    pub database_proxy: bool,
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
            login_rate_per_minute: "60",
            trusted_proxy: false,
            order_env: Vec::new(),
            database_max_connections: "4",
            database_proxy: false,
        }
    }
}

pub struct Stack {
    pub sim: RunningSim,
    pub topology: messaging::Topology,
    pub amqp_prefix: String,
    /// notify-svc's base URL.
    pub notify: String,
    /// notify-svc's ops base URL (`/healthz`, `/readyz`, `/metrics`).
    pub notify_ops: String,
    pub gateway_url: String,
    pub database_url: String,
    /// The proxy between order-svc and PostgreSQL, with `Options::database_proxy`.
    pub db_proxy: Option<test_support::Proxy>,
    pub redis_prefix: String,
    /// order-svc's HTTP API (of the running instance).
    pub api: OrderApi,
    /// order-svc's ops port (of the running instance): `/healthz`, `/readyz`, `/metrics`.
    pub ops: OrderApi,
    /// order-svc's gRPC address (of the running instance).
    pub grpc: SocketAddr,
    pub workers: Option<order_svc::workers::Workers>,
    /// The merchant certificate files pay-gateway-svc refunds with (removed on drop).
    pub merchant_cert: CertFiles,
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
    login_rate_per_minute: &'static str,
    trusted_proxy: bool,
    extra: Vec<(&'static str, &'static str)>,
    database_max_connections: &'static str,
}

pub async fn stack() -> Stack {
    stack_with(Options::default()).await
}

pub async fn stack_with(options: Options) -> Stack {
    service_runtime::telemetry::init_test_logs();
    let _ = require_rabbitmq().await.close(200, "checked").await;
    let amqp_prefix = format!("t{}.", unique_id());
    let cleanup = AmqpCleanup::new(amqp_prefix.clone());
    let topology = cleanup.topology.clone();
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
        SIMULATOR_MODE,
        ("NOTIFY_HTTP_ADDR", "127.0.0.1:0"),
        ("NOTIFY_OPS_ADDR", "127.0.0.1:0"),
        ("AMQP_URL", notify_amqp.as_str()),
        ("AMQP_PREFIX", amqp_prefix.as_str()),
        ("PUBLISH_CONFIRM_TIMEOUT", "2s"),
    ]);
    let notify =
        notify_svc::Application::build(notify_svc::Settings::from_source(&notify_env).unwrap())
            .await
            .unwrap();
    let notify_base = format!("http://{}", notify.http_addr());
    let notify_ops = format!("http://{}", notify.ops_addr());
    tokio::spawn(notify.run_until_stopped(std::future::pending()));

    let notify_url = format!("{notify_base}/wechat/pay/notify");
    let refund_notify_url = format!("{notify_base}/wechat/refund/notify");
    let merchant_cert = CertFiles::merchant();
    let gateway_env = MapEnv::from_pairs([
        SIMULATOR_MODE,
        ("PAY_GATEWAY_GRPC_ADDR", "127.0.0.1:0"),
        ("PAY_GATEWAY_OPS_ADDR", "127.0.0.1:0"),
        ("GRPC_TOKEN", GATEWAY_GRPC_TOKEN),
        ("WECHAT_PAY_BASE_URL", sim_base.as_str()),
        ("WECHAT_NOTIFY_URL", notify_url.as_str()),
        ("WECHAT_REFUND_NOTIFY_URL", refund_notify_url.as_str()),
        ("WECHAT_CERT_FILE", merchant_cert.cert.to_str().unwrap()),
        ("WECHAT_KEY_FILE", merchant_cert.key.to_str().unwrap()),
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
    let db_proxy = if options.database_proxy {
        Some(database_proxy(&database_url).await)
    } else {
        None
    };
    let mut stack = Stack {
        sim,
        topology,
        amqp_prefix,
        notify: notify_base,
        notify_ops,
        gateway_url,
        database_url,
        db_proxy,
        redis_prefix: format!("minipay-test-{}:", unique_id()),
        api: OrderApi::new(String::new()),
        ops: OrderApi::new(String::new()),
        grpc: dead_addr(),
        workers: None,
        merchant_cert,
        order_env: OrderEnv {
            redis,
            workers: options.workers,
            order_ttl: options.order_ttl,
            payment_query_after: options.payment_query_after,
            sweep_interval: options.sweep_interval,
            login_rate_per_minute: options.login_rate_per_minute,
            trusted_proxy: options.trusted_proxy,
            extra: options.order_env,
            database_max_connections: options.database_max_connections,
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
        let admin_tokens = order_svc::operators::AdminTokens::entry(ADMIN_OPERATOR, ADMIN_TOKEN);
        let database_url = match &self.db_proxy {
            Some(proxy) => via(&self.database_url, proxy.addr),
            None => self.database_url.clone(),
        };
        let mut env = MapEnv::from_pairs([
            SIMULATOR_MODE,
            ("ORDER_HTTP_ADDR", "127.0.0.1:0"),
            ("ORDER_GRPC_ADDR", "127.0.0.1:0"),
            ("ORDER_OPS_ADDR", "127.0.0.1:0"),
            ("GRPC_TOKEN", ORDER_GRPC_TOKEN),
            ("PAY_GATEWAY_TOKEN", GATEWAY_GRPC_TOKEN),
            ("DATABASE_URL", database_url.as_str()),
            ("DATABASE_MAX_CONNECTIONS", e.database_max_connections),
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
            ("LOGIN_RATE_PER_MINUTE", e.login_rate_per_minute),
            ("TRUSTED_PROXY", if e.trusted_proxy { "on" } else { "off" }),
            ("ADMIN_TOKENS", admin_tokens.as_str()),
            ("REFUND_QUERY_AFTER", "300ms"),
            ("REFUND_QUERY_MAX_INTERVAL", "1s"),
        ]);
        for (k, v) in &e.extra {
            env.0.insert((*k).to_owned(), (*v).to_owned());
        }
        order_svc::Settings::from_source(&env).unwrap()
    }

    /// Starts order-svc (again).
    pub async fn start_order_svc(&mut self) {
        let app = order_svc::Application::build(self.order_settings())
            .await
            .unwrap();
        self.api = OrderApi::new(format!("http://{}", app.http_addr()));
        self.ops = OrderApi::new(format!("http://{}", app.ops_addr()));
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
        let queue = self.topology.order_payments_queue();
        wait_until(
            Duration::from_secs(10),
            &format!("order-svc consumes {queue}"),
            || async { queue_state(&queue).await.filter(|q| q.consumers > 0) },
        )
        .await;
    }

    pub fn workers(&self) -> &order_svc::workers::Workers {
        self.workers.as_ref().unwrap()
    }

    /// Dead letters: those order-svc took off its dead-letter queue into PostgreSQL, and
    /// those still waiting in the queue.
    pub async fn dead_letters(&self) -> u32 {
        let dlq = self.topology.order_payments_dlq();
        let waiting = queue_state(&dlq)
            .await
            .unwrap_or_else(|| panic!("{dlq} is not declared"))
            .messages;
        let kept = self.sql_count("SELECT count(*) FROM dead_letters").await;
        waiting + u32::try_from(kept).unwrap()
    }

    /// Waits until order-svc's dead-letter queue holds `n` messages.
    pub async fn wait_dead_letters(&self, n: u32) {
        wait_until(PATIENCE, &format!("{n} dead letters"), || async {
            match self.dead_letters().await {
                seen if seen == n => Ok(()),
                seen => Err(seen),
            }
        })
        .await;
    }

    /// Polls the order until its status is `status`; the order.
    pub async fn wait_status(&self, token: &str, id: &str, status: &str) -> Value {
        wait_until(PATIENCE, &format!("order {id} is {status}"), || async {
            let order = self.api.get(token, id).await.body;
            if order["status"] == status {
                Ok(order)
            } else {
                Err(order)
            }
        })
        .await
    }

    /// A logged-in user's new order with a prepay at the simulator: (token, order id, out_trade_no).
    pub async fn prepaid_order(&self, user: &str) -> (String, String, String) {
        let token = self.api.login(user).await;
        let order = self
            .api
            .create(&token, r#"{"items":[{"sku":"TEA-JASMINE","quantity":1}]}"#)
            .await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
        let id = order.body["id"].as_str().unwrap().to_owned();
        let pay = self.api.pay(&token, &id).await;
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

    /// Waits until the simulator has recorded every copy of every notification attempt for
    /// this order and the last attempt was acknowledged; the attempts (as JSON).
    pub async fn notification_settled(&self, out_trade_no: &str, copies: u64) -> Vec<Value> {
        wait_until(
            PATIENCE,
            &format!("all {copies} copies of {out_trade_no}'s notification are recorded"),
            || async {
                let view = serde_json::to_value(self.at_wechat(out_trade_no)).unwrap();
                test_support::sim::settled_attempts(&view, copies)
            },
        )
        .await
    }

    /// Returns once order-svc has handled every payment event published before the call: a
    /// fresh order is paid through the same path (notify-svc, the queue, the consumer); the
    /// queue hands events in order to the one consumer, so every earlier event was taken up
    /// before this one, and once it is PAID and no event is in hand, all are done. (An event
    /// given back for redelivery may come after it; the tests use it after acks and dead
    /// letters only.) Needs the simulator's notification faults off.
    pub async fn handled_so_far(&self) {
        let (token, id, number) = self.prepaid_order("barrier").await;
        self.user_pays(&number);
        self.wait_status(&token, &id, "PAID").await;
        wait_until(PATIENCE, "no payment event in hand", || async {
            match self.workers().events_in_hand() {
                0 => Ok(()),
                n => Err(n),
            }
        })
        .await;
    }

    /// Waits until `n` events with this routing key were seen.
    pub async fn wait_events(&self, events: &OrderEvents, routing_key: &str, n: usize) {
        wait_until(PATIENCE, &format!("{n} {routing_key} events"), || async {
            match events.count(routing_key) {
                seen if seen >= n => Ok(()),
                seen => Err(seen),
            }
        })
        .await;
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

/// A proxy to the PostgreSQL server of `database_url`.
async fn database_proxy(database_url: &str) -> test_support::Proxy {
    let url = reqwest::Url::parse(database_url).unwrap();
    let host = url.host_str().unwrap();
    let upstream = tokio::net::lookup_host((host, url.port().unwrap_or(5432)))
        .await
        .unwrap()
        .next()
        .unwrap();
    test_support::Proxy::start(upstream).await
}

/// `database_url` with its server replaced by `addr`.
fn via(database_url: &str, addr: SocketAddr) -> String {
    let mut url = reqwest::Url::parse(database_url).unwrap();
    url.set_host(Some(&addr.ip().to_string())).unwrap();
    url.set_port(Some(addr.port())).unwrap();
    url.to_string()
}

/// A merchant API certificate and key (from a CA made here) written to files for
/// pay-gateway-svc; removed when dropped. The simulator over plain HTTP asks for none, but
/// pay-gateway-svc refunds only with one.
pub struct CertFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl CertFiles {
    pub fn merchant() -> CertFiles {
        let pem = test_support::TestCa::new("merchant CA").client(wechatpay_sim::DEFAULT_MCH_ID);
        let dir = std::env::temp_dir();
        let id = unique_id();
        let files = CertFiles {
            cert: dir.join(format!("minipay-{id}-apiclient_cert.pem")),
            key: dir.join(format!("minipay-{id}-apiclient_key.pem")),
        };
        std::fs::write(&files.cert, pem.cert).unwrap();
        std::fs::write(&files.key, pem.key).unwrap();
        files
    }
}

impl Drop for CertFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cert);
        let _ = std::fs::remove_file(&self.key);
    }
}

/// A `payment.succeeded` event as notify-svc publishes it: 19.99 CNY to the simulator's
/// merchant.
pub fn payment_event(
    out_trade_no: &str,
    transaction_id: &str,
) -> proto::events::v1::PaymentSucceeded {
    proto::events::v1::PaymentSucceeded {
        event_id: format!("wxpay:{transaction_id}"),
        out_trade_no: out_trade_no.into(),
        transaction_id: transaction_id.into(),
        amount_fen: 1999,
        appid: wechatpay_sim::DEFAULT_APPID.into(),
        mch_id: wechatpay_sim::DEFAULT_MCH_ID.into(),
        ..Default::default()
    }
}

/// Publishes `event` to the payments exchange, as notify-svc would.
pub async fn publish(s: &Stack, event: &proto::events::v1::PaymentSucceeded) {
    let conn = require_rabbitmq().await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    ch.basic_publish(
        &s.topology.payments_exchange(),
        messaging::PAYMENT_SUCCEEDED,
        Default::default(),
        &event.encode_to_vec(),
        Default::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}
