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

/// A running child.
#[derive(Debug)]
pub struct Service {
    /// Its name in logs.
    pub name: String,
    child: Child,
}

impl Service {
    /// Starts `command`, streaming its output to `sink`.
    pub fn spawn(name: &str, mut command: Command, sink: &LogSink) -> std::io::Result<Service> {
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true);
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

    /// SIGTERM, then up to `grace` to exit, then SIGKILL. Returns whether it stopped by itself.
    pub async fn stop(mut self, grace: Duration) -> bool {
        if self.exited().is_some() {
            return true;
        }
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(_) => true,
            Err(_) => {
                let _ = self.child.kill().await;
                false
            }
        }
    }
}
