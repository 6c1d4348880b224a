//! The stack: the simulator and the three services as separate processes, started from the
//! same binaries that are deployed, with their environment wired together.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::gateway::{self, GatewaySetup};
use crate::process::{LogSink, Service};

/// The ports the stack listens on (all on 127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// order-svc HTTP (the public API).
    pub order_http: u16,
    /// order-svc gRPC.
    pub order_grpc: u16,
    /// order-svc ops (health, readiness, metrics).
    pub order_ops: u16,
    /// notify-svc HTTP (WeChat's callbacks).
    pub notify_http: u16,
    /// notify-svc ops (health, readiness, metrics).
    pub notify_ops: u16,
    /// pay-gateway-svc gRPC.
    pub gateway_grpc: u16,
    /// pay-gateway-svc ops (health, readiness, metrics).
    pub gateway_ops: u16,
    /// The WeChat Pay simulator.
    pub sim: u16,
}

impl Ports {
    /// The default local ports of the product spec.
    pub fn standard() -> Self {
        Ports {
            order_http: 8080,
            order_grpc: 50051,
            order_ops: 9080,
            notify_http: 8081,
            notify_ops: 9081,
            gateway_grpc: 50052,
            gateway_ops: 8082,
            sim: 8090,
        }
    }

    /// The local ports of replica `n` (0 is [`Ports::standard`]): each service port plus
    /// 100 × `n` (the simulator is shared).
    pub fn standard_replica(n: u16) -> Self {
        let s = Ports::standard();
        let shift = |port: u16| port + 100 * n;
        Ports {
            order_http: shift(s.order_http),
            order_grpc: shift(s.order_grpc),
            order_ops: shift(s.order_ops),
            notify_http: shift(s.notify_http),
            notify_ops: shift(s.notify_ops),
            gateway_grpc: shift(s.gateway_grpc),
            gateway_ops: shift(s.gateway_ops),
            sim: s.sim,
        }
    }

    /// Free ports picked by the OS (tests).
    pub fn ephemeral() -> std::io::Result<Self> {
        let p = free_ports(8)?;
        Ok(Ports {
            order_http: p[0],
            order_grpc: p[1],
            order_ops: p[2],
            notify_http: p[3],
            notify_ops: p[4],
            gateway_grpc: p[5],
            gateway_ops: p[6],
            sim: p[7],
        })
    }
}

/// `n` distinct free ports on 127.0.0.1, picked by the OS and released again: whoever binds
/// them later may find one taken meanwhile ([`StackError::is_port_race`]).
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// How to run the stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Where it listens (the first replica of each service, and the simulator).
    pub ports: Ports,
    /// Where further replicas of notify-svc, pay-gateway-svc and order-svc listen (their
    /// `sim` is unused): replica `i` of pay-gateway-svc tells WeChat to notify replica `i` of
    /// notify-svc, and replica `i` of order-svc calls replica `i` of pay-gateway-svc, so every
    /// replica carries traffic; all share the database, Redis and RabbitMQ.
    pub more_replicas: Vec<Ports>,
    /// Where the four binaries are.
    pub bin_dir: PathBuf,
    /// order-svc's database.
    pub database_url: String,
    /// Redis.
    pub redis_url: String,
    /// RabbitMQ.
    pub amqp_url: String,
    /// Prefix of exchange and queue names.
    pub amqp_prefix: String,
    /// Prefix of Redis keys.
    pub redis_prefix: String,
    /// order-svc's session secret.
    pub session_secret: String,
    /// order-svc's gRPC token (its callers send it).
    pub order_grpc_token: String,
    /// pay-gateway-svc's gRPC token (order-svc sends it).
    pub gateway_grpc_token: String,
    /// The simulator's time scale.
    pub sim_time_scale: f64,
    /// order-svc's `ORDER_TTL`.
    pub order_ttl: String,
    /// order-svc's `PAYMENT_QUERY_AFTER`.
    pub payment_query_after: String,
    /// order-svc's `SWEEP_INTERVAL`.
    pub sweep_interval: String,
    /// The services' log filter.
    pub rust_log: String,
    /// Where their output goes.
    pub sink: LogSink,
    /// Further settings for every order-svc replica (`DATABASE_MAX_CONNECTIONS`,
    /// `AMQP_PREFETCH`, ...), for experiments and benchmarks.
    pub order_env: Vec<(String, String)>,
    /// The API gateway in front, when wanted: it then also takes WeChat's notifications
    /// (the simulator trusts its test CA), and order-svc trusts its `X-Forwarded-For`.
    pub gateway: Option<GatewaySetup>,
    /// The operator's token of the admin API (order-svc gets its SHA-256 in `ADMIN_TOKENS`).
    pub admin_token: String,
    /// The merchant API certificate and key files pay-gateway-svc refunds with under v2;
    /// without them v2 refunds are off (v3 refunds need none).
    pub merchant_cert: Option<MerchantCert>,
    /// The WeChat Pay API version pay-gateway-svc and notify-svc speak (`minipay up --api`).
    pub api: ApiVersion,
    /// Which WeChat key signs the simulator's v3 notifications at start; switch it while
    /// running through the simulator's control API (the certificate → public key migration).
    pub v3_notify_signer: V3NotifySigner,
}

/// The WeChat Pay API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ApiVersion {
    /// v2: XML, MD5 or HMAC-SHA256 signatures.
    #[default]
    V2,
    /// v3: JSON, RSA signatures, AES-GCM resources.
    V3,
}

impl ApiVersion {
    /// `WECHAT_API_VERSION`'s value.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2 => "v2",
            ApiVersion::V3 => "v3",
        }
    }

    /// notify-svc's callback path for this version's `kind` (`pay` or `refund`).
    pub fn notify_path(self, kind: &str) -> String {
        match self {
            ApiVersion::V2 => format!("/wechat/{kind}/notify"),
            ApiVersion::V3 => format!("/wechat/v3/{kind}/notify"),
        }
    }
}

/// Which WeChat key signs the simulator's v3 notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum V3NotifySigner {
    /// The WeChat Pay public key (newer merchants).
    #[default]
    PublicKey,
    /// The platform certificate (older merchants, before their migration).
    Certificate,
}

impl V3NotifySigner {
    /// The simulator's `--v3-notify-signer` value.
    pub fn as_str(self) -> &'static str {
        match self {
            V3NotifySigner::PublicKey => "public-key",
            V3NotifySigner::Certificate => "certificate",
        }
    }
}

/// The operator `minipay up` creates.
pub const ADMIN_OPERATOR: &str = "operator";

/// A merchant API certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct MerchantCert {
    /// `apiclient_cert.pem`.
    pub cert: PathBuf,
    /// `apiclient_key.pem`.
    pub key: PathBuf,
}

impl MerchantCert {
    /// A self-signed certificate for the simulator's merchant in `dir` (made once, kept for
    /// later runs; the simulator over plain HTTP checks none, but pay-gateway-svc refunds only
    /// with one). The key file is readable by its owner only.
    pub fn ensure(dir: &std::path::Path) -> std::io::Result<MerchantCert> {
        let files = MerchantCert {
            cert: dir.join("apiclient_cert.pem"),
            key: dir.join("apiclient_key.pem"),
        };
        if files.cert.exists() && files.key.exists() {
            return Ok(files);
        }
        let made = rcgen::generate_simple_self_signed(vec!["minipay-merchant".to_owned()])
            .map_err(std::io::Error::other)?;
        std::fs::create_dir_all(dir)?;
        write_file(&files.cert, &made.cert.pem(), 0o644)?;
        write_file(&files.key, &made.signing_key.serialize_pem(), 0o600)?;
        Ok(files)
    }
}

/// Writes `contents` to a fresh file with permissions `mode` (a file already there is
/// replaced, so an old file's permissions never carry over).
pub fn write_file(path: &std::path::Path, contents: &str, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    std::io::Write::write_all(&mut file, contents.as_bytes())
}

/// The `ADMIN_TOKENS` entry of `token` for `operator`: the token's SHA-256, never the token.
pub fn admin_tokens_entry(operator: &str, token: &str) -> String {
    use sha2::Digest;
    format!(
        "{operator}:{}",
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    )
}

impl StackConfig {
    /// The ports of every replica, the first one first.
    pub fn replica_ports(&self) -> impl Iterator<Item = &Ports> {
        std::iter::once(&self.ports).chain(&self.more_replicas)
    }

    /// The defaults for a local run against these stores.
    pub fn local(
        bin_dir: PathBuf,
        database_url: String,
        redis_url: String,
        amqp_url: String,
        sink: LogSink,
    ) -> Self {
        StackConfig {
            ports: Ports::standard(),
            more_replicas: Vec::new(),
            bin_dir,
            database_url,
            redis_url,
            amqp_url,
            amqp_prefix: String::new(),
            redis_prefix: "minipay:".into(),
            session_secret: random_secret(),
            order_grpc_token: random_secret(),
            gateway_grpc_token: random_secret(),
            sim_time_scale: 1.0,
            order_ttl: "15m".into(),
            payment_query_after: "10s".into(),
            sweep_interval: "5s".into(),
            rust_log: "info".into(),
            sink,
            order_env: Vec::new(),
            gateway: None,
            admin_token: random_secret(),
            merchant_cert: None,
            api: ApiVersion::V2,
            v3_notify_signer: V3NotifySigner::PublicKey,
        }
    }
}

/// A random 48-character secret.
pub fn random_secret() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

/// Why the stack did not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A binary is missing.
    #[error(
        "{binary} is not built in {dir}; run `cargo build --workspace --bins` (add --release for a release run)"
    )]
    MissingBinary {
        /// Which.
        binary: &'static str,
        /// Where it was looked for.
        dir: String,
    },
    /// A process could not be started.
    #[error("cannot start {name}")]
    Spawn {
        /// Which.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A port is taken.
    #[error(
        "port {port} ({what}) is already in use: stop what uses it, or is a stack already running?"
    )]
    PortInUse {
        /// The port.
        port: u16,
        /// Its role.
        what: &'static str,
    },
    /// A service could not bind its port: something took it after the port was checked or
    /// picked (tests pick free ports, release them, and the services bind them later).
    #[error("{name} could not bind its port: it was taken while the stack started{tail}")]
    PortTaken {
        /// Which.
        name: String,
        /// Its last log lines.
        tail: String,
    },
    /// A service exited while it was being awaited.
    #[error("{name} did not become ready: it exited with {status}{tail}")]
    Exited {
        /// Which.
        name: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// Its last log lines.
        tail: String,
    },
    /// A service did not answer its readiness endpoint in time.
    #[error("{name} did not become ready: {url} did not answer 200 within {waited:?}{tail}")]
    NotReady {
        /// Which.
        name: String,
        /// Its readiness endpoint.
        url: String,
        /// How long it was given.
        waited: Duration,
        /// Its last log lines.
        tail: String,
    },
    /// cargo could not be run.
    #[error("building the services failed: cannot run cargo")]
    BuildCommand(#[source] std::io::Error),
    /// cargo ran and failed (its output went to the terminal).
    #[error("building the services failed: cargo exited with {0}")]
    BuildFailed(std::process::ExitStatus),
    /// The gateway's configuration could not be prepared.
    #[error("the API gateway cannot start")]
    Gateway(#[from] gateway::GatewayError),
    /// No service of this name was started.
    #[error("no service called {0} was started")]
    Unknown(String),
    /// No free port could be picked.
    #[error("cannot pick free ports")]
    FreePorts(#[source] std::io::Error),
}

impl StackError {
    /// Whether starting again on other ports may work (a port was taken).
    pub fn is_port_race(&self) -> bool {
        matches!(
            self,
            StackError::PortInUse { .. } | StackError::PortTaken { .. }
        )
    }
}

/// Why the stack's database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The server does not answer or refuses the admin URL.
    #[error("cannot connect to PostgreSQL at {url}")]
    Connect {
        /// The admin URL, redacted.
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Looking the database up failed.
    #[error("cannot look up database {name:?}")]
    Lookup {
        /// The database.
        name: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Creating it failed.
    #[error("cannot create database {name:?}")]
    Create {
        /// The database.
        name: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
}

/// The four binaries.
pub const BINARIES: [(&str, &str); 4] = [
    ("wechatpay-sim", "wechatpay-sim"),
    ("notify-svc", "notify-svc"),
    ("pay-gateway-svc", "pay-gateway-svc"),
    ("order-svc", "order-svc"),
];

/// The folder of this executable's sibling binaries (`target/<profile>/`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MINIPAY_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir
}

/// Builds the four binaries with cargo (a no-op when they are fresh). Only for `minipay up`
/// run through `cargo run`: never from inside `cargo test`.
pub async fn build_binaries(release: bool) -> Result<(), StackError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // `cargo run` gave this process its package's variables (CARGO_MANIFEST_DIR, CARGO_PKG_*,
    // ...); passed on, they differ from the outer build's environment, and build scripts
    // that track them (ring's tracks CARGO_MANIFEST_DIR) would run again, recompiling ring,
    // rustls and everything above them on every `minipay up`.
    for (name, _) in std::env::vars_os() {
        let cargo_run_var = name.to_str().is_some_and(|n| {
            n.starts_with("CARGO_PKG_")
                || matches!(
                    n,
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                )
        });
        if cargo_run_var {
            command.env_remove(name);
        }
    }
    command.arg("build");
    if release {
        command.arg("--release");
    }
    for (package, bin) in BINARIES {
        command.args(["-p", package, "--bin", bin]);
    }
    let status = command.status().await.map_err(StackError::BuildCommand)?;
    if status.success() {
        Ok(())
    } else {
        Err(StackError::BuildFailed(status))
    }
}

/// How long a service is given to answer its readiness endpoint.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running stack.
#[derive(Debug)]
pub struct RunningStack {
    services: Vec<Service>,
    /// How each service was started, to start it again after [`RunningStack::kill`].
    recipes: Vec<Recipe>,
    /// How it was started.
    pub config: StackConfig,
}

/// A service's command line and environment, and its readiness endpoint.
#[derive(Debug, Clone)]
struct Recipe {
    name: String,
    program: std::ffi::OsString,
    args: Vec<std::ffi::OsString>,
    envs: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    ready_url: String,
}

impl Recipe {
    /// What `command` will run (every service's environment is cleared first, then set).
    fn of(name: &str, command: &Command, ready_url: &str) -> Recipe {
        let std = command.as_std();
        Recipe {
            name: name.to_owned(),
            program: std.get_program().to_owned(),
            args: std.get_args().map(ToOwned::to_owned).collect(),
            envs: std
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
                .collect(),
            ready_url: ready_url.to_owned(),
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.env_clear().args(&self.args).envs(self.envs.clone());
        command
    }
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

impl RunningStack {
    /// Starts the simulator, notify-svc, pay-gateway-svc and order-svc, in that order, each
    /// ready before the next starts. `progress` hears each step.
    pub async fn start(
        config: StackConfig,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<RunningStack, StackError> {
        for (_, bin) in BINARIES {
            if !config.bin_dir.join(bin).is_file() {
                return Err(StackError::MissingBinary {
                    binary: bin,
                    dir: config.bin_dir.display().to_string(),
                });
            }
        }
        let p = config.ports;
        let replicas: Vec<Ports> = config.replica_ports().copied().collect();
        let mut wanted = vec![(p.sim, "simulator")];
        for r in &replicas {
            wanted.extend([
                (r.notify_http, "notify-svc"),
                (r.notify_ops, "notify-svc ops"),
                (r.gateway_grpc, "pay-gateway-svc gRPC"),
                (r.gateway_ops, "pay-gateway-svc ops"),
                (r.order_http, "order-svc HTTP"),
                (r.order_grpc, "order-svc gRPC"),
                (r.order_ops, "order-svc ops"),
            ]);
        }
        if let Some(g) = &config.gateway {
            wanted.extend([
                (g.ports.https, "API gateway HTTPS"),
                (g.ports.probes, "API gateway probes"),
                (g.ports.admin, "API gateway admin"),
            ]);
        }
        for (port, what) in wanted {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                return Err(StackError::PortInUse { port, what });
            }
        }
        let mut stack = RunningStack {
            services: Vec::new(),
            recipes: Vec::new(),
            config,
        };
        let c = stack.config.clone();
        let addr = |port: u16| format!("127.0.0.1:{port}");

        let mut sim = stack.command("wechatpay-sim");
        sim.args([
            "--listen",
            &addr(p.sim),
            "--time-scale",
            &c.sim_time_scale.to_string(),
            "--v3-notify-signer",
            c.v3_notify_signer.as_str(),
        ]);
        if let Some(g) = &c.gateway {
            sim.arg("--notify-ca").arg(g.tls.ca_path());
        }
        stack
            .launch(
                "wechatpay-sim",
                sim,
                &format!("{}/sim/v1/health", url(p.sim)),
                progress,
            )
            .await?;

        for (i, r) in replicas.iter().enumerate() {
            // Logs and errors name replica 2 and up `order-svc-2`, ...
            let suffix = if i == 0 {
                String::new()
            } else {
                format!("-{}", i + 1)
            };
            // WeChat calls the public URL: through the gateway when there is one.
            let public = match &c.gateway {
                Some(g) => g.url(),
                None => url(r.notify_http),
            };
            let notify_url = format!("{public}{}", c.api.notify_path("pay"));
            let refund_notify_url = format!("{public}{}", c.api.notify_path("refund"));
            let mut notify = stack.command("notify-svc");
            notify
                .env("WECHAT_MODE", "simulator")
                .env("WECHAT_API_VERSION", c.api.as_str())
                .env("NOTIFY_HTTP_ADDR", addr(r.notify_http))
                .env("NOTIFY_OPS_ADDR", addr(r.notify_ops))
                .env("AMQP_URL", &c.amqp_url)
                .env("AMQP_PREFIX", &c.amqp_prefix);
            if c.api == ApiVersion::V3 {
                // Replays are refused in Redis; platform certificates come from this
                // replica's pay-gateway-svc.
                notify
                    .env("REDIS_URL", &c.redis_url)
                    .env("REDIS_PREFIX", &c.redis_prefix)
                    .env("PAY_GATEWAY_URL", url(r.gateway_grpc))
                    .env("PAY_GATEWAY_TOKEN", &c.gateway_grpc_token);
            }
            stack
                .launch(
                    &format!("notify-svc{suffix}"),
                    notify,
                    &format!("{}/readyz", url(r.notify_ops)),
                    progress,
                )
                .await?;

            let mut gateway = stack.command("pay-gateway-svc");
            gateway
                .env("WECHAT_MODE", "simulator")
                .env("PAY_GATEWAY_GRPC_ADDR", addr(r.gateway_grpc))
                .env("PAY_GATEWAY_OPS_ADDR", addr(r.gateway_ops))
                .env("GRPC_TOKEN", &c.gateway_grpc_token)
                .env("WECHAT_API_VERSION", c.api.as_str())
                .env("WECHAT_PAY_BASE_URL", url(p.sim))
                .env("WECHAT_NOTIFY_URL", &notify_url)
                .env("WECHAT_REFUND_NOTIFY_URL", &refund_notify_url);
            if let Some(cert) = &c.merchant_cert {
                gateway
                    .env("WECHAT_CERT_FILE", &cert.cert)
                    .env("WECHAT_KEY_FILE", &cert.key);
            }
            stack
                .launch(
                    &format!("pay-gateway-svc{suffix}"),
                    gateway,
                    &format!("{}/readyz", url(r.gateway_ops)),
                    progress,
                )
                .await?;

            let mut order = stack.command("order-svc");
            order
                .env("WECHAT_MODE", "simulator")
                .env("ORDER_HTTP_ADDR", addr(r.order_http))
                .env("ORDER_GRPC_ADDR", addr(r.order_grpc))
                .env("ORDER_OPS_ADDR", addr(r.order_ops))
                .env("GRPC_TOKEN", &c.order_grpc_token)
                .env("PAY_GATEWAY_TOKEN", &c.gateway_grpc_token)
                .env("DATABASE_URL", &c.database_url)
                .env("REDIS_URL", &c.redis_url)
                .env("REDIS_KEY_PREFIX", &c.redis_prefix)
                .env("AMQP_URL", &c.amqp_url)
                .env("AMQP_PREFIX", &c.amqp_prefix)
                .env("PAY_GATEWAY_URL", url(r.gateway_grpc))
                .env("SESSION_SECRET", &c.session_secret)
                .env(
                    "ADMIN_TOKENS",
                    admin_tokens_entry(ADMIN_OPERATOR, &c.admin_token),
                )
                .env("ORDER_TTL", &c.order_ttl)
                .env("PAYMENT_QUERY_AFTER", &c.payment_query_after)
                .env("SWEEP_INTERVAL", &c.sweep_interval)
                // Behind the gateway, the client's address is the last X-Forwarded-For hop.
                .env(
                    "TRUSTED_PROXY",
                    if c.gateway.is_some() { "on" } else { "off" },
                )
                .envs(c.order_env.iter().map(|(k, v)| (k, v)));
            stack
                .launch(
                    &format!("order-svc{suffix}"),
                    order,
                    &format!("{}/readyz", url(r.order_ops)),
                    progress,
                )
                .await?;
        }

        if let Some(g) = &c.gateway {
            let config = gateway::render(g.ports, p.order_http, p.notify_http, &g.tls.dir)?;
            let path = g.tls.dir.join("envoy.yaml");
            std::fs::write(&path, config).map_err(|source| {
                StackError::Gateway(gateway::GatewayError::Write {
                    path: path.display().to_string(),
                    source,
                })
            })?;
            let mut envoy = Command::new(&g.envoy);
            envoy.env_clear();
            envoy
                .arg("-c")
                .arg(&path)
                // Several gateways on one machine (tests): no shared hot-restart memory.
                .args(["--disable-hot-restart", "--concurrency", "1"])
                .args(["--log-level", "warn"])
                // Access log lines within 100 ms (Envoy's default is every 10 s).
                .args(["--file-flush-interval-msec", "100"]);
            stack
                .launch(
                    "gateway",
                    envoy,
                    &format!("http://127.0.0.1:{}/ready", g.ports.probes),
                    progress,
                )
                .await?;
        }
        Ok(stack)
    }

    /// Starts `config` on free ports picked now (its own, its further replicas' — as many as
    /// it lists — and its gateway's), picking new ones when one was taken before a service
    /// bound it (at most four attempts). For tests and benchmarks, which run side by side.
    pub async fn start_on_free_ports(config: StackConfig) -> Result<RunningStack, StackError> {
        let mut attempt = 0;
        loop {
            let mut c = config.clone();
            c.ports = Ports::ephemeral().map_err(StackError::FreePorts)?;
            c.more_replicas = (0..config.more_replicas.len())
                .map(|_| Ports::ephemeral())
                .collect::<Result<_, _>>()
                .map_err(StackError::FreePorts)?;
            if let Some(g) = &mut c.gateway {
                g.ports = gateway::GatewayPorts::ephemeral().map_err(StackError::FreePorts)?;
            }
            match RunningStack::start(c, &|_| {}).await {
                Err(e) if e.is_port_race() && attempt < 3 => attempt += 1,
                started => return started,
            }
        }
    }

    fn command(&self, bin: &str) -> Command {
        let mut command = Command::new(self.config.bin_dir.join(bin));
        // A clean environment: only what the stack decides, plus the basics.
        command.env_clear();
        for var in ["PATH", "HOME", "LANG", "TZ"] {
            if let Some(v) = std::env::var_os(var) {
                command.env(var, v);
            }
        }
        command.env("RUST_LOG", &self.config.rust_log);
        command
    }

    async fn launch(
        &mut self,
        name: &str,
        command: Command,
        ready_url: &str,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<(), StackError> {
        let started = Instant::now();
        progress(&format!("starting {name} ..."));
        let recipe = Recipe::of(name, &command, ready_url);
        self.recipes.retain(|r| r.name != name);
        self.recipes.push(recipe);
        let mut service = Service::spawn(name, command, &self.config.sink).map_err(|source| {
            StackError::Spawn {
                name: name.to_owned(),
                source,
            }
        })?;
        let client = reqwest::Client::new();
        let deadline = started + READY_WITHIN;
        loop {
            if let Some(status) = service.exited() {
                let tail = self.tail(name);
                if tail.contains("Address already in use") {
                    return Err(StackError::PortTaken {
                        name: name.to_owned(),
                        tail,
                    });
                }
                return Err(StackError::Exited {
                    name: name.to_owned(),
                    status,
                    tail,
                });
            }
            if let Ok(r) = client
                .get(ready_url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                self.services.push(service);
                return Err(StackError::NotReady {
                    name: name.to_owned(),
                    url: ready_url.to_owned(),
                    waited: READY_WITHIN,
                    tail: self.tail(name),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        progress(&format!(
            "{name} ready in {} ms",
            started.elapsed().as_millis()
        ));
        self.services.push(service);
        Ok(())
    }

    /// `name`'s last log lines, as the end of an error message.
    fn tail(&self, name: &str) -> String {
        let tail = self.config.sink.tail(name, 15);
        if tail.is_empty() {
            String::new()
        } else {
            format!("\n  its last log lines:\n    {}", tail.join("\n    "))
        }
    }

    /// order-svc's base URL.
    pub fn order_url(&self) -> String {
        url(self.config.ports.order_http)
    }

    /// Every order-svc replica's base URL, the first one first.
    pub fn order_urls(&self) -> Vec<String> {
        self.config
            .replica_ports()
            .map(|p| url(p.order_http))
            .collect()
    }

    /// notify-svc's base URL.
    pub fn notify_url(&self) -> String {
        url(self.config.ports.notify_http)
    }

    /// The simulator's base URL.
    pub fn sim_url(&self) -> String {
        url(self.config.ports.sim)
    }

    /// pay-gateway-svc's ops base URL (health, readiness, metrics).
    pub fn gateway_ops_url(&self) -> String {
        url(self.config.ports.gateway_ops)
    }

    /// order-svc's ops base URL (health, readiness, metrics).
    pub fn order_ops_url(&self) -> String {
        url(self.config.ports.order_ops)
    }

    /// notify-svc's ops base URL (health, readiness, metrics).
    pub fn notify_ops_url(&self) -> String {
        url(self.config.ports.notify_ops)
    }

    /// The API gateway's public base URL, when there is one.
    pub fn gateway_url(&self) -> Option<String> {
        self.config.gateway.as_ref().map(GatewaySetup::url)
    }

    /// Each running service's name (`order-svc-2` for a second replica, `gateway` for Envoy)
    /// and process id: what `/proc` shows of this stack, when other stacks run beside it.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.services
            .iter()
            .filter_map(|s| s.id().map(|pid| (s.name.clone(), pid)))
            .collect()
    }

    /// Which services have exited (they should not have).
    pub fn exited(&mut self) -> Vec<String> {
        self.services
            .iter_mut()
            .filter_map(|s| s.exited().map(|st| format!("{} ({st})", s.name)))
            .collect()
    }

    /// SIGKILL to the service called `name` (`order-svc-2` for a second replica), as a
    /// crash would end it; false when no such service runs.
    pub async fn kill(&mut self, name: &str) -> bool {
        let Some(i) = self.services.iter().position(|s| s.name == name) else {
            return false;
        };
        self.services.remove(i).kill().await;
        true
    }

    /// Starts the service called `name` again as it was first started (same ports, same
    /// environment), after [`RunningStack::kill`]; returns once it is ready.
    pub async fn restart(&mut self, name: &str) -> Result<(), StackError> {
        let Some(recipe) = self.recipes.iter().find(|r| r.name == name).cloned() else {
            return Err(StackError::Unknown(name.to_owned()));
        };
        if let Some(i) = self.services.iter().position(|s| s.name == name) {
            self.services.remove(i).kill().await;
        }
        self.launch(name, recipe.command(), &recipe.ready_url, &|_| {})
            .await
    }

    /// SIGTERM to every service, newest first, each given 10 s to finish its work.
    pub async fn stop(self) -> Vec<String> {
        let mut unclean = Vec::new();
        for service in self.services.into_iter().rev() {
            let name = service.name.clone();
            if !service.stop(Duration::from_secs(10)).await {
                unclean.push(name);
            }
        }
        unclean
    }
}

/// Creates database `name` on the server of `admin_url` if it does not exist; returns its URL.
pub async fn ensure_database(admin_url: &str, name: &str) -> Result<String, DatabaseError> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|source| DatabaseError::Connect {
            url: redact(admin_url),
            source,
        })?;
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .map_err(|source| DatabaseError::Lookup {
            name: name.to_owned(),
            source,
        })?;
    if exists.is_none() {
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .map_err(|source| DatabaseError::Create {
                name: name.to_owned(),
                source,
            })?;
    }
    let base = admin_url.split('?').next().unwrap_or(admin_url);
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
