//! Where PostgreSQL, Redis and RabbitMQ are (the environment, else the usual local
//! addresses), and a check for each that fails naming the service and how to start it.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use sqlx::Connection;

const START_THEM: &str = "Start it with `bash scripts/ensure-services.sh`";

/// The PostgreSQL database tests create theirs from (`DATABASE_URL`).
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Redis (`REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// RabbitMQ (`AMQP_URL`).
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The setting every service a test starts gets: the simulator's example merchant, asked for
/// explicitly (without it a service refuses to start).
pub const SIMULATOR_MODE: (&str, &str) = ("WECHAT_MODE", "simulator");

/// Eight random hex digits, to keep one test's names (prefixes, users) apart from another's.
pub fn unique_id() -> String {
    format!("{:08x}", rand::rng().random::<u32>())
}

/// The prefix of test databases; the part after it starts with their birth time.
const TEST_DATABASE: &str = "minipay_test_";

/// A new empty database; its URL. Test databases of earlier runs (older than an hour) are
/// dropped, best effort.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is not reachable at {admin} ({e}). {START_THEM}, or set DATABASE_URL to a server where this user may create databases.")
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stale: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'minipay_test_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    for (name,) in stale {
        let born: u64 = name
            .strip_prefix(TEST_DATABASE)
            .and_then(|rest| rest.split('_').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(now);
        if now.saturating_sub(born) > 3600 {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
    let name = format!("{TEST_DATABASE}{now}_{}", unique_id());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("create the test database");
    let _ = conn.close().await;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

/// A connection to Redis, or a failure saying how to start it (a service would silently fall
/// back to PostgreSQL, which would hide the cache from the tests that look at it).
pub async fn require_redis() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    let client = redis::Client::open(url.as_str())
        .unwrap_or_else(|e| panic!("REDIS_URL {url} is not a Redis URL: {e}"));
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| {
            panic!("Redis is not reachable at {url} ({e}). {START_THEM}, or set REDIS_URL.")
        })
}

/// A connection to RabbitMQ, or a failure saying how to start it.
pub async fn require_rabbitmq() -> lapin::Connection {
    let url = amqp_url();
    messaging::connect(&url, "tests").await.unwrap_or_else(|e| {
        panic!("RabbitMQ is not reachable at {url} ({e}). {START_THEM}, or set AMQP_URL.")
    })
}

/// A local address nobody listens on (a free port, released at once): a service that is down.
pub fn dead_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
