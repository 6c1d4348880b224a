//! The fault matrix (`minipay chaos`): for each fault, a fresh stack with two replicas of
//! every service runs a few hundred purchases end to end through the public APIs while the
//! fault happens, then, once the fault is over, is watched until every order agrees with
//! WeChat everywhere — the database, the status API (cache included), the events — or a
//! deadline passes. One row per fault: payments, PAID, doubled, lost, in review,
//! dead-lettered, and the time it took to converge.
//!
//! PostgreSQL, Redis and RabbitMQ are the run's own ([`servers`]), each behind a TCP
//! [`proxy`], so that killing or cutting them touches nothing else on the machine.

pub mod check;
pub mod drive;
pub mod proxy;
pub mod servers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use self::check::{Assessment, Audit};
use self::drive::{Driver, Plan};
use self::proxy::Mode;
use self::servers::{Kind, ServerError, Servers};
use crate::process::LogSink;
use crate::purchase::{PurchaseError, Shop};
use crate::stack::{self, DatabaseError, Ports, RunningStack, StackConfig, StackError};

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// No fault: the reference row.
    Baseline,
    /// RabbitMQ killed with SIGKILL, then started again.
    RabbitmqKilled,
    /// RabbitMQ's connections black-holed (held, not refused) for the fault's duration.
    RabbitmqUnreachable,
    /// PostgreSQL stopped (immediate: no checkpoint), started again 5 s later.
    PostgresStopped,
    /// PostgreSQL's connections black-holed for the fault's duration.
    PostgresUnreachable,
    /// Redis stopped for the fault's duration; it comes back empty.
    RedisStopped,
    /// Redis paused for writes (`CLIENT PAUSE … WRITE`) for the fault's duration.
    RedisPausedForWrites,
    /// Redis answering 400 ms late (above order-svc's 250 ms `REDIS_TIMEOUT`).
    RedisSlow,
    /// order-svc's first replica killed with SIGKILL while it consumes, restarted 2 s later.
    OrderSvcKilled,
    /// notify-svc's first replica killed while it publishes, restarted 2 s later.
    NotifySvcKilled,
    /// pay-gateway-svc's first replica killed while it prepays, restarted 2 s later.
    PayGatewaySvcKilled,
    /// WeChat answering every merchant API call 3 s late.
    WechatSlow,
    /// WeChat answering 30 % of merchant API calls with SYSTEMERROR.
    WechatErrors,
    /// WeChat sending no notification at all.
    NotificationsDropped,
    /// WeChat sending every notification five times at once.
    NotificationsDuplicated,
    /// WeChat holding notifications and sending them newest first, ten at a time.
    NotificationsReordered,
    /// WeChat sending every notification after the order expired here.
    NotificationsLate,
}

impl Scenario {
    /// Every scenario, in the table's order.
    pub const ALL: [Scenario; 17] = [
        Scenario::Baseline,
        Scenario::RabbitmqKilled,
        Scenario::RabbitmqUnreachable,
        Scenario::PostgresStopped,
        Scenario::PostgresUnreachable,
        Scenario::RedisStopped,
        Scenario::RedisPausedForWrites,
        Scenario::RedisSlow,
        Scenario::OrderSvcKilled,
        Scenario::NotifySvcKilled,
        Scenario::PayGatewaySvcKilled,
        Scenario::WechatSlow,
        Scenario::WechatErrors,
        Scenario::NotificationsDropped,
        Scenario::NotificationsDuplicated,
        Scenario::NotificationsReordered,
        Scenario::NotificationsLate,
    ];

    /// Its name on the command line and in the table.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// How to run the matrix.
#[derive(Debug, Clone)]
pub struct Options {
    /// Purchases per scenario (about one in seven is left unpaid).
    pub purchases: usize,
    /// How long a lasting fault (unreachable, paused, slow, WeChat's faults) lasts.
    pub fault: Duration,
    /// WeChat's clock: 1.0 is WeChat's real retry schedule (15 s, 15 s, 30 s, ...).
    pub time_scale: f64,
    /// Longest wait for convergence after the fault is over.
    pub deadline: Duration,
    /// The WeChat Pay API version the stack speaks.
    pub api: stack::ApiVersion,
    /// Where the four binaries are.
    pub bin_dir: PathBuf,
    /// Where the private servers keep their data (removed at the end).
    pub state: PathBuf,
    /// Where the processes' output goes.
    pub sink: LogSink,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The fault.
    pub scenario: Scenario,
    /// Orders placed.
    pub orders: usize,
    /// Orders WeChat says are paid.
    pub payments: usize,
    /// Of those, PAID here (database and status API) and announced.
    pub paid: usize,
    /// Orders paid, announced or given a transaction more than once, or with another
    /// transaction than WeChat's.
    pub doubled: usize,
    /// Orders WeChat says are paid that are not PAID here (or not announced) at the end.
    pub lost: usize,
    /// Orders PAID or announced here that WeChat does not say are paid, or whose status
    /// API disagrees with the database, at the end.
    pub wrong: usize,
    /// Orders in REVIEW.
    pub in_review: usize,
    /// Payment events in the dead-letter queue or table.
    pub dead_lettered: usize,
    /// Paid orders whose notifications WeChat still retries (never acknowledged).
    pub unacked: usize,
    /// From the end of the fault (and of the purchases) until everything agreed; `None`
    /// when it did not within the deadline.
    pub converged_ms: Option<u64>,
    /// Calls buyers made again (no answer, or "try again"): how hard the fault hit them.
    pub retries: usize,
    /// Purchases the buyer gave up on (an error answer other than "try again", or retries
    /// past their deadline), by step.
    pub gave_up: Vec<String>,
    /// The first orders that kept it from converging, each as everyone saw it.
    pub problems: Vec<String>,
}

impl Row {
    /// Nothing lost, nothing doubled, nothing wrong, everything agreed in time.
    pub fn clean(&self) -> bool {
        self.doubled == 0
            && self.lost == 0
            && self.wrong == 0
            && self.dead_lettered == 0
            && self.converged_ms.is_some()
    }
}

/// Why the matrix could not run (not a finding: a finding is a row).
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// A private server.
    #[error("a private server failed")]
    Server(#[from] ServerError),
    /// The stack.
    #[error("the stack failed")]
    Stack(#[from] StackError),
    /// The scenario's database.
    #[error("the scenario's database cannot be made")]
    Database(#[from] DatabaseError),
    /// A check could not read what it checks.
    #[error("a check failed to read the state")]
    Check(#[from] check::CheckError),
    /// A call to the stack that is not a purchase (logging buyers in, setting faults).
    #[error("the stack refused a setup call")]
    Setup(#[from] PurchaseError),
}

/// Buyers per scenario (order-svc limits logins per client address).
const BUYERS: usize = 8;
/// Before the fault and after it, purchases go on this long.
const MARGIN: Duration = Duration::from_secs(2);
/// A killed service stays down this long.
const SERVICE_DOWN: Duration = Duration::from_secs(2);
/// A stopped PostgreSQL stays down this long.
const POSTGRES_DOWN: Duration = Duration::from_secs(5);
/// The order lifetime; the late-notification scenario uses a shorter one.
const ORDER_TTL: &str = "3m";
/// The shortest order lifetime that still leaves WeChat its minute (and a few seconds to
/// place and prepay).
const SHORT_ORDER_TTL: Duration = Duration::from_secs(65);

/// Runs `scenarios` in order on the run's own servers; `progress` hears each step.
pub async fn run(
    scenarios: &[Scenario],
    options: &Options,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<Row>, ChaosError> {
    progress("starting private PostgreSQL, Redis and RabbitMQ ...");
    let mut servers = Servers::start(&options.state, &options.sink).await?;
    let mut rows = Vec::new();
    let mut failure = None;
    for (i, &scenario) in scenarios.iter().enumerate() {
        progress(&format!("{}: starting", scenario.name()));
        match run_one(&mut servers, scenario, i, options).await {
            Ok(row) => {
                progress(&format!(
                    "{}: {}",
                    scenario.name(),
                    if row.clean() { "clean" } else { "NOT CLEAN" }
                ));
                rows.push(row);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    servers.stop().await;
    match failure {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

async fn run_one(
    servers: &mut Servers,
    scenario: Scenario,
    index: usize,
    options: &Options,
) -> Result<Row, ChaosError> {
    let name = scenario.name();
    let database = format!("chaos_{index}_{}", name.replace('-', "_"));
    stack::ensure_database(&servers.admin_database_url(), &database).await?;
    let mut config = StackConfig::local(
        options.bin_dir.clone(),
        servers.database_url(&database, true),
        servers.redis_url(true),
        servers.amqp_url(true),
        options.sink.clone(),
    );
    config.amqp_prefix = format!("chaos{index}.");
    config.redis_prefix = format!("chaos{index}:");
    config.sim_time_scale = options.time_scale;
    config.api = options.api;
    config.sweep_interval = "1s".into();
    config.more_replicas = vec![Ports::standard_replica(1)];
    let late = scenario == Scenario::NotificationsLate;
    config.order_ttl = if late {
        humantime::format_duration(SHORT_ORDER_TTL).to_string()
    } else {
        ORDER_TTL.into()
    };
    let audit = Audit::prepare(
        &servers.amqp_url(false),
        &servers.database_url(&database, false),
        &config.amqp_prefix,
    )
    .await?;
    let mut stack = RunningStack::start_on_free_ports(config).await?;
    let shops: Vec<Shop> = stack
        .order_urls()
        .into_iter()
        .map(|u| Shop::new(u, stack.sim_url()))
        .collect();
    let result = drive_and_check(servers, &mut stack, &shops, scenario, &audit, options).await;
    stack.stop().await;
    audit.close().await;
    let mut row = result?;
    row.scenario = scenario;
    Ok(row)
}

async fn drive_and_check(
    servers: &mut Servers,
    stack: &mut RunningStack,
    shops: &[Shop],
    scenario: Scenario,
    audit: &Audit,
    options: &Options,
) -> Result<Row, ChaosError> {
    let driver = Driver::login(shops, BUYERS).await?;
    let lasting = options.fault;
    let plan = Plan {
        purchases: options.purchases,
        spread: MARGIN + lasting + MARGIN,
    };
    let (purchases, inflicted) = tokio::join!(driver.run(plan), async {
        tokio::time::sleep(MARGIN).await;
        inflict(servers, stack, &shops[0], scenario, lasting).await
    });
    inflicted?;
    let healed = Instant::now();

    // Rounds of checks until everything agrees; a round that cannot read everything (a
    // server still starting) is tried again.
    let (last, converged_ms) = loop {
        let round = audit.assess(&purchases, shops).await;
        if round.as_ref().is_ok_and(Assessment::converged) {
            let ms = u64::try_from(healed.elapsed().as_millis()).unwrap_or(u64::MAX);
            break (round, Some(ms));
        }
        if healed.elapsed() > options.deadline {
            break (round, None);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    Ok(last?.row(scenario, &purchases, converged_ms))
}

/// Makes the fault happen, and ends it; returns once it is over.
async fn inflict(
    servers: &mut Servers,
    stack: &mut RunningStack,
    shop: &Shop,
    scenario: Scenario,
    lasting: Duration,
) -> Result<(), ChaosError> {
    let wechat = |faults: serde_json::Value| shop.faults(faults);
    match scenario {
        Scenario::Baseline => tokio::time::sleep(lasting).await,
        Scenario::RabbitmqKilled => {
            servers.kill_rabbitmq().await?;
            servers.start_rabbitmq().await?;
        }
        Scenario::RabbitmqUnreachable => {
            cut(servers, Kind::RabbitMq, Mode::Hold, lasting).await;
        }
        Scenario::PostgresStopped => {
            servers.stop_postgres_immediate().await?;
            tokio::time::sleep(POSTGRES_DOWN).await;
            servers.start_postgres().await?;
        }
        Scenario::PostgresUnreachable => {
            cut(servers, Kind::Postgres, Mode::Hold, lasting).await;
        }
        Scenario::RedisStopped => {
            servers.stop_redis().await?;
            tokio::time::sleep(lasting).await;
            servers.start_redis().await?;
        }
        Scenario::RedisPausedForWrites => {
            servers.pause_redis_writes(lasting).await?;
            tokio::time::sleep(lasting).await;
        }
        Scenario::RedisSlow => {
            let slow = Mode::Delay(Duration::from_millis(400));
            cut(servers, Kind::Redis, slow, lasting).await;
        }
        Scenario::OrderSvcKilled => restart_after_kill(stack, "order-svc").await?,
        Scenario::NotifySvcKilled => restart_after_kill(stack, "notify-svc").await?,
        Scenario::PayGatewaySvcKilled => restart_after_kill(stack, "pay-gateway-svc").await?,
        Scenario::WechatSlow => {
            for_a_while(wechat, json!({ "latency_ms": 3000 }), lasting).await?;
        }
        Scenario::WechatErrors => {
            for_a_while(wechat, json!({ "system_error_rate": 0.3 }), lasting).await?;
        }
        Scenario::NotificationsDropped => {
            for_a_while(wechat, json!({ "drop_notifications": true }), lasting).await?;
        }
        Scenario::NotificationsDuplicated => {
            for_a_while(wechat, json!({ "duplicate_notifications": 5 }), lasting).await?;
        }
        Scenario::NotificationsReordered => {
            for_a_while(wechat, json!({ "reorder_notifications": 10 }), lasting).await?;
        }
        Scenario::NotificationsLate => {
            let after_expiry = SHORT_ORDER_TTL + Duration::from_secs(5);
            let ms = u64::try_from(after_expiry.as_millis()).unwrap_or(u64::MAX);
            for_a_while(wechat, json!({ "delay_notifications_ms": ms }), lasting).await?;
        }
    }
    Ok(())
}

/// The proxy in `mode` for `lasting`, then passing again (what waited is delivered).
async fn cut(servers: &Servers, kind: Kind, mode: Mode, lasting: Duration) {
    servers.network(kind, mode);
    tokio::time::sleep(lasting).await;
    servers.network(kind, Mode::Pass);
}

/// SIGKILL to `name`, and the same service started again after [`SERVICE_DOWN`].
async fn restart_after_kill(stack: &mut RunningStack, name: &str) -> Result<(), ChaosError> {
    stack.kill(name).await;
    tokio::time::sleep(SERVICE_DOWN).await;
    stack.restart(name).await?;
    Ok(())
}

/// WeChat's `faults` for `lasting`, then none.
async fn for_a_while<F, Fut>(
    set: F,
    faults: serde_json::Value,
    lasting: Duration,
) -> Result<(), ChaosError>
where
    F: Fn(serde_json::Value) -> Fut,
    Fut: std::future::Future<Output = Result<(), PurchaseError>>,
{
    set(faults).await?;
    tokio::time::sleep(lasting).await;
    set(json!({})).await?;
    Ok(())
}

/// The table, as text.
pub fn render(rows: &[Row]) -> String {
    let header = [
        "scenario",
        "orders",
        "payments",
        "PAID",
        "doubled",
        "lost",
        "wrong",
        "in review",
        "dead-lettered",
        "unacked",
        "converged in",
        "buyers' retries",
    ];
    let mut lines = vec![
        format!("| {} |", header.join(" | ")),
        format!("|{}", "---|".repeat(header.len())),
    ];
    for r in rows {
        let converged = match r.converged_ms {
            Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
            None => "NOT CONVERGED".to_owned(),
        };
        lines.push(format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario.name(),
            r.orders,
            r.payments,
            r.paid,
            r.doubled,
            r.lost,
            r.wrong,
            r.in_review,
            r.dead_lettered,
            r.unacked,
            converged,
            r.retries
        ));
    }
    lines.join("\n")
}
