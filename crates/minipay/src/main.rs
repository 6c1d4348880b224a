//! `minipay up | demo | status`: run, try and inspect the whole stack locally.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use minipay::infra::{Infra, reachable};
use minipay::process::LogSink;
use minipay::purchase::Shop;
use minipay::stack::{self, Ports, RunningStack, StackConfig};

const USAGE: &str = "\
minipay: run Minipay locally

USAGE:
  cargo run --release -p minipay -- up       start everything, self-check with a real purchase, stream logs; Ctrl-C stops it all
  cargo run --release -p minipay -- demo     walk through one purchase against a running stack (or one it starts)
  cargo run --release -p minipay -- status   what is running and ready, and orders per state

OPTIONS (up, demo):
  --no-build     use the binaries already built next to this one
Environment: DATABASE_URL (admin database; default postgres://postgres@127.0.0.1:5432/postgres),
REDIS_URL, AMQP_URL: used where they answer, otherwise private instances are started from the
locally installed servers, with data under .minipay/.
";

fn say(line: &str) {
    println!("  • {line}");
}

/// Ctrl-C or SIGTERM, seen from the very start: the children run in their own process
/// groups, so `minipay` must always be the one that stops them.
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

#[tokio::main]
async fn main() -> ExitCode {
    let interrupt = listen_for_interrupt();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let no_build = args.iter().any(|a| a == "--no-build");
    match args.first().map(String::as_str) {
        Some("up") => up(no_build, interrupt).await,
        Some("demo") => demo(no_build).await,
        Some("status") => status().await,
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("minipay: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Infrastructure, the `minipay` database, fresh binaries, and the four processes.
async fn start(no_build: bool, sink: LogSink) -> Result<(Infra, RunningStack), String> {
    let state = PathBuf::from(".minipay");
    println!("Infrastructure:");
    let infra = Infra::ensure(&state, &sink, &say)
        .await
        .map_err(|e| e.to_string())?;
    let database_url = match stack::ensure_database(&infra.database_url, "minipay").await {
        Ok(url) => url,
        Err(e) => {
            infra.stop().await;
            return Err(e);
        }
    };
    say(&format!("database: {}", stack::redact(&database_url)));
    let bin_dir = stack::bin_dir();
    if !no_build {
        println!("Building the services (cargo build; quick when nothing changed):");
        let release = bin_dir.ends_with("release");
        if let Err(e) = stack::build_binaries(release).await {
            infra.stop().await;
            return Err(e.to_string());
        }
    }
    println!("Services:");
    let config = StackConfig::local(
        bin_dir,
        database_url,
        infra.redis_url.clone(),
        infra.amqp_url.clone(),
        sink,
    );
    match RunningStack::start(config, &say).await {
        Ok(stack) => Ok((infra, stack)),
        Err(e) => {
            infra.stop().await;
            Err(e.to_string())
        }
    }
}

async fn up(no_build: bool, interrupt: Interrupt) -> ExitCode {
    println!("Minipay: starting the whole stack\n");
    let sink = LogSink::gated();
    // Interrupted while starting: dropping the start drops every process it started (each
    // dropped service kills its process group), so nothing is left behind.
    let started = tokio::select! {
        s = start(no_build, sink.clone()) => s,
        () = interrupted(interrupt.clone()) => Err("interrupted while starting; everything started so far was stopped".to_owned()),
    };
    let (infra, mut running) = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("\nminipay up failed: {e}");
            return ExitCode::from(1);
        }
    };
    println!("\nready. Self-check: one real purchase through the HTTP API");
    let shop = Shop::new(running.order_url(), running.sim_url());
    match shop.purchase("selfcheck", &|_, _| {}).await {
        Ok(receipt) => println!(
            "{}\n  self-check passed: order {} is PAID\n",
            receipt.timeline.render(),
            receipt.out_trade_no
        ),
        Err(e) => {
            eprintln!("  self-check FAILED: {e}");
            for name in [
                "order-svc",
                "notify-svc",
                "pay-gateway-svc",
                "wechatpay-sim",
            ] {
                for line in sink.tail(name, 5) {
                    eprintln!("    {line}");
                }
            }
            running.stop().await;
            infra.stop().await;
            return ExitCode::from(1);
        }
    }
    print_guide(&running);
    println!("Streaming logs (Ctrl-C stops everything):\n");
    sink.open();
    let exited = loop {
        tokio::select! {
            () = interrupted(interrupt.clone()) => break None,
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                let gone = running.exited();
                if !gone.is_empty() {
                    break Some(gone);
                }
            }
        }
    };
    println!("\nstopping ...");
    let unclean = running.stop().await;
    infra.stop().await;
    match (exited, unclean.is_empty()) {
        (None, true) => {
            println!("stopped cleanly; nothing left running");
            ExitCode::SUCCESS
        }
        (Some(gone), _) => {
            eprintln!("stopped because these exited: {}", gone.join(", "));
            ExitCode::from(1)
        }
        (None, false) => {
            eprintln!("these had to be killed: {}", unclean.join(", "));
            ExitCode::from(1)
        }
    }
}

fn print_guide(running: &RunningStack) {
    let p = running.config.ports;
    println!("Listening:");
    println!(
        "  order-svc        HTTP http://127.0.0.1:{}  (API /api/v1, OpenAPI /api/v1/openapi.json)   gRPC 127.0.0.1:{}",
        p.order_http, p.order_grpc
    );
    println!(
        "  notify-svc       HTTP http://127.0.0.1:{}  (WeChat callbacks: POST /wechat/pay/notify)",
        p.notify_http
    );
    println!(
        "  pay-gateway-svc  gRPC 127.0.0.1:{}   HTTP http://127.0.0.1:{} (health, metrics)",
        p.gateway_grpc, p.gateway_http
    );
    println!(
        "  wechatpay-sim    HTTP http://127.0.0.1:{}  (control API /sim/v1)",
        p.sim
    );
    println!("  every service: /healthz /readyz /metrics\n");
    println!("Try it (each step is one curl):");
    println!(
        "  TOKEN=$(curl -s -X POST localhost:{}/api/v1/sessions -d '{{\"code\":\"test-alice\"}}' | sed 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/')",
        p.order_http
    );
    println!("  curl -s localhost:{}/api/v1/products", p.order_http);
    println!(
        "  curl -s -X POST localhost:{}/api/v1/orders -H \"Authorization: Bearer $TOKEN\" -d '{{\"items\":[{{\"sku\":\"TEA-JASMINE\",\"quantity\":2}}]}}'",
        p.order_http
    );
    println!(
        "  curl -s -X POST localhost:{}/api/v1/orders/<id>/payment -H \"Authorization: Bearer $TOKEN\"",
        p.order_http
    );
    println!(
        "  curl -s -X POST localhost:{}/sim/v1/orders/<out_trade_no>/pay        # the user pays in WeChat",
        p.sim
    );
    println!(
        "  curl -s localhost:{}/api/v1/orders/<id> -H \"Authorization: Bearer $TOKEN\"   # PAID",
        p.order_http
    );
    println!(
        "  (a `test-<name>` code logs in user <name>; use `test-<name>.2`, `.3`, ... for more logins: each code works once)\n"
    );
}

async fn demo(no_build: bool) -> ExitCode {
    let ports = Ports::standard();
    let mut started = None;
    if !reachable("127.0.0.1", ports.order_http).await {
        println!(
            "No stack on port {}: starting one for the demo.\n",
            ports.order_http
        );
        match start(no_build, LogSink::keep()).await {
            Ok(s) => started = Some(s),
            Err(e) => {
                eprintln!("minipay demo: cannot start the stack: {e}");
                return ExitCode::from(1);
            }
        }
        println!();
    }
    let shop = Shop::new(
        format!("http://127.0.0.1:{}", ports.order_http),
        format!("http://127.0.0.1:{}", ports.sim),
    );
    println!("A purchase, step by step:");
    let step = std::sync::atomic::AtomicUsize::new(0);
    let result = shop
        .purchase("demo", &|name, what| {
            let n = step.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            println!("  {n}. {name}: {what}");
        })
        .await;
    if let Some((infra, running)) = started {
        running.stop().await;
        infra.stop().await;
    }
    match result {
        Ok(r) => {
            println!(
                "\ndone: order {} paid, transaction {}\n{}",
                r.out_trade_no,
                r.transaction_id,
                r.timeline.render()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\ndemo failed at {:?}: {}", e.step, e.detail);
            ExitCode::from(1)
        }
    }
}

async fn status() -> ExitCode {
    let ports = Ports::standard();
    println!("Services:");
    let states = stack_status(&ports).await;
    let all_ready = states.iter().all(|s| s.state == "ready");
    for s in &states {
        println!("  {:<16} {:<60} {}", s.name, s.url, s.state);
    }
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let database = format!("{base}/minipay");
    println!("Orders ({}):", stack::redact(&database));
    match minipay::status::orders_by_status(&database).await {
        Ok(rows) if rows.is_empty() => println!("  none yet"),
        Ok(rows) => {
            for (status, n) in rows {
                println!("  {status:<20} {n}");
            }
        }
        Err(e) => println!("  unavailable: {e}"),
    }
    if all_ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn stack_status(ports: &Ports) -> Vec<minipay::status::ServiceState> {
    minipay::status::services(ports).await
}
