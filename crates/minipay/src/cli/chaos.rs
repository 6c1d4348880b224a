//! `minipay chaos`: the fault matrix (see [`crate::chaos`]). Prints one row per fault and
//! exits 1 when any row lost, doubled or invented a payment, left a dead letter, or did not
//! converge.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use service_runtime::telemetry::error_chain;

use super::{BuildArgs, Interrupt, interrupted, say};
use crate::chaos::{self, Options, Scenario};
use crate::process::LogSink;
use crate::stack;

/// `minipay chaos`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only these scenarios (repeatable; default: all, in the table's order)
    #[arg(long = "scenario", value_name = "NAME", value_enum)]
    pub scenarios: Vec<Scenario>,
    /// Purchases per scenario
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub purchases: u32,
    /// How long a lasting fault lasts (unreachable, stopped Redis, paused, slow, WeChat's)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub fault: Duration,
    /// WeChat's clock (1 = its real retry schedule: 15 s, 15 s, 30 s, 3 min, ...)
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Longest wait for everything to agree once a fault is over
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// The WeChat Pay API version the stack speaks (v3: notifications signed, encrypted,
    /// replay-checked in Redis)
    #[arg(long, value_enum, default_value_t = stack::ApiVersion::V2)]
    pub api: stack::ApiVersion,
    /// Print the rows as JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Print every process's output (default: kept, shown for a failure)
    #[arg(long)]
    pub logs: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub build: BuildArgs,
}

pub(super) async fn run(args: Args, interrupt: Interrupt) -> ExitCode {
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        eprintln!("minipay chaos: --time-scale must be a positive number");
        return ExitCode::from(2);
    }
    let bin_dir = stack::bin_dir();
    if !args.build.no_build {
        println!("Building the services (cargo build; quick when nothing changed):");
        if let Err(e) = stack::build_binaries(bin_dir.ends_with("release")).await {
            eprintln!("minipay chaos: {}", error_chain(&e));
            return ExitCode::from(2);
        }
    }
    let scenarios = if args.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios.clone()
    };
    let options = Options {
        purchases: args.purchases as usize,
        fault: args.fault,
        time_scale: args.time_scale,
        deadline: args.deadline,
        api: args.api,
        bin_dir,
        state: PathBuf::from(".minipay").join("chaos"),
        sink: if args.logs {
            LogSink::Print
        } else {
            LogSink::keep()
        },
    };
    println!(
        "minipay chaos: {} scenario(s), {} purchases each, lasting faults {}, WeChat's clock x{}",
        scenarios.len(),
        options.purchases,
        humantime::format_duration(options.fault),
        options.time_scale
    );
    let result = tokio::select! {
        r = chaos::run(&scenarios, &options, &say) => r,
        () = interrupted(interrupt) => {
            eprintln!("minipay chaos: interrupted; the private servers and the stack are stopped");
            return ExitCode::from(130);
        }
    };
    match result {
        Ok(rows) => {
            if args.json {
                match serde_json::to_string_pretty(&rows) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("minipay chaos: cannot write JSON: {e}"),
                }
            } else {
                println!("\n{}", chaos::render(&rows));
                for row in &rows {
                    for problem in &row.problems {
                        println!("  {}: {problem}", row.scenario.name());
                    }
                }
                for row in rows.iter().filter(|r| !r.gave_up.is_empty()) {
                    println!(
                        "  {}: buyers gave up on {} purchase(s): {}",
                        row.scenario.name(),
                        row.gave_up.len(),
                        summarize(&row.gave_up)
                    );
                }
            }
            if rows.iter().all(chaos::Row::clean) {
                ExitCode::SUCCESS
            } else {
                if let LogSink::Keep(_) = options.sink {
                    for line in options.sink.tail("", 0) {
                        eprintln!("{line}");
                    }
                }
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("minipay chaos: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

/// `step code ×n, ...`, most frequent first.
fn summarize(reasons: &[String]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in reasons {
        match counts.iter_mut().find(|(k, _)| k == r) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.clone(), 1)),
        }
    }
    counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    counts
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
