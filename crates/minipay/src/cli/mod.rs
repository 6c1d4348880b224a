//! The command line: `minipay up | demo | status | load | chaos | reconcile`, one module per subcommand. `main` parses
//! [`Cli`] and hands it to [`run`].

pub mod chaos;
pub mod demo;
pub mod load;
pub mod reconcile;
pub mod status;
pub mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::gateway::{GatewayError, GatewayPorts, GatewaySetup};
use crate::infra::{Infra, InfraError};
use crate::process::LogSink;
use crate::stack::{self, DatabaseError, Ports, RunningStack, StackConfig, StackError};

const ENVIRONMENT: &str = "\
Environment: DATABASE_URL (admin database; default postgres://postgres@127.0.0.1:5432/postgres),
REDIS_URL, AMQP_URL: used where they answer, otherwise private instances are started from the
locally installed servers, with data under .minipay/. MINIPAY_BIN_DIR: where the service
binaries are (default: next to this one).";

/// minipay: run Minipay locally.
#[derive(Debug, Parser)]
#[command(name = "minipay", version, after_help = ENVIRONMENT)]
pub struct Cli {
    /// What to do (without one, this help).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start everything, self-check with a real purchase, stream logs; Ctrl-C stops it all.
    #[command(after_help = ENVIRONMENT)]
    Up(up::Args),
    /// Walk through one purchase against a running stack (or one it starts).
    #[command(after_help = ENVIRONMENT)]
    Demo(demo::Args),
    /// What is running and ready, and orders per state.
    Status(status::Args),
    /// Drive a running stack with concurrent buyers (login, order, prepay, pay, poll until
    /// PAID); report throughput, latency per step, errors by code, each service's CPU and RSS.
    Load(load::Args),
    /// The fault matrix: purchases through two replicas of every service while PostgreSQL,
    /// Redis, RabbitMQ, a service or WeChat fails; one row per fault (payments, PAID,
    /// doubled, lost, in review, dead-lettered, time to converge). Uses private servers.
    Chaos(chaos::Args),
    /// Reconcile a day: WeChat's bill against the books, through the admin API; prints the
    /// differences (exit 1 when some wait for an operator).
    Reconcile(reconcile::Args),
}

/// Flags shared by the subcommands that may start the stack.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct BuildArgs {
    /// Use the binaries already built next to this one (no `cargo build`).
    #[arg(long)]
    pub no_build: bool,
}

/// Runs the parsed command line; the process's exit code.
pub async fn run(cli: Cli) -> ExitCode {
    // Listened for from the very start: the children run in their own process groups, so
    // `minipay` must always be the one that stops them.
    let interrupt = listen_for_interrupt();
    match cli.command {
        Some(Command::Up(args)) => up::run(args, interrupt).await,
        Some(Command::Demo(args)) => demo::run(args).await,
        Some(Command::Status(args)) => status::run(args).await,
        Some(Command::Load(args)) => load::run(args, interrupt).await,
        Some(Command::Chaos(args)) => chaos::run(args, interrupt).await,
        Some(Command::Reconcile(args)) => reconcile::run(args).await,
        None => {
            let _ = Cli::command().print_help();
            ExitCode::SUCCESS
        }
    }
}

fn say(line: &str) {
    println!("  • {line}");
}

/// Ctrl-C or SIGTERM, seen from the very start.
type Interrupt = tokio::sync::watch::Receiver<bool>;

fn listen_for_interrupt() -> Interrupt {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        service_runtime::shutdown::signal().await;
        let _ = tx.send(true);
    });
    rx
}

async fn interrupted(mut rx: Interrupt) {
    let _ = rx.wait_for(|&stop| stop).await;
}

/// Why `minipay up` or `minipay demo` could not start the stack.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// PostgreSQL, Redis or RabbitMQ is neither there nor startable.
    #[error(transparent)]
    Infra(#[from] InfraError),
    /// The `minipay` database could not be prepared.
    #[error("cannot prepare the minipay database")]
    Database(#[source] DatabaseError),
    /// `cargo build` of the services failed.
    #[error(transparent)]
    Build(StackError),
    /// A service did not start or become ready.
    #[error(transparent)]
    Stack(StackError),
    /// The API gateway could not be prepared (Envoy, its certificate).
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// Ctrl-C or SIGTERM arrived first.
    #[error("interrupted while starting; everything started so far was stopped")]
    Interrupted,
}

/// Infrastructure, the `minipay` database, fresh binaries, and the four processes (five
/// with the API gateway in front, `gateway`).
async fn start(
    build: BuildArgs,
    sink: LogSink,
    gateway: bool,
    replicas: u16,
    api: stack::ApiVersion,
) -> Result<(Infra, RunningStack), StartError> {
    let state = PathBuf::from(".minipay");
    let gateway = if gateway {
        println!("API gateway:");
        let setup = GatewaySetup::prepare(GatewayPorts::standard(), &state.join("gateway")).await?;
        say(&format!(
            "Envoy {}; test certificate for localhost, its CA in {}",
            setup.envoy.display(),
            setup.tls.ca_path().display()
        ));
        Some(setup)
    } else {
        None
    };
    println!("Infrastructure:");
    let infra = Infra::ensure(&state, &sink, &say).await?;
    let database_url = match stack::ensure_database(&infra.database_url, "minipay").await {
        Ok(url) => url,
        Err(e) => {
            infra.stop().await;
            return Err(StartError::Database(e));
        }
    };
    say(&format!("database: {}", stack::redact(&database_url)));
    let bin_dir = stack::bin_dir();
    if !build.no_build {
        println!("Building the services (cargo build; quick when nothing changed):");
        let release = bin_dir.ends_with("release");
        if let Err(e) = stack::build_binaries(release).await {
            infra.stop().await;
            return Err(StartError::Build(e));
        }
    }
    println!("Services:");
    let mut config = StackConfig::local(
        bin_dir,
        database_url,
        infra.redis_url.clone(),
        infra.amqp_url.clone(),
        sink,
    );
    config.gateway = gateway;
    config.api = api;
    config.more_replicas = (1..replicas).map(Ports::standard_replica).collect();
    // Refunds on: a merchant certificate (kept in .minipay/merchant/), and the operator's
    // token for the admin API written where the guide says.
    match stack::MerchantCert::ensure(&state.join("merchant")) {
        Ok(cert) => config.merchant_cert = Some(cert),
        Err(e) => say(&format!("no merchant certificate ({e}): refunds are off")),
    }
    if let Err(e) = stack::write_file(&state.join("admin-token"), &config.admin_token, 0o600) {
        say(&format!("cannot write .minipay/admin-token: {e}"));
    }
    match RunningStack::start(config, &say).await {
        Ok(stack) => Ok((infra, stack)),
        Err(e) => {
            infra.stop().await;
            Err(StartError::Stack(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::error::ErrorKind;

    use super::*;
    use crate::load::Until;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("minipay").chain(args.iter().copied()))
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_every_subcommand() {
        let help = parse(&["--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        let text = help.to_string();
        for name in ["up", "demo", "status", "load", "DATABASE_URL"] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }

    #[test]
    fn each_subcommand_has_its_own_help() {
        let help = parse(&["up", "--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("--no-build"), "{help}");
        let help = parse(&["help", "demo"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("--no-build"), "{help}");
        let help = parse(&["status", "--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        assert!(!help.to_string().contains("--no-build"), "{help}");
    }

    #[test]
    fn no_build_is_read_by_up_and_demo() {
        let cli = parse(&["up", "--no-build"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Up(a)) if a.build.no_build));
        let cli = parse(&["demo"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Demo(a)) if !a.build.no_build));
    }

    #[test]
    fn gateway_is_a_flag_of_up() {
        let cli = parse(&["up", "--gateway"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Up(a)) if a.gateway));
        let cli = parse(&["up"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Up(a)) if !a.gateway));
    }

    #[test]
    fn replicas_is_a_bounded_flag_of_up() {
        let cli = parse(&["up", "--replicas", "2"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Up(a)) if a.replicas == 2));
        let cli = parse(&["up"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Up(a)) if a.replicas == 1));
        for bad in ["0", "5", "two"] {
            let error = parse(&["up", "--replicas", bad]).unwrap_err();
            assert!(error.to_string().contains("--replicas"), "{error}");
        }
    }

    fn load(args: &[&str]) -> Result<load::Args, clap::Error> {
        let cli = parse(&[&["load"], args].concat())?;
        match cli.command {
            Some(Command::Load(a)) => Ok(a),
            other => panic!("not load: {other:?}"),
        }
    }

    #[test]
    fn load_runs_16_buyers_for_30_seconds_against_the_local_stack_by_default() {
        let a = load(&[]).unwrap();
        assert_eq!(a.api, "http://127.0.0.1:8080");
        assert_eq!(a.sim, "http://127.0.0.1:8090");
        assert_eq!(a.buyers, 16);
        assert_eq!(a.until(), Until::Elapsed(Duration::from_secs(30)));
        assert!(a.ca.is_none() && !a.json);
    }

    #[test]
    fn load_reads_every_flag() {
        let a = load(&[
            "--api",
            "https://127.0.0.1:8443/",
            "--ca",
            ".minipay/gateway/ca.pem",
            "--sim",
            "http://10.0.0.5:8090",
            "--buyers",
            "4",
            "--duration",
            "1m 30s",
            "--json",
        ])
        .unwrap();
        assert_eq!(a.api, "https://127.0.0.1:8443", "the trailing slash goes");
        assert_eq!(a.ca, Some(PathBuf::from(".minipay/gateway/ca.pem")));
        assert_eq!(a.sim, "http://10.0.0.5:8090");
        assert_eq!(a.buyers, 4);
        assert_eq!(a.until(), Until::Elapsed(Duration::from_secs(90)));
        assert!(a.json);
        let a = load(&["--count", "20"]).unwrap();
        assert_eq!(a.until(), Until::Count(20));
    }

    #[test]
    fn load_takes_a_duration_or_a_count_not_both() {
        let error = load(&["--duration", "10s", "--count", "5"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ArgumentConflict);
        let text = error.to_string();
        assert!(
            text.contains("--duration") && text.contains("--count"),
            "{text}"
        );
    }

    #[test]
    fn load_refuses_bad_values_naming_the_flag() {
        for (flag, bad) in [
            ("--buyers", "0"),
            ("--buyers", "1001"),
            ("--buyers", "many"),
            ("--count", "0"),
            ("--duration", "0s"),
            ("--duration", "30"),
            ("--duration", "soon"),
            ("--api", "127.0.0.1:8080"),
            ("--api", "ftp://127.0.0.1"),
            ("--api", "http://127.0.0.1:8080/?x=1"),
            ("--sim", "not a url"),
        ] {
            let error = load(&[flag, bad]).unwrap_err();
            let text = error.to_string();
            assert!(text.contains(flag), "{flag} {bad}: {text}");
            assert!(text.contains(bad), "{flag} {bad}: {text}");
        }
        let error = load(&["--count=-3"]).unwrap_err();
        assert!(error.to_string().contains("--count"), "{error}");
    }

    #[test]
    fn no_subcommand_means_help() {
        assert!(parse(&[]).unwrap().command.is_none());
    }

    #[test]
    fn an_unknown_flag_is_refused_by_name() {
        let error = parse(&["up", "--no-buidl"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnknownArgument);
        let text = error.to_string();
        assert!(text.contains("--no-buidl"), "{text}");
        assert!(
            text.contains("--no-build"),
            "suggests the near miss: {text}"
        );
    }

    #[test]
    fn a_flag_of_another_subcommand_is_refused_by_name() {
        let error = parse(&["status", "--no-build"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnknownArgument);
        assert!(error.to_string().contains("--no-build"), "{error}");
    }

    #[test]
    fn an_unknown_subcommand_is_refused_by_name() {
        let error = parse(&["upp"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidSubcommand);
        assert!(error.to_string().contains("upp"), "{error}");
    }
}
