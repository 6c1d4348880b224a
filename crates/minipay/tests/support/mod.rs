//! Stacks of real processes for the end-to-end tests, each with its own database, Redis and
//! AMQP names and free ports ([`isolated`], [`start`]); and the stack behind the real API
//! gateway ([`Edge`]): Envoy (installed by scripts/install-envoy.sh) with the shared
//! configuration of k8s/base/gateway/envoy.yaml and a certificate made at run time, in front
//! of the real services, started as `minipay up --gateway` starts them.

#![allow(dead_code)] // each test binary uses a part

use std::time::Duration;

use minipay::gateway::{GatewayPorts, GatewaySetup};
use minipay::process::LogSink;
use minipay::purchase::Shop;
use minipay::stack::{self, RunningStack, StackConfig};
use serde_json::Value;
use test_support::{
    AmqpCleanup, OrderApi, amqp_url, fresh_database, redis_url, require_rabbitmq, require_redis,
    unique_id, wait_until,
};

/// A stack configuration of one test's own: a fresh database, Redis keys and AMQP names
/// under a unique prefix (`tag` names the test file in them), WeChat's clock 1,000 times
/// faster, output kept in `sink`; and what removes its queues and exchanges when it ends.
pub(crate) async fn isolated(tag: &str, sink: LogSink) -> (StackConfig, AmqpCleanup) {
    require_redis().await;
    let _ = require_rabbitmq().await.close(200, "checked").await;
    let database = fresh_database().await;
    let id = unique_id();
    let mut config = StackConfig::local(stack::bin_dir(), database, redis_url(), amqp_url(), sink);
    config.amqp_prefix = format!("{tag}{id}.");
    config.redis_prefix = format!("minipay-{tag}-{id}:");
    config.sim_time_scale = 0.001;
    let cleanup = AmqpCleanup::new(config.amqp_prefix.clone());
    (config, cleanup)
}

/// Starts `config` on free ports, or fails the test with the reason.
pub(crate) async fn start(config: StackConfig) -> RunningStack {
    RunningStack::start_on_free_ports(config)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the stack did not start: {}",
                service_runtime::telemetry::error_chain(&e)
            )
        })
}

/// Stops `stack`; every process must stop on SIGTERM.
pub(crate) async fn stop_cleanly(stack: RunningStack) {
    let unclean = stack.stop().await;
    assert!(
        unclean.is_empty(),
        "these did not stop on SIGTERM: {unclean:?}"
    );
}

/// Longest wait for what the stack does on its own (a log line written, a notification).
pub(crate) const PATIENCE: Duration = Duration::from_secs(15);

/// A stack of real processes started as `minipay up` starts them (order expiry swept every
/// second), and what to clean up after it: the end-to-end tests' harness.
pub(crate) struct E2e {
    pub(crate) stack: Option<RunningStack>,
    /// The purchase the CLI runs (`minipay up`'s self-check, `minipay demo`).
    pub(crate) shop: Shop,
    /// order-svc's HTTP API, for calls outside that purchase.
    pub(crate) api: OrderApi,
    /// Removes the test's queues and exchanges when it ends, also when it fails (even while
    /// the stack is still starting).
    _cleanup: AmqpCleanup,
}

impl E2e {
    /// A stack of the test file `tag`, its configuration changed by `tweak`.
    pub(crate) async fn start(tag: &str, tweak: impl FnOnce(&mut StackConfig)) -> E2e {
        let (mut config, cleanup) = isolated(tag, LogSink::keep()).await;
        config.sweep_interval = "1s".into();
        tweak(&mut config);
        let stack = start(config).await;
        let shop = Shop::new(stack.order_url(), stack.sim_url());
        let api = OrderApi::new(stack.order_url());
        E2e {
            stack: Some(stack),
            shop,
            api,
            _cleanup: cleanup,
        }
    }

    /// How the stack was started.
    pub(crate) fn config(&self) -> &StackConfig {
        &self
            .stack
            .as_ref()
            .expect("the stack runs until stop")
            .config
    }

    /// The simulator's view of the order once every copy of every notification attempt is
    /// recorded and the last attempt was acknowledged (copies are recorded as their answers
    /// arrive, so the order is PAID before its record is complete).
    pub(crate) async fn settled_at_wechat(&self, out_trade_no: &str, copies: u64) -> Value {
        wait_until(
            PATIENCE,
            &format!("all {copies} copies of {out_trade_no}'s notification are recorded"),
            || async {
                let view = self
                    .shop
                    .at_wechat(out_trade_no)
                    .await
                    .expect("the simulator answers its control API");
                test_support::sim::settled_attempts(&view, copies).map(|_| view)
            },
        )
        .await
    }

    /// Stops the stack; every process must stop on SIGTERM.
    pub(crate) async fn stop(mut self) {
        if let Some(stack) = self.stack.take() {
            stop_cleanly(stack).await;
        }
    }
}

pub(crate) struct Edge {
    stack: Option<RunningStack>,
    /// Every process's output, the gateway's access log included.
    pub(crate) sink: LogSink,
    /// Trusts the gateway's test CA.
    pub(crate) http: reqwest::Client,
    /// The gateway's public URL.
    pub(crate) url: String,
    tls_dir: std::path::PathBuf,
    _cleanup: AmqpCleanup,
}

impl Edge {
    /// A fresh stack (own database, prefixes, ports) behind a fresh gateway.
    pub(crate) async fn start() -> Edge {
        let sink = LogSink::keep();
        let (mut config, cleanup) = isolated("gw", sink.clone()).await;
        let tls_dir = std::env::temp_dir().join(format!("minipay-{}", config.amqp_prefix));
        // Its ports are picked again by `start`.
        let gateway = GatewaySetup::prepare(GatewayPorts::standard(), &tls_dir)
            .await
            .unwrap_or_else(|e| panic!("the gateway cannot be prepared: {e}"));
        config.gateway = Some(gateway);
        let stack = start(config).await;
        let gateway = stack.config.gateway.clone().unwrap();
        Edge {
            url: gateway.url(),
            http: gateway.client().unwrap(),
            stack: Some(stack),
            sink,
            tls_dir,
            _cleanup: cleanup,
        }
    }

    /// The file of the CA that signed the gateway's certificate.
    pub(crate) fn ca_file(&self) -> std::path::PathBuf {
        self.tls_dir.join("ca.pem")
    }

    /// The running stack.
    pub(crate) fn stack(&self) -> &RunningStack {
        self.stack.as_ref().unwrap()
    }

    /// The Mini Program's API through the gateway.
    pub(crate) fn shop(&self) -> Shop {
        // The Mini Program's calls go through the gateway; the simulator's control API
        // (standing in for the user's WeChat app) is not behind it.
        Shop::with_client(self.http.clone(), self.url.clone(), self.stack().sim_url())
    }

    /// The gateway's JSON access log line for the request with this id.
    pub(crate) async fn access_log(&self, request_id: &str) -> Value {
        self.access_log_where(&format!("request {request_id}"), |v| {
            v["request_id"] == request_id
        })
        .await
    }

    /// The first JSON access log line of the gateway that `matches` (waited for).
    pub(crate) async fn access_log_where(
        &self,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_until(PATIENCE, &format!("the gateway logged {what}"), || async {
            self.sink
                .tail("gateway", usize::MAX)
                .iter()
                .filter_map(|l| l.strip_prefix("[gateway] "))
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| matches(v))
        })
        .await
    }

    /// Stops every process (each must stop on SIGTERM) and removes the certificate.
    pub(crate) async fn stop(mut self) {
        if let Some(stack) = self.stack.take() {
            stop_cleanly(stack).await;
        }
        let _ = std::fs::remove_dir_all(&self.tls_dir);
    }
}

/// The request id the gateway returned.
pub(crate) fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("the gateway returns the request id")
        .to_owned()
}
