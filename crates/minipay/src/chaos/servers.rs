//! The fault matrix's own PostgreSQL, Redis and RabbitMQ: private instances on free ports
//! with their data in a folder of the run's, so that killing them never touches anything else
//! on the machine; each behind a [`Proxy`] the services connect through.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::proxy::{Mode, Proxy};
use crate::infra::{self, InfraError};
use crate::process::{LogSink, Service};
use crate::stack::free_ports;

/// One of the three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL.
    Postgres,
    /// Redis.
    Redis,
    /// RabbitMQ.
    RabbitMq,
}

/// The three private servers and their proxies.
#[derive(Debug)]
pub struct Servers {
    state: PathBuf,
    sink: LogSink,
    postgres: Server,
    redis: Server,
    rabbitmq: Server,
    /// RabbitMQ's Erlang distribution port.
    dist_port: u16,
    node: String,
}

#[derive(Debug)]
struct Server {
    port: u16,
    proxy: Proxy,
    service: Option<Service>,
}

/// Why a fault could not be made or undone.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Starting a server failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
    /// A server's own file or port did not behave.
    #[error("{0}")]
    Io(String),
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ServerError {
    move |e| ServerError::Io(format!("{what}: {e}"))
}

async fn proxy_to(port: u16) -> Result<Proxy, ServerError> {
    Proxy::start(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(io("cannot start a proxy"))
}

/// The process id in the first line of `file`.
fn pid_in(file: &Path) -> Result<u32, ServerError> {
    let text = std::fs::read_to_string(file).map_err(io(file.display()))?;
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| ServerError::Io(format!("{} holds no process id", file.display())))
}

fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

async fn wait_closed(port: u16, within: Duration) -> Result<(), ServerError> {
    let deadline = tokio::time::Instant::now() + within;
    while infra::reachable("127.0.0.1", port).await {
        if tokio::time::Instant::now() > deadline {
            return Err(ServerError::Io(format!(
                "port {port} still answers {within:?} after the server was stopped"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

impl Drop for Servers {
    /// Dropped without `stop` (an interrupted run): RabbitMQ's VM runs in a session of its
    /// own, out of reach of its script's process group, so it is killed by its node name (the
    /// other two go with their [`Service`]s).
    fn drop(&mut self) {
        if let Some(pid) = self.rabbit_vm() {
            signal(pid, "KILL");
        }
    }
}

impl Servers {
    /// Starts the three with their data under `state` (made fresh).
    pub async fn start(state: &Path, sink: &LogSink) -> Result<Servers, ServerError> {
        let _ = std::fs::remove_dir_all(state);
        std::fs::create_dir_all(state).map_err(io(state.display()))?;
        let ports = free_ports(4).map_err(io("cannot pick free ports"))?;
        let node = format!("minipay-chaos-{}@localhost", std::process::id());
        let postgres = infra::start_postgres(state, ports[0], sink).await?;
        let redis = infra::start_redis(state, ports[1], sink).await?;
        let rabbitmq = infra::start_rabbitmq(state, ports[2], sink, &node, Some(ports[3])).await?;
        Ok(Servers {
            state: state.to_owned(),
            sink: sink.clone(),
            postgres: Server {
                port: ports[0],
                proxy: proxy_to(ports[0]).await?,
                service: Some(postgres),
            },
            redis: Server {
                port: ports[1],
                proxy: proxy_to(ports[1]).await?,
                service: Some(redis),
            },
            rabbitmq: Server {
                port: ports[2],
                proxy: proxy_to(ports[2]).await?,
                service: Some(rabbitmq),
            },
            dist_port: ports[3],
            node,
        })
    }

    fn server(&self, kind: Kind) -> &Server {
        match kind {
            Kind::Postgres => &self.postgres,
            Kind::Redis => &self.redis,
            Kind::RabbitMq => &self.rabbitmq,
        }
    }

    /// The PostgreSQL admin URL, straight to the server (the checks' own view).
    pub fn admin_database_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.postgres.port
        )
    }

    /// Database `name`: through the proxy (`proxied`) or straight.
    pub fn database_url(&self, name: &str, proxied: bool) -> String {
        let port = self.port(Kind::Postgres, proxied);
        format!("postgres://postgres@127.0.0.1:{port}/{name}")
    }

    /// Redis, through the proxy or straight.
    pub fn redis_url(&self, proxied: bool) -> String {
        format!("redis://127.0.0.1:{}", self.port(Kind::Redis, proxied))
    }

    /// RabbitMQ, through the proxy or straight.
    pub fn amqp_url(&self, proxied: bool) -> String {
        let port = self.port(Kind::RabbitMq, proxied);
        format!("amqp://guest:guest@127.0.0.1:{port}/%2f")
    }

    fn port(&self, kind: Kind, proxied: bool) -> u16 {
        let server = self.server(kind);
        if proxied {
            server.proxy.port()
        } else {
            server.port
        }
    }

    /// Sets what `kind`'s proxy does with traffic.
    pub fn network(&self, kind: Kind, mode: Mode) {
        self.server(kind).proxy.set(mode);
    }

    /// Closes every connection through `kind`'s proxy.
    pub fn reset_connections(&self, kind: Kind) {
        self.server(kind).proxy.reset();
    }

    /// RabbitMQ's Erlang VM killed with SIGKILL: no shutdown, no flush.
    pub async fn kill_rabbitmq(&mut self) -> Result<(), ServerError> {
        let pid = self.rabbit_vm().ok_or_else(|| {
            ServerError::Io(format!("no Erlang VM of RabbitMQ node {} runs", self.node))
        })?;
        signal(pid, "KILL");
        wait_closed(self.rabbitmq.port, Duration::from_secs(30)).await?;
        if let Some(script) = self.rabbitmq.service.take() {
            script.kill().await;
        }
        Ok(())
    }

    /// The process id of our node's Erlang VM: the `beam.smp` whose environment names it
    /// (RabbitMQ 3.10 puts the node name in neither its command line nor a pid file).
    fn rabbit_vm(&self) -> Option<u32> {
        let wanted = format!("RABBITMQ_NODENAME={}", self.node);
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
                if comm.trim() != "beam.smp" {
                    return None;
                }
                let environ = std::fs::read(entry.path().join("environ")).ok()?;
                environ
                    .split(|&b| b == 0)
                    .any(|var| var == wanted.as_bytes())
                    .then_some(pid)
            })
    }

    /// RabbitMQ started again on its data (after [`Servers::kill_rabbitmq`]).
    pub async fn start_rabbitmq(&mut self) -> Result<(), ServerError> {
        let service = infra::start_rabbitmq(
            &self.state,
            self.rabbitmq.port,
            &self.sink,
            &self.node,
            Some(self.dist_port),
        )
        .await?;
        self.rabbitmq.service = Some(service);
        Ok(())
    }

    /// PostgreSQL stopped as `pg_ctl stop -m immediate` does (SIGQUIT to the postmaster: no
    /// checkpoint, crash recovery at the next start).
    pub async fn stop_postgres_immediate(&mut self) -> Result<(), ServerError> {
        let pid = pid_in(&self.state.join("postgres").join("postmaster.pid"))?;
        signal(pid, "QUIT");
        wait_closed(self.postgres.port, Duration::from_secs(30)).await?;
        if let Some(service) = self.postgres.service.take() {
            service.kill().await;
        }
        Ok(())
    }

    /// PostgreSQL started again on its data.
    pub async fn start_postgres(&mut self) -> Result<(), ServerError> {
        let service = infra::start_postgres(&self.state, self.postgres.port, &self.sink).await?;
        self.postgres.service = Some(service);
        Ok(())
    }

    /// Redis stopped (it keeps nothing on disk: it comes back empty).
    pub async fn stop_redis(&mut self) -> Result<(), ServerError> {
        if let Some(service) = self.redis.service.take() {
            service.kill().await;
        }
        wait_closed(self.redis.port, Duration::from_secs(30)).await
    }

    /// Redis started again, empty.
    pub async fn start_redis(&mut self) -> Result<(), ServerError> {
        let service = infra::start_redis(&self.state, self.redis.port, &self.sink).await?;
        self.redis.service = Some(service);
        Ok(())
    }

    /// Redis refuses to run writes for `pause` (`CLIENT PAUSE … WRITE`: they wait, reads go
    /// on).
    pub async fn pause_redis_writes(&self, pause: Duration) -> Result<(), ServerError> {
        let ms = pause.as_millis().to_string();
        let command = format!(
            "*4\r\n$6\r\nCLIENT\r\n$5\r\nPAUSE\r\n${}\r\n{ms}\r\n$5\r\nWRITE\r\n",
            ms.len()
        );
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", self.redis.port))
            .await
            .map_err(io("cannot reach Redis"))?;
        conn.write_all(command.as_bytes())
            .await
            .map_err(io("cannot send CLIENT PAUSE"))?;
        let mut answer = [0u8; 5];
        conn.read_exact(&mut answer)
            .await
            .map_err(io("no answer to CLIENT PAUSE"))?;
        if &answer != b"+OK\r\n" {
            return Err(ServerError::Io(format!(
                "CLIENT PAUSE answered {:?}",
                String::from_utf8_lossy(&answer)
            )));
        }
        Ok(())
    }

    /// Stops all three (RabbitMQ's node by name, then its VM if it lingers) and removes their
    /// data.
    pub async fn stop(mut self) {
        let env = self.state.join("rabbitmq").join("rabbitmq-env.conf");
        let node = self.node.clone();
        let _ = tokio::task::spawn_blocking(move || infra::stop_rabbit_node(&env, &node)).await;
        if let Some(pid) = self.rabbit_vm() {
            signal(pid, "KILL");
        }
        for server in [&mut self.rabbitmq, &mut self.redis, &mut self.postgres] {
            if let Some(service) = server.service.take() {
                service.stop(Duration::from_secs(20)).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}
