//! What the v2 client and the login client share about HTTP: building the client, reading a
//! bounded body, and turning reqwest's errors into ours without the URL (the login URL
//! carries the AppSecret in its query string, so reqwest's own messages must never be shown).

use std::time::Duration;

/// A transport failure, stripped of the URL.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No answer within the per-call timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting, sending or receiving failed.
    #[error("network error: {0}")]
    Network(#[source] reqwest::Error),
    /// The body was larger than allowed.
    #[error("response body larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl TransportError {
    pub(crate) fn from_reqwest(e: reqwest::Error, timeout: Duration) -> Self {
        if e.is_timeout() {
            TransportError::Timeout(timeout)
        } else {
            TransportError::Network(e.without_url())
        }
    }
}

/// A reqwest client for WeChat: rustls, no redirects (WeChat never redirects; following one
/// could leak a signed request elsewhere), a connect timeout.
pub(crate) fn build_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    build_client_with(timeout, None, &[])
}

/// [`build_client`], presenting `identity` (a client certificate) to servers that ask, and
/// trusting `roots` besides the system's (a simulator's test CA).
pub(crate) fn build_client_with(
    timeout: Duration,
    identity: Option<&reqwest::Identity>,
    roots: &[reqwest::Certificate],
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .user_agent(concat!("minipay-wechat-pay/", env!("CARGO_PKG_VERSION")));
    if let Some(identity) = identity {
        builder = builder.identity(identity.clone());
    }
    for root in roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder.build()
}

/// Reads the whole body, refusing more than `limit` bytes without buffering them.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(TransportError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| TransportError::from_reqwest(e, timeout))?
    {
        if body.len() + chunk.len() > limit {
            return Err(TransportError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
