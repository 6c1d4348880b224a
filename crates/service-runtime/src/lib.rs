//! What every Minipay service shares at run time, so that each service's `main` stays thin:
//!
//! - [`settings`]: typed settings from the environment; a bad or missing variable fails at
//!   start with its name.
//! - [`telemetry`]: JSON logs, the trace id that crosses HTTP and gRPC, Prometheus metrics.
//! - [`grpc_auth`]: the token internal gRPC calls carry, and its check.
//! - [`server`]: binding; the HTTP server with its timeouts; the gRPC server.
//! - [`ops`]: `/healthz`, `/readyz` and `/metrics`.
//! - [`shutdown`]: SIGTERM / Ctrl-C as a future.
//! - [`redis`]: one lazily made, shared Redis connection.

pub mod grpc_auth;
pub mod ops;
pub mod redis;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod telemetry;

use std::process::ExitCode;

use settings::{ProcessEnv, SettingsError};

/// A service's life cycle, so every `main` is the same few lines: logs, settings from the
/// environment, build (bind, connect), run until SIGTERM.
pub trait Service: Sized {
    /// Its settings.
    type Settings;
    /// Why it cannot start or stopped badly.
    type Error: std::error::Error + 'static;
    /// Its name in logs and metrics.
    const NAME: &'static str;
    /// Reads the settings; a bad variable is named.
    fn load(env: &ProcessEnv) -> Result<Self::Settings, SettingsError>;
    /// Binds and connects.
    fn build(settings: Self::Settings) -> impl Future<Output = Result<Self, Self::Error>> + Send;
    /// Serves until `shutdown` completes, then finishes in-flight work.
    fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The whole `main` of a service: exit 2 for bad settings, 1 for a failed start or run.
pub async fn main<S: Service>() -> ExitCode {
    telemetry::init_logs(S::NAME);
    let settings = match S::load(&ProcessEnv) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "invalid settings");
            eprintln!("{}: {e}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let service = match S::build(settings).await {
        Ok(s) => s,
        Err(e) => {
            let error = telemetry::error_chain(&e);
            tracing::error!(%error, "cannot start");
            eprintln!("{}: {error}", S::NAME);
            return ExitCode::from(1);
        }
    };
    match service.run(shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %telemetry::error_chain(&e), "stopped with an error");
            ExitCode::from(1)
        }
    }
}

/// Implements [`Service`] for a service's `Application`, which has
/// `Application::build(Settings) -> Result<Application, Error>`,
/// `Application::run_until_stopped(self, shutdown) -> Result<(), Error>` and
/// `Settings::from_source(&impl Source)`.
#[macro_export]
macro_rules! impl_service {
    ($app:ty, $settings:ty, $error:ty, $name:expr) => {
        impl $crate::Service for $app {
            type Settings = $settings;
            type Error = $error;
            const NAME: &'static str = $name;

            fn load(
                env: &$crate::settings::ProcessEnv,
            ) -> Result<$settings, $crate::settings::SettingsError> {
                <$settings>::from_source(env)
            }

            fn build(settings: $settings) -> impl Future<Output = Result<Self, $error>> + Send {
                <$app>::build(settings)
            }

            fn run(
                self,
                shutdown: impl Future<Output = ()> + Send + 'static,
            ) -> impl Future<Output = Result<(), $error>> + Send {
                self.run_until_stopped(shutdown)
            }
        }
    };
}
