//! `minipay status`: which services answer and are ready, and orders per state.

use std::process::ExitCode;

use service_runtime::telemetry::error_chain;

use crate::stack::{self, Ports};

/// `minipay status`'s flags (none yet).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

pub(super) async fn run(_args: Args) -> ExitCode {
    let ports = Ports::standard();
    println!("Services:");
    let states = crate::status::services(&ports).await;
    let all_ready = states.iter().all(|s| s.state == "ready");
    for s in &states {
        println!("  {:<16} {:<60} {}", s.name, s.url, s.state);
    }
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let database = format!("{base}/minipay");
    println!("Orders ({}):", stack::redact(&database));
    match crate::status::orders_by_status(&database).await {
        Ok(rows) if rows.is_empty() => println!("  none yet"),
        Ok(rows) => {
            for (status, n) in rows {
                println!("  {status:<20} {n}");
            }
        }
        Err(e) => println!("  unavailable: {}", error_chain(&e)),
    }
    if all_ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
