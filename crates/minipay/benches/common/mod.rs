//! What the `minipay` benchmarks share: settings from the environment, and a stack of the
//! release binaries on free ports with a database, Redis keys and AMQP names of its own.

#![allow(dead_code)] // each benchmark uses a part

use minipay::process::LogSink;
use minipay::stack::{self, RunningStack, StackConfig};

/// `name` from the environment as a number, or `default`.
pub(crate) fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A running stack and the database made for it (dropped by [`Bench::finish`]).
pub(crate) struct Bench {
    pub(crate) stack: RunningStack,
    pub(crate) database: String,
    admin: String,
    name: String,
}

impl Bench {
    /// Starts the stack from the release binaries (`cargo build --release --workspace
    /// --bins`), services logging at `rust_log`, against DATABASE_URL's server (default the
    /// local one), REDIS_URL and AMQP_URL.
    pub(crate) async fn start(tag: &str, rust_log: &str) -> Bench {
        let admin = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let id = std::process::id();
        let name = format!("minipay_bench_{tag}_{id}");
        let database = stack::ensure_database(&admin, &name)
            .await
            .expect("PostgreSQL");
        let mut config = StackConfig::local(
            stack::bin_dir(),
            database.clone(),
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            std::env::var("AMQP_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
            LogSink::keep(),
        );
        config.amqp_prefix = format!("bench{tag}{id}.");
        config.redis_prefix = format!("minipay-bench-{tag}-{id}:");
        config.rust_log = rust_log.into();
        // BENCH_ORDER_ENV="DATABASE_MAX_CONNECTIONS=32,AMQP_PREFETCH=64" tries other settings.
        config.order_env = std::env::var("BENCH_ORDER_ENV")
            .unwrap_or_default()
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let stack = RunningStack::start_on_free_ports(config)
            .await
            .unwrap_or_else(|e| panic!("{}", service_runtime::telemetry::error_chain(&e)));
        Bench {
            stack,
            database,
            admin,
            name,
        }
    }

    /// Stops the stack (every service must stop on SIGTERM) and drops its database; the
    /// server's admin URL, for what runs after.
    pub(crate) async fn finish(self) -> String {
        let unclean = self.stack.stop().await;
        assert!(unclean.is_empty(), "{unclean:?}");
        drop_database(&self.admin, &self.name).await;
        self.admin
    }
}

/// Drops database `name` on the server of `admin`.
pub(crate) async fn drop_database(admin: &str, name: &str) {
    let admin = sqlx::PgPool::connect(admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
