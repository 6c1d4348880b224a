//! What every Minipay service shares at run time, so that each service's `main` stays thin:
//!
//! - [`settings`]: typed settings from the environment; a bad or missing variable fails at
//!   start with its name.
//! - [`telemetry`]: JSON logs, the trace id that crosses HTTP and gRPC, Prometheus metrics.
//! - [`ops`]: `/healthz`, `/readyz` and `/metrics`.
//! - [`shutdown`]: SIGTERM / Ctrl-C as a future.

pub mod ops;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
