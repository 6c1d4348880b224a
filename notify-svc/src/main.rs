//! notify-svc: settings, telemetry, build, run until SIGTERM.

use std::process::ExitCode;

use notify_svc::{Application, SERVICE, Settings};
use service_runtime::settings::ProcessEnv;
use service_runtime::{shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_logs(SERVICE);
    let settings = match Settings::from_source(&ProcessEnv) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "invalid settings");
            eprintln!("{SERVICE}: {e}");
            return ExitCode::from(2);
        }
    };
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("{SERVICE}: {e}");
            return ExitCode::from(1);
        }
    };
    match app.run_until_stopped(shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped with an error");
            ExitCode::from(1)
        }
    }
}
