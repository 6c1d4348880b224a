//! Shutdown as a parameter: a future that completes on SIGTERM or Ctrl-C, and a cloneable
//! token that components hand to their loops.

use tokio::sync::watch;

/// Completes when the process receives SIGTERM or Ctrl-C.
pub async fn signal() {
    // A Ctrl-C handler that cannot be installed must not read as a Ctrl-C: wait for SIGTERM.
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// A shutdown that can be triggered once and awaited by many.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }
}

impl Shutdown {
    /// A shutdown not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// A shutdown triggered when `signal` completes (e.g. [`signal()`], or a test's own).
    pub fn after(signal: impl Future<Output = ()> + Send + 'static) -> Self {
        let stop = Shutdown::new();
        let trigger = stop.clone();
        tokio::spawn(async move {
            signal.await;
            trigger.trigger();
        });
        stop
    }

    /// Triggers it.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether it was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once triggered (at once if it already was).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|&stopped| stopped).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_completes_after_trigger() {
        let s = Shutdown::new();
        let waiter = tokio::spawn(s.wait());
        assert!(!s.is_triggered());
        s.trigger();
        waiter.await.unwrap();
        s.wait().await; // already triggered: immediate
    }
}
