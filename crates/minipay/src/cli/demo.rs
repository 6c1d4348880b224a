//! `minipay demo`: one purchase, step by step, against a running stack (or one it starts).

use std::process::ExitCode;

use service_runtime::telemetry::error_chain;

use super::{BuildArgs, start};
use crate::infra::reachable;
use crate::process::LogSink;
use crate::purchase::Shop;
use crate::stack::{ApiVersion, Ports};

/// `minipay demo`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(super) build: BuildArgs,
}

pub(super) async fn run(args: Args) -> ExitCode {
    let ports = Ports::standard();
    let mut started = None;
    if !reachable("127.0.0.1", ports.order_http).await {
        println!(
            "No stack on port {}: starting one for the demo.\n",
            ports.order_http
        );
        match start(args.build, LogSink::keep(), false, 1, ApiVersion::V2).await {
            Ok(s) => started = Some(s),
            Err(e) => {
                eprintln!("minipay demo: cannot start the stack: {}", error_chain(&e));
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
            eprintln!("\ndemo failed at {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}
