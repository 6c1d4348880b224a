//! `minipay status`: what is running, what is ready, and how many orders are in each state.

use std::time::Duration;

use crate::stack::Ports;

/// One service's state.
#[derive(Debug)]
pub struct ServiceState {
    /// Its name.
    pub name: &'static str,
    /// Where it was looked for.
    pub url: String,
    /// `ready`, `running, not ready: ...`, or `not running`.
    pub state: String,
}

/// Looks at every service on `ports`.
pub async fn services(ports: &Ports) -> Vec<ServiceState> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let targets = [
        (
            "wechatpay-sim",
            format!("http://127.0.0.1:{}/sim/v1/health", ports.sim),
        ),
        (
            "notify-svc",
            format!("http://127.0.0.1:{}/readyz", ports.notify_ops),
        ),
        (
            "pay-gateway-svc",
            format!("http://127.0.0.1:{}/readyz", ports.gateway_ops),
        ),
        (
            "order-svc",
            format!("http://127.0.0.1:{}/readyz", ports.order_ops),
        ),
    ];
    let mut out = Vec::new();
    for (name, url) in targets {
        let state = match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => "ready".to_owned(),
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                format!("running, not ready ({status}): {body}")
            }
            Err(_) => "not running".to_owned(),
        };
        out.push(ServiceState { name, url, state });
    }
    out
}

/// Why the orders could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    /// The database does not answer.
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    /// The count failed (e.g. no `orders` table: order-svc never ran against it).
    #[error("cannot count the orders")]
    Count(#[source] sqlx::Error),
}

/// Orders per status in the database at `database_url`.
pub async fn orders_by_status(database_url: &str) -> Result<Vec<(String, i64)>, OrdersError> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(database_url)
        .await
        .map_err(OrdersError::Connect)?;
    sqlx::query_as("SELECT status, count(*) FROM orders GROUP BY status ORDER BY status")
        .fetch_all(&mut conn)
        .await
        .map_err(OrdersError::Count)
}
