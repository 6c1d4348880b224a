//! `minipay up`: the whole stack, a self-check purchase, then its logs until Ctrl-C.

use std::process::ExitCode;
use std::time::Duration;

use service_runtime::telemetry::error_chain;

use super::{BuildArgs, Interrupt, StartError, interrupted, start};
use crate::process::LogSink;
use crate::purchase::Shop;
use crate::stack::{ApiVersion, RunningStack};

/// `minipay up`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(super) build: BuildArgs,
    /// Put the API gateway in front (Envoy with the deployed configuration, HTTPS on 8443 with
    /// a test certificate made now): the self-check and WeChat's notifications go through it
    #[arg(long)]
    pub gateway: bool,
    /// Run this many replicas of notify-svc, pay-gateway-svc and order-svc (1 to 4; replica n
    /// listens on each port + 100 × (n - 1)), all sharing PostgreSQL, Redis and RabbitMQ
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=4))]
    pub replicas: u16,
    /// The WeChat Pay API version pay-gateway-svc and notify-svc speak to the simulator (v3:
    /// RSA signatures, the WeChat Pay public key and platform certificates at once, encrypted
    /// notifications to /wechat/v3/...)
    #[arg(long, value_enum, default_value_t = ApiVersion::V2)]
    pub api: ApiVersion,
}

pub(super) async fn run(args: Args, interrupt: Interrupt) -> ExitCode {
    println!("Minipay: starting the whole stack\n");
    let sink = LogSink::gated();
    // Interrupted while starting: dropping the start drops every process it started (each
    // dropped service kills its process group), so nothing is left behind.
    let started = tokio::select! {
        s = start(args.build, sink.clone(), args.gateway, args.replicas, args.api) => s,
        () = interrupted(interrupt.clone()) => Err(StartError::Interrupted),
    };
    let (infra, mut running) = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("\nminipay up failed: {}", error_chain(&e));
            return ExitCode::from(1);
        }
    };
    let shop = match &running.config.gateway {
        Some(gateway) => {
            println!("\nready. Self-check: one real purchase through the API gateway (HTTPS)");
            match gateway.client() {
                Ok(client) => Shop::with_client(client, gateway.url(), running.sim_url()),
                Err(e) => {
                    eprintln!("  self-check FAILED: {}", error_chain(&e));
                    running.stop().await;
                    infra.stop().await;
                    return ExitCode::from(1);
                }
            }
        }
        None => {
            println!("\nready. Self-check: one real purchase through the HTTP API");
            Shop::new(running.order_url(), running.sim_url())
        }
    };
    match shop.purchase("selfcheck", &|_, _| {}).await {
        Ok(receipt) => println!(
            "{}\n  self-check passed: order {} is PAID\n",
            receipt.timeline.render(),
            receipt.out_trade_no
        ),
        Err(e) => {
            eprintln!("  self-check FAILED: {}", error_chain(&e));
            for name in [
                "gateway",
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
    let api = running.config.api;
    println!(
        "  notify-svc       HTTP http://127.0.0.1:{}  (WeChat callbacks: POST {} and {})",
        p.notify_http,
        api.notify_path("pay"),
        api.notify_path("refund")
    );
    println!(
        "  pay-gateway-svc  gRPC 127.0.0.1:{}  (WeChat Pay API {})",
        p.gateway_grpc,
        api.as_str()
    );
    println!(
        "  wechatpay-sim    HTTP http://127.0.0.1:{}  (control API /sim/v1)",
        p.sim
    );
    println!(
        "  ops (/healthz /readyz /metrics): order-svc http://127.0.0.1:{}  notify-svc http://127.0.0.1:{}  pay-gateway-svc http://127.0.0.1:{}",
        p.order_ops, p.notify_ops, p.gateway_ops
    );
    for (i, r) in running.config.more_replicas.iter().enumerate() {
        println!(
            "  replica {}: order-svc http://127.0.0.1:{} (gRPC {}, ops {})  notify-svc http://127.0.0.1:{} (ops {})  pay-gateway-svc gRPC {} (ops {})",
            i + 2,
            r.order_http,
            r.order_grpc,
            r.order_ops,
            r.notify_http,
            r.notify_ops,
            r.gateway_grpc,
            r.gateway_ops
        );
    }
    println!("  gRPC calls need the service's token (GRPC_TOKEN, generated for this run)");
    println!(
        "  admin API        http://127.0.0.1:{}/admin/v1 (OpenAPI /admin/v1/openapi.json), operator {:?}, token {} (also in .minipay/admin-token):",
        p.order_http,
        crate::stack::ADMIN_OPERATOR,
        running.config.admin_token
    );
    println!(
        "                   curl -H \"Authorization: Bearer $(cat .minipay/admin-token)\" http://127.0.0.1:{}/admin/v1/orders/<id>",
        p.order_http
    );
    if let Some(g) = &running.config.gateway {
        println!(
            "  API gateway      HTTPS {}  (/api/ /admin/ -> order-svc, /wechat/ -> notify-svc; WeChat notifies through it)",
            g.url()
        );
        println!(
            "                   curl --cacert {} {}/api/v1/products",
            g.tls.ca_path().display(),
            g.url()
        );
        println!(
            "  Mini Program sample (clients/miniprogram): base URL {}  (trust {} in a test runner)",
            g.url(),
            g.tls.ca_path().display()
        );
    }
    println!();
    // The calls a Mini Program makes: through the gateway when there is one.
    let api = match &running.config.gateway {
        Some(g) => format!("--cacert {} {}", g.tls.ca_path().display(), g.url()),
        None => format!("localhost:{}", p.order_http),
    };
    println!("Try it (each step is one curl):");
    println!(
        "  TOKEN=$(curl -s -X POST {api}/api/v1/sessions -d '{{\"code\":\"test-alice\"}}' | sed 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/')"
    );
    println!("  curl -s {api}/api/v1/products");
    println!(
        "  curl -s -X POST {api}/api/v1/orders -H \"Authorization: Bearer $TOKEN\" -d '{{\"items\":[{{\"sku\":\"TEA-JASMINE\",\"quantity\":2}}]}}'"
    );
    println!(
        "  curl -s -X POST {api}/api/v1/orders/<id>/payment -H \"Authorization: Bearer $TOKEN\""
    );
    println!(
        "  curl -s -X POST localhost:{}/sim/v1/orders/<out_trade_no>/pay        # the user pays in WeChat",
        p.sim
    );
    println!("  curl -s {api}/api/v1/orders/<id> -H \"Authorization: Bearer $TOKEN\"   # PAID");
    println!(
        "  (a `test-<name>` code logs in user <name>; use `test-<name>.2`, `.3`, ... for more logins: each code works once)\n"
    );
}
