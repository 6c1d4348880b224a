//! A TCP proxy between the services and one server, which on command black-holes the
//! connections (holds them silently: nothing forwarded, nothing refused, nothing closed),
//! slows them down, or resets them all. tc netem and toxiproxy are not available on every
//! machine; this is the same idea in ~150 lines over tokio.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards as fast as it comes.
    Pass,
    /// Black hole: connections are accepted but nothing is forwarded either way, and nothing
    /// is closed, until the mode changes (then what waited is forwarded, as after a healed
    /// network partition).
    Hold,
    /// Every chunk from the server is delivered this much later (a slow server).
    Delay(Duration),
}

/// A running proxy; dropped, it stops listening and closes every connection.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    mode: watch::Sender<Mode>,
    /// Bumped by [`Proxy::reset`]: connections of an older generation are closed.
    generation: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (mode, mode_rx) = watch::channel(Mode::Pass);
        let (generation, generation_rx) = watch::channel(0u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                let (mode, generation) = (mode_rx.clone(), generation_rx.clone());
                tokio::spawn(connection(client, upstream, mode, generation));
            }
        });
        Ok(Proxy {
            port,
            mode,
            generation,
            accepted,
            task,
        })
    }

    /// The port the services connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Switches the mode; every connection follows at once.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Closes every open connection (new ones are forwarded as the mode says).
    pub fn reset(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

/// Waits while the mode is [`Mode::Hold`]; the delay to apply afterwards.
async fn passable(mode: &mut watch::Receiver<Mode>) -> Option<Duration> {
    match *mode.wait_for(|m| *m != Mode::Hold).await.ok()? {
        Mode::Delay(d) => Some(d),
        _ => Some(Duration::ZERO),
    }
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    mut generation: watch::Receiver<u64>,
) {
    let born = *generation.borrow_and_update();
    let work = async {
        // A black hole answers no connection either: the server is not even dialled.
        passable(&mut mode).await?;
        let server = TcpStream::connect(upstream).await.ok()?;
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::select! {
            () = pump(client_read, server_write, mode.clone(), false) => {}
            () = pump(server_read, client_write, mode.clone(), true) => {}
        }
        Some(())
    };
    tokio::select! {
        _ = work => {}
        _ = generation.wait_for(|g| *g != born) => {}
    }
}

/// Copies one direction, chunk by chunk, obeying the mode before each chunk; `delayed` is
/// the server-to-client direction, which [`Mode::Delay`] slows.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    delayed: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Held: not even read, so the sender's buffers fill as on a dead network.
        if passable(&mut mode).await.is_none() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let Some(delay) = passable(&mut mode).await else {
            return;
        };
        if delayed && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
        s.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).await.unwrap();
        got
    }

    #[tokio::test]
    async fn forwards_holds_then_delivers_what_waited_and_resets() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        assert_eq!(round_trip(&mut s, b"one").await, b"one");

        proxy.set(Mode::Hold);
        s.write_all(b"two").await.unwrap();
        // A connection opened during the hold waits too; once healed, what waited arrives.
        let mut late = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        late.write_all(b"three").await.unwrap();
        proxy.set(Mode::Pass);
        let mut got = [0u8; 3];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"two");
        let mut got = [0u8; 5];
        late.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"three");

        proxy.set(Mode::Delay(Duration::from_millis(20)));
        let started = std::time::Instant::now();
        assert_eq!(round_trip(&mut s, b"four").await, b"four");
        assert!(started.elapsed() >= Duration::from_millis(20));
        proxy.set(Mode::Pass);

        proxy.reset();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
        assert_eq!(proxy.accepted(), 2);
    }
}
