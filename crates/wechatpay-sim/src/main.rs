//! `wechatpay-sim`: the simulator as a process.

use std::process::ExitCode;

use wechatpay_sim::{Command, Sim, USAGE, parse_args, serve};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .json()
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse_args(&args, std::env::var("SIM_LISTEN").ok().as_deref()) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wechatpay-sim: {e}");
            return ExitCode::from(2);
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
    match serve(listener, sim, service_runtime::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wechatpay-sim: {e}");
            ExitCode::from(1)
        }
    }
}
