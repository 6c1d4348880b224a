//! Child processes: started with piped output (each line prefixed with the service's name,
//! printed or kept), stopped with SIGTERM, killed only if they do not stop in time.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where a child's output goes.
#[derive(Debug, Clone)]
pub enum LogSink {
    /// Printed to stdout, each line prefixed with `[name] `.
    Print,
    /// Kept (the last lines), for error messages.
    Keep(Arc<Mutex<VecDeque<String>>>),
    /// Kept while the gate is closed, printed once it is open (`minipay up` shows its
    /// progress first, then streams the logs).
    Gated(
        Arc<std::sync::atomic::AtomicBool>,
        Arc<Mutex<VecDeque<String>>>,
    ),
}

/// Lines kept per sink.
const KEPT_LINES: usize = 400;

impl LogSink {
    /// A sink that keeps the last lines.
    pub fn keep() -> Self {
        LogSink::Keep(Arc::default())
    }

    /// A gated sink, closed.
    pub fn gated() -> Self {
        LogSink::Gated(Arc::default(), Arc::default())
    }

    /// Opens a gated sink: from now on lines are printed.
    pub fn open(&self) {
        if let LogSink::Gated(open, _) = self {
            open.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn line(&self, name: &str, line: &str) {
        match self {
            LogSink::Print => println!("[{name}] {line}"),
            LogSink::Gated(open, _) if open.load(std::sync::atomic::Ordering::SeqCst) => {
                println!("[{name}] {line}")
            }
            LogSink::Gated(_, lines) | LogSink::Keep(lines) => {
                let mut lines = lines
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if lines.len() == KEPT_LINES {
                    lines.pop_front();
                }
                lines.push_back(format!("[{name}] {line}"));
            }
        }
    }

    /// The kept lines that mention `name` (empty for a printing sink).
    pub fn tail(&self, name: &str, n: usize) -> Vec<String> {
        match self {
            LogSink::Print => Vec::new(),
            LogSink::Gated(_, lines) | LogSink::Keep(lines) => {
                let lines = lines
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let prefix = format!("[{name}] ");
                let mine: Vec<String> = lines
                    .iter()
                    .filter(|l| l.starts_with(&prefix))
                    .cloned()
                    .collect();
                mine[mine.len().saturating_sub(n)..].to_vec()
            }
        }
    }
}

/// A running child, in its own process group (so a terminal's Ctrl-C reaches `minipay`
/// alone, which then stops the children in order), with every process of that group
/// signalled together (a `runuser` wrapper and its `postgres`, a script and its `beam.smp`).
#[derive(Debug)]
pub struct Service {
    /// Its name in logs.
    pub name: String,
    child: Child,
    stop_signal: &'static str,
}

fn signal_group(pgid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Service {
    /// Starts `command`, streaming its output to `sink`; SIGTERM stops it.
    pub fn spawn(name: &str, command: Command, sink: &LogSink) -> std::io::Result<Service> {
        Self::spawn_with_signal(name, command, sink, "TERM")
    }

    /// Starts `command`; `stop_signal` (e.g. `INT` for PostgreSQL's fast shutdown) stops it.
    pub fn spawn_with_signal(
        name: &str,
        mut command: Command,
        sink: &LogSink,
        stop_signal: &'static str,
    ) -> std::io::Result<Service> {
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .process_group(0);
        let mut child = command.spawn()?;
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let (sink, name) = (sink.clone(), name.to_owned());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    sink.line(&name, &line);
                }
            });
        }
        Ok(Service {
            name: name.to_owned(),
            child,
            stop_signal,
        })
    }

    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL to the whole group, as a crash or an OOM kill would end it; returns once it
    /// has exited.
    pub async fn kill(mut self) {
        if let Some(pgid) = self.child.id() {
            signal_group(pgid, "KILL");
        }
        let _ = self.child.wait().await;
    }

    /// Its stop signal to the whole group, then up to `grace` to exit, then SIGKILL to the
    /// group. Returns whether it stopped by itself.
    pub async fn stop(mut self, grace: Duration) -> bool {
        let Some(pgid) = self.child.id() else {
            return true;
        };
        if self.exited().is_some() {
            signal_group(pgid, "KILL");
            return true;
        }
        signal_group(pgid, self.stop_signal);
        let clean = tokio::time::timeout(grace, self.child.wait()).await.is_ok();
        // Whatever is left in the group (a server's helpers) goes too.
        signal_group(pgid, "KILL");
        clean
    }
}

impl Drop for Service {
    /// A service dropped without `stop` (an error path, an interrupted start): nothing of
    /// its group is left behind.
    fn drop(&mut self) {
        if let Some(pgid) = self.child.id() {
            signal_group(pgid, "KILL");
        }
    }
}
