//! notify-svc: settings, telemetry, build, run until SIGTERM (see `service_runtime::main`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::main::<notify_svc::Application>().await
}
