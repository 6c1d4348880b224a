//! A slow client over raw TCP, as a slowloris plays it: it sends part of a request and then
//! nothing, and the test reads what the server did about it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What the server did with a stalled request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It answered with this status.
    Answered(u16),
    /// It closed the connection without an answer.
    Dropped,
}

/// Connects to `addr` and sends `head` (the request line and headers, as given) and then
/// `body_part`, and nothing more.
pub async fn stalled_request(addr: SocketAddr, head: &str, body_part: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body_part).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// A POST of `path` announcing a `length`-byte body, its headers complete.
pub fn post_head(path: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// Waits at most `within` for the server to answer or close `stream`; the verdict and when it
/// came. Panics (failing the test) if the server still holds the connection at the deadline.
pub async fn verdict(stream: &mut TcpStream, within: Duration) -> (Verdict, Duration) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = within.saturating_sub(started.elapsed());
        let read = tokio::time::timeout(left, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the server still holds the stalled connection after {within:?} (sent back: {:?})",
                    String::from_utf8_lossy(&seen)
                )
            });
        match read {
            Ok(0) | Err(_) => return (status_of(&seen), started.elapsed()),
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(2).any(|w| w == b"\r\n") {
                    return (status_of(&seen), started.elapsed());
                }
            }
        }
    }
}

/// The status of an HTTP/1.1 status line at the start of `seen`, or `Dropped` if there is none.
fn status_of(seen: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(seen);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .map_or(Verdict::Dropped, Verdict::Answered)
}
