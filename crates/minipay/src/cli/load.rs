//! `minipay load`: drive a running stack with concurrent buyers and report throughput,
//! latency per step, errors by code, and the services' CPU and memory (see
//! [`crate::load`]).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use service_runtime::telemetry::error_chain;

use super::{Interrupt, interrupted};
use crate::load::{self, Live, LoadOptions, LoadReport, Until};

/// `minipay load`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The API's base URL: order-svc, or the API gateway (https, with --ca)
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080", value_parser = base_url)]
    pub api: String,
    /// The CA certificate (PEM) to trust for an https --api (`minipay up --gateway` prints
    /// its path, .minipay/gateway/ca.pem)
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The simulator's base URL (its control API pays for the buyers)
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8090", value_parser = base_url)]
    pub sim: String,
    /// Concurrent buyers, each logged in once (logins count against the per-address limit:
    /// 60 a minute at order-svc, 10 at the gateway)
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub buyers: u32,
    /// How long to keep buying (30s, 2m, 1h 30m)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration, conflicts_with = "count")]
    pub duration: Duration,
    /// Stop after this many purchases instead of after a duration
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Print the report as one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// When the run ends.
    pub fn until(&self) -> Until {
        match self.count {
            Some(n) => Until::Count(n),
            None => Until::Elapsed(self.duration),
        }
    }
}

/// An http(s) URL without a trailing slash (paths are appended to it).
fn base_url(value: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(value).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("an http:// or https:// URL with a host is needed".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a base URL has no query or fragment".into());
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// A humantime duration longer than zero.
fn duration(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("the duration must be longer than zero".into());
    }
    Ok(d)
}

pub(super) async fn run(args: Args, interrupt: Interrupt) -> ExitCode {
    if args.ca.is_some() && !args.api.starts_with("https://") {
        eprintln!(
            "minipay load: --ca is for an https --api (the API gateway), not {}",
            args.api
        );
        return ExitCode::from(2);
    }
    let http = match load::client(args.ca.as_deref()) {
        Ok(http) => http,
        Err(e) => {
            eprintln!("minipay load: {}", error_chain(&e));
            return ExitCode::from(2);
        }
    };
    let until = args.until();
    let options = LoadOptions::new(args.api.clone(), args.sim.clone(), http, args.buyers, until);
    let live = options.live.clone();
    // Ctrl-C ends the run early with the report of what finished.
    let stopper = {
        let live = live.clone();
        tokio::spawn(async move {
            interrupted(interrupt).await;
            live.stop();
        })
    };
    if !args.json {
        let length = match until {
            Until::Count(1) => "1 purchase".to_owned(),
            Until::Count(n) => format!("{n} purchases"),
            Until::Elapsed(d) => humantime::format_duration(d).to_string(),
        };
        println!(
            "minipay load: {} {}, {length}, against {} (simulator {})",
            args.buyers,
            if args.buyers == 1 { "buyer" } else { "buyers" },
            args.api,
            args.sim
        );
    }
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(show_progress(live, until)));
    let result = load::run(options).await;
    stopper.abort();
    if let Some(progress) = progress {
        progress.abort();
        // Clears the progress line: the report replaces it.
        eprint!("\r\x1b[K");
    }
    match result {
        Ok(report) => {
            print_report(&report, args.json);
            if report.all_succeeded() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("minipay load: {}", error_chain(&e));
            if args.api.starts_with("https://") && args.ca.is_none() {
                eprintln!(
                    "  (if its certificate is a test one, as `minipay up --gateway` makes, pass \
                     its CA with --ca .minipay/gateway/ca.pem)"
                );
            }
            ExitCode::from(2)
        }
    }
}

/// One line on stderr, rewritten in place four times a second.
async fn show_progress(live: Arc<Live>, until: Until) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}\x1b[K", live.progress().line(until));
        let _ = err.flush();
    }
}

fn print_report(report: &LoadReport, json: bool) {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => println!("{text}"),
            // Only non-string map keys or a failing Serialize impl could do this; the
            // report has neither, but a table beats a panic.
            Err(e) => {
                eprintln!("minipay load: cannot write the report as JSON: {e}");
                println!("{}", report.render());
            }
        }
    } else {
        println!("\n{}", report.render());
    }
}
