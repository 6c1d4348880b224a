//! Opening a connection on the tokio runtime.

use std::time::Duration;

use lapin::{Channel, Connection, ConnectionProperties};

/// How long connecting may take before it counts as a failure.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Connects to `url` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`) on the tokio runtime,
/// naming the connection so the broker's tools show who it is.
pub async fn connect(url: &str, name: &str) -> Result<Connection, lapin::Error> {
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio)
        .with_connection_name(name.to_owned().into());
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties)).await {
        Ok(result) => result,
        Err(_) => Err(lapin::Error::IOError(std::sync::Arc::new(
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connecting to RabbitMQ timed out",
            ),
        ))),
    }
}

/// How long a stop waits for lapin's I/O thread to finish after the close handshake.
const IO_LOOP_EXIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest wait for the broker's close-ok of a channel or a connection.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Closes `channel`, then `connection`, each waiting for the broker's close-ok, then waits
/// for the connection's I/O thread to end. Dropping an open channel instead makes lapin
/// close it in the background, racing the connection's close (an ERROR "invalid channel
/// state: Closing"); returning before the I/O thread ends lets the exiting runtime pull the
/// socket from under it (ERRORs "A Tokio 1.x context was found, but it is being shutdown",
/// and a WARN "promise has vanished").
pub(crate) async fn close_in_order(
    channel: Option<Channel>,
    connection: Option<Connection>,
    reason: &str,
) {
    // Each handshake is bounded: on a half-open connection the broker's close-ok never comes,
    // and a publisher closes while holding its state lock.
    if let Some(channel) = channel
        && channel.status().connected()
    {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, channel.close(200, reason)).await;
    }
    let Some(connection) = connection else {
        return;
    };
    if connection.status().connected() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close(200, reason)).await;
    }
    // `run` blocks until the I/O thread has ended, which it does once the connection closed.
    let io_loop = tokio::task::spawn_blocking(move || connection.run());
    let _ = tokio::time::timeout(IO_LOOP_EXIT_TIMEOUT, io_loop).await;
}
