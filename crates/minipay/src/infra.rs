//! PostgreSQL, Redis and RabbitMQ: used where they answer (at the conventional local
//! addresses or the configured URLs), otherwise started as private instances from the
//! locally installed servers with their data under `.minipay/`, otherwise a clear message
//! naming what is missing and the command that installs it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::process::{LogSink, Service};

/// The three, as URLs the services use.
#[derive(Debug)]
pub struct Infra {
    /// PostgreSQL (an admin database; the stack creates its own).
    pub database_url: String,
    /// Redis.
    pub redis_url: String,
    /// RabbitMQ.
    pub amqp_url: String,
    started: Vec<Service>,
    /// The env file of a private RabbitMQ node, when this started one: its node runs in a
    /// session of its own (Debian's script switches user), so it is stopped by name.
    rabbitmq_env: Option<PathBuf>,
}

/// The private RabbitMQ node's name.
const RABBIT_NODE: &str = "minipay@localhost";

pub(crate) fn stop_rabbit_node(env_file: &Path, node: &str) {
    let _ = std::process::Command::new("rabbitmqctl")
        .args(["-n", node, "stop"])
        .env("RABBITMQ_CONF_ENV_FILE", env_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

impl Drop for Infra {
    /// Dropped without `stop` (an interrupted start): the private node is stopped all the same.
    fn drop(&mut self) {
        if let Some(env) = self.rabbitmq_env.take() {
            stop_rabbit_node(&env, RABBIT_NODE);
        }
    }
}

/// Why the infrastructure is not there.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// Not reachable and not installed.
    #[error(
        "{service} is not reachable at {address} and no {service} server is installed here.\n  Install it with: {install}\n  or point {variable} at a running one."
    )]
    Missing {
        /// Which.
        service: &'static str,
        /// Where we looked.
        address: String,
        /// The install command.
        install: &'static str,
        /// The variable that overrides the address.
        variable: &'static str,
    },
    /// A private instance did not come up.
    #[error(
        "{service} was started from {binary} but did not answer at {address}; its data is in {data}"
    )]
    DidNotStart {
        /// Which.
        service: &'static str,
        /// What was started.
        binary: String,
        /// Where.
        address: String,
        /// Its data directory.
        data: String,
    },
    /// A setup command could not be run.
    #[error("cannot run {program}")]
    Run {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A setup command ran and failed.
    #[error("{program} failed: {stderr}")]
    Failed {
        /// The program.
        program: String,
        /// What it said.
        stderr: String,
    },
    /// A private instance's data folder or file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The folder or file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A private instance's server could not be started.
    #[error("cannot start {service}")]
    Spawn {
        /// Which.
        service: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `create_dir_all`, its error naming the folder.
fn create_dir(path: &Path) -> Result<(), InfraError> {
    std::fs::create_dir_all(path).map_err(|source| InfraError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// `fs::write`, its error naming the file.
fn write_file(path: &Path, contents: &str) -> Result<(), InfraError> {
    std::fs::write(path, contents).map_err(|source| InfraError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// `host:port` of a URL, with a default port.
pub fn host_port(url: &str, default_port: u16) -> (String, u16) {
    match reqwest::Url::parse(url) {
        Ok(u) => (
            u.host_str().unwrap_or("127.0.0.1").to_owned(),
            u.port().unwrap_or(default_port),
        ),
        Err(_) => ("127.0.0.1".to_owned(), default_port),
    }
}

/// Whether something accepts TCP connections there.
pub async fn reachable(host: &str, port: u16) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect((host, port))
        )
        .await,
        Ok(Ok(_))
    )
}

pub(crate) async fn wait_reachable(host: &str, port: u16, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if reachable(host, port).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

fn which(binary: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().cloned())
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
}

fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    dirs
}

async fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .await
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

async fn run(program: &Path, args: &[&str], as_postgres: bool) -> Result<(), InfraError> {
    let mut command = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = command
        .args(args)
        .output()
        .await
        .map_err(|source| InfraError::Run {
            program: program.display().to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(InfraError::Failed {
            program: program.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

impl Infra {
    /// Finds or starts the three. `state` is the folder for private instances' data.
    pub async fn ensure(
        state: &Path,
        sink: &LogSink,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Infra, InfraError> {
        let database_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let redis_url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let amqp_url = std::env::var("AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        let mut infra = Infra {
            database_url,
            redis_url,
            amqp_url,
            started: Vec::new(),
            rabbitmq_env: None,
        };

        let (host, port) = host_port(&infra.database_url, 5432);
        if reachable(&host, port).await {
            progress(&format!("PostgreSQL: using the one at {host}:{port}"));
        } else {
            progress(&format!(
                "PostgreSQL: nothing at {host}:{port}; starting a private instance"
            ));
            infra.started.push(start_postgres(state, port, sink).await?);
        }
        let (host, port) = host_port(&infra.redis_url, 6379);
        if reachable(&host, port).await {
            progress(&format!("Redis: using the one at {host}:{port}"));
        } else {
            progress(&format!(
                "Redis: nothing at {host}:{port}; starting a private instance"
            ));
            infra.started.push(start_redis(state, port, sink).await?);
        }
        let (host, port) = host_port(&infra.amqp_url, 5672);
        if reachable(&host, port).await {
            progress(&format!("RabbitMQ: using the one at {host}:{port}"));
        } else {
            progress(&format!(
                "RabbitMQ: nothing at {host}:{port}; starting a private instance (this takes a few seconds)"
            ));
            infra.rabbitmq_env = Some(state.join("rabbitmq").join("rabbitmq-env.conf"));
            infra
                .started
                .push(start_rabbitmq(state, port, sink, RABBIT_NODE, None).await?);
        }
        Ok(infra)
    }

    /// Stops the private instances this started (nothing else).
    pub async fn stop(mut self) {
        let started_rabbitmq = self.rabbitmq_env.is_some();
        if let Some(env) = self.rabbitmq_env.take() {
            let _ = tokio::task::spawn_blocking(move || stop_rabbit_node(&env, RABBIT_NODE)).await;
        }
        for service in std::mem::take(&mut self.started).into_iter().rev() {
            service.stop(Duration::from_secs(20)).await;
        }
        if started_rabbitmq {
            // Erlang's port mapper outlives the node it served; it was ours.
            let _ = Command::new("epmd").arg("-kill").output().await;
        }
    }
}

pub(crate) async fn start_postgres(
    state: &Path,
    port: u16,
    sink: &LogSink,
) -> Result<Service, InfraError> {
    let dirs = postgres_bin_dirs();
    let (Some(initdb), Some(postgres)) = (which("initdb", &dirs), which("postgres", &dirs)) else {
        return Err(InfraError::Missing {
            service: "PostgreSQL",
            address: format!("127.0.0.1:{port}"),
            install: "sudo apt-get install postgresql",
            variable: "DATABASE_URL",
        });
    };
    let data = state.join("postgres");
    let root = is_root().await;
    if !data.join("PG_VERSION").exists() {
        create_dir(&data)?;
        if root {
            run(
                Path::new("chown"),
                &["-R", "postgres", &data.to_string_lossy()],
                false,
            )
            .await?;
        }
        run(
            &initdb,
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
            ],
            root,
        )
        .await?;
    }
    let port_s = port.to_string();
    let data_s = data.to_string_lossy().into_owned();
    let args = [
        "-D",
        data_s.as_str(),
        "-p",
        port_s.as_str(),
        "-k",
        "/tmp",
        "-c",
        "listen_addresses=127.0.0.1",
    ];
    let command = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&postgres).args(args);
        c
    } else {
        let mut c = Command::new(&postgres);
        c.args(args);
        c
    };
    let service =
        Service::spawn_with_signal("postgres", command, sink, "INT").map_err(|source| {
            InfraError::Spawn {
                service: "PostgreSQL",
                source,
            }
        })?;
    if !wait_reachable("127.0.0.1", port, Duration::from_secs(30)).await {
        return Err(InfraError::DidNotStart {
            service: "PostgreSQL",
            binary: postgres.display().to_string(),
            address: format!("127.0.0.1:{port}"),
            data: data_s,
        });
    }
    Ok(service)
}

pub(crate) async fn start_redis(
    state: &Path,
    port: u16,
    sink: &LogSink,
) -> Result<Service, InfraError> {
    let Some(redis) = which("redis-server", &[]) else {
        return Err(InfraError::Missing {
            service: "Redis",
            address: format!("127.0.0.1:{port}"),
            install: "sudo apt-get install redis-server",
            variable: "REDIS_URL",
        });
    };
    let data = state.join("redis");
    create_dir(&data)?;
    let mut command = Command::new(&redis);
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &data.to_string_lossy(),
    ]);
    let service = Service::spawn("redis", command, sink).map_err(|source| InfraError::Spawn {
        service: "Redis",
        source,
    })?;
    if !wait_reachable("127.0.0.1", port, Duration::from_secs(15)).await {
        return Err(InfraError::DidNotStart {
            service: "Redis",
            binary: redis.display().to_string(),
            address: format!("127.0.0.1:{port}"),
            data: data.display().to_string(),
        });
    }
    Ok(service)
}

/// Starts a RabbitMQ node named `node` with its data under `state/rabbitmq`, listening on
/// `port`, and on `dist_port` for Erlang distribution when given (else the default, `port` +
/// 20000, which is out of range for an ephemeral `port`).
pub(crate) async fn start_rabbitmq(
    state: &Path,
    port: u16,
    sink: &LogSink,
    node: &str,
    dist_port: Option<u16>,
) -> Result<Service, InfraError> {
    let Some(rabbit) = which(
        "rabbitmq-server",
        &[
            PathBuf::from("/usr/sbin"),
            PathBuf::from("/usr/lib/rabbitmq/bin"),
        ],
    ) else {
        return Err(InfraError::Missing {
            service: "RabbitMQ",
            address: format!("127.0.0.1:{port}"),
            install: "sudo apt-get install rabbitmq-server",
            variable: "AMQP_URL",
        });
    };
    let data = state.join("rabbitmq");
    create_dir(&data.join("log"))?;
    let plugins = data.join("enabled_plugins");
    write_file(&plugins, "[].\n")?;
    // Our own config and env files, so a system-wide /etc/rabbitmq cannot move the listener
    // or the node name.
    let config = data.join("minipay.conf");
    write_file(
        &config,
        &format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users.guest = true\n"),
    )?;
    let env_file = data.join("rabbitmq-env.conf");
    write_file(&env_file, "")?;
    // As root, Debian's rabbitmq-server drops to the `rabbitmq` user: its data must be theirs.
    if is_root().await {
        run(
            Path::new("chown"),
            &["-R", "rabbitmq", &data.to_string_lossy()],
            false,
        )
        .await?;
    }
    let mut command = Command::new(&rabbit);
    command
        .env("RABBITMQ_NODENAME", node)
        .env("RABBITMQ_CONFIG_FILE", &config)
        .env("RABBITMQ_CONF_ENV_FILE", &env_file)
        .env("RABBITMQ_NODE_PORT", port.to_string())
        .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_MNESIA_BASE", data.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", data.join("log"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
        .env("RABBITMQ_PID_FILE", data.join("rabbitmq.pid"));
    if let Some(dist) = dist_port {
        command.env("RABBITMQ_DIST_PORT", dist.to_string());
    }
    let service =
        Service::spawn("rabbitmq", command, sink).map_err(|source| InfraError::Spawn {
            service: "RabbitMQ",
            source,
        })?;
    if !wait_reachable("127.0.0.1", port, Duration::from_secs(90)).await {
        return Err(InfraError::DidNotStart {
            service: "RabbitMQ",
            binary: rabbit.display().to_string(),
            address: format!("127.0.0.1:{port}"),
            data: data.display().to_string(),
        });
    }
    Ok(service)
}
