//! `wechatpay-sim`: the simulator as a process.

use std::process::ExitCode;

use wechatpay_sim::{Sim, parse_args, serve};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .json()
        .init();
    let config = match parse_args(
        std::env::args_os(),
        std::env::var("SIM_LISTEN").ok().as_deref(),
    ) {
        Ok(config) => config,
        Err(e) => {
            // `--help` and `--version` print to stdout and exit 0; errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("wechatpay-sim: cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("wechatpay-sim listening on http://{addr}");
    for m in &config.merchants {
        // The simulator's keys are test keys by design; printing them is what makes the
        // simulator usable by hand. Never run it with a real merchant's key.
        println!(
            "  merchant appid={} mch_id={} api_key={} app_secret={} sandbox_key={}",
            m.appid,
            m.mch_id,
            m.key.expose(),
            m.app_secret,
            m.sandbox_key().expose()
        );
    }
    println!(
        "  time_scale={} auto_pay_after={:?}",
        config.time_scale, config.auto_pay_after
    );
    let sim = Sim::new(config);
    match serve(listener, sim, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wechatpay-sim: {e}");
            ExitCode::from(1)
        }
    }
}

/// Completes on SIGTERM or Ctrl-C. If a handler cannot be installed, that signal is simply
/// not awaited (the other still stops the simulator).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
