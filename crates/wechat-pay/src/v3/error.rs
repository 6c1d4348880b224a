//! One error type for every v3 call, with the same retryable/final split as v2: the HTTP
//! status class decides first, then the `code` (§3.6).

use super::verify::VerifyError;
use crate::http::TransportError;
use crate::retry::Retryable;

/// Why a v3 call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Our own request was invalid before anything was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Network failure, timeout, or an oversized answer: the outcome is unknown.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// A non-2xx answer with WeChat's `code` and `message` (empty when the body was not
    /// WeChat's error document).
    #[error("WeChat Pay answered HTTP {status} {code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// `code`, verbatim.
        code: String,
        /// `message`.
        message: String,
    },
    /// The answer's signature, timestamp or serial is not trusted: nothing in it is read.
    #[error("response signature: {0}")]
    Signature(#[from] VerifyError),
    /// A verified answer for another appid or mchid.
    #[error("response is for another merchant (field `{field}`)")]
    MerchantMismatch {
        /// `appid` or `mchid`.
        field: &'static str,
    },
    /// A verified answer that lacks a field or holds an invalid one.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
}

/// Whether WeChat's `code` is `name`, spelled either way (`SYSTEM_ERROR` or `SYSTEMERROR`, any
/// case; ⚠ §3.6: doc versions differ, so underscores and case are ignored).
pub fn code_is(code: &str, name: &str) -> bool {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_uppercase())
            .collect::<String>()
    };
    squash(code) == squash(name)
}

impl Error {
    /// Whether trying again with the same parameters may succeed: network failures and
    /// timeouts, HTTP 5xx and 429. Everything else is final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(TransportError::Timeout(_) | TransportError::Network(_)) => true,
            Error::Api { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// Whether this is a non-2xx answer with `code` (spelled either way).
    pub fn has_code(&self, name: &str) -> bool {
        matches!(self, Error::Api { code, .. } if code_is(code, name))
    }
}

impl Retryable for Error {
    fn is_retryable(&self) -> bool {
        Error::is_retryable(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> Error {
        Error::Api {
            status,
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn the_status_class_decides_and_codes_match_either_spelling() {
        assert!(api(500, "SYSTEM_ERROR").is_retryable());
        assert!(api(502, "").is_retryable());
        assert!(api(429, "FREQUENCY_LIMITED").is_retryable());
        for (status, code) in [
            (400, "PARAM_ERROR"),
            (400, "ORDER_CLOSED"),
            (401, "SIGN_ERROR"),
            (403, "OUT_TRADE_NO_USED"),
            (404, "ORDER_NOT_EXIST"),
        ] {
            assert!(!api(status, code).is_retryable(), "{status} {code}");
        }
        assert!(api(404, "ORDERNOTEXIST").has_code("ORDER_NOT_EXIST"));
        assert!(api(403, "noauth").has_code("NO_AUTH"));
        assert!(!api(403, "NO_AUTH").has_code("ORDER_NOT_EXIST"));
        assert!(!Error::Signature(VerifyError::BadSignature).is_retryable());
    }
}
