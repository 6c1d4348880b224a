//! One error type for every v2 call, telling retryable failures from final ones.

use std::fmt;

use super::sign::SignatureError;
use super::xml::{EncodeError, XmlError};
use crate::http::TransportError;
use crate::retry::Retryable;

/// WeChat's business error codes (`err_code` when `result_code=FAIL`), as far as Minipay
/// acts on them; anything else is kept verbatim in [`ErrCode::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrCode {
    /// `SYSTEMERROR`: WeChat-side error; retry with identical parameters.
    SystemError,
    /// `BIZERR_NEED_RETRY`: refused under concurrency; retry.
    BizErrNeedRetry,
    /// `FREQUENCY_LIMITED`: rate limited; retry, slower.
    FrequencyLimited,
    /// `ORDERPAID`: the order is already paid.
    OrderPaid,
    /// `ORDERCLOSED`: the order is closed.
    OrderClosed,
    /// `OUT_TRADE_NO_USED`: the number was used with other parameters.
    OutTradeNoUsed,
    /// `INVALID_REQUEST`: invalid parameters, or re-entry with different values.
    InvalidRequest,
    /// `ORDERNOTEXIST`: WeChat has no such order.
    OrderNotExist,
    /// `NOTENOUGH`: balance insufficient.
    NotEnough,
    /// `SIGNERROR`: our signature was refused.
    SignError,
    /// `PARAM_ERROR`: a parameter is invalid.
    ParamError,
    /// `LACK_PARAMS`: a required parameter is missing.
    LackParams,
    /// `APPID_MCHID_NOT_MATCH`: appid and mch_id do not belong together.
    AppIdMchIdNotMatch,
    /// `NOAUTH`: the merchant lacks the permission.
    NoAuth,
    /// `XML_FORMAT_ERROR`: our XML was refused.
    XmlFormatError,
    /// Any other code, verbatim.
    Other(String),
}

impl ErrCode {
    /// Reads a wire code.
    pub fn parse(code: &str) -> Self {
        match code {
            "SYSTEMERROR" => ErrCode::SystemError,
            "BIZERR_NEED_RETRY" => ErrCode::BizErrNeedRetry,
            "FREQUENCY_LIMITED" => ErrCode::FrequencyLimited,
            "ORDERPAID" => ErrCode::OrderPaid,
            "ORDERCLOSED" => ErrCode::OrderClosed,
            "OUT_TRADE_NO_USED" => ErrCode::OutTradeNoUsed,
            "INVALID_REQUEST" => ErrCode::InvalidRequest,
            "ORDERNOTEXIST" => ErrCode::OrderNotExist,
            "NOTENOUGH" => ErrCode::NotEnough,
            "SIGNERROR" => ErrCode::SignError,
            "PARAM_ERROR" => ErrCode::ParamError,
            "LACK_PARAMS" => ErrCode::LackParams,
            "APPID_MCHID_NOT_MATCH" => ErrCode::AppIdMchIdNotMatch,
            "NOAUTH" => ErrCode::NoAuth,
            "XML_FORMAT_ERROR" => ErrCode::XmlFormatError,
            other => ErrCode::Other(other.to_owned()),
        }
    }

    /// The wire code.
    pub fn as_str(&self) -> &str {
        match self {
            ErrCode::SystemError => "SYSTEMERROR",
            ErrCode::BizErrNeedRetry => "BIZERR_NEED_RETRY",
            ErrCode::FrequencyLimited => "FREQUENCY_LIMITED",
            ErrCode::OrderPaid => "ORDERPAID",
            ErrCode::OrderClosed => "ORDERCLOSED",
            ErrCode::OutTradeNoUsed => "OUT_TRADE_NO_USED",
            ErrCode::InvalidRequest => "INVALID_REQUEST",
            ErrCode::OrderNotExist => "ORDERNOTEXIST",
            ErrCode::NotEnough => "NOTENOUGH",
            ErrCode::SignError => "SIGNERROR",
            ErrCode::ParamError => "PARAM_ERROR",
            ErrCode::LackParams => "LACK_PARAMS",
            ErrCode::AppIdMchIdNotMatch => "APPID_MCHID_NOT_MATCH",
            ErrCode::NoAuth => "NOAUTH",
            ErrCode::XmlFormatError => "XML_FORMAT_ERROR",
            ErrCode::Other(s) => s,
        }
    }

    /// Whether WeChat's guidance (§2.13 of the reference) is to retry with the same
    /// parameters. `INVALID_REQ_TOO_MUCH` wants at least a minute's pause, far beyond one
    /// call, so it counts as final here.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ErrCode::SystemError | ErrCode::BizErrNeedRetry | ErrCode::FrequencyLimited
        )
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a v2 call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Our own request was invalid before anything was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request could not be written as XML.
    #[error("request could not be encoded: {0}")]
    Encode(#[from] EncodeError),
    /// Network failure, timeout, or an oversized answer: the outcome is unknown.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// A non-200 HTTP status: the outcome is unknown.
    #[error("WeChat Pay answered HTTP {status}")]
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// The answer is not a well-formed WeChat document.
    #[error("malformed response: {0}")]
    Decode(#[from] XmlError),
    /// `return_code=FAIL`: WeChat refused the request at the protocol level (signature,
    /// format, missing field). Almost always our bug; not retried.
    #[error("WeChat Pay refused the request: {return_msg}")]
    Protocol {
        /// WeChat's `return_msg` (free text; not to be parsed).
        return_msg: String,
    },
    /// The answer's signature is missing or wrong: nothing in it is trusted.
    #[error("response signature: {0}")]
    Signature(#[from] SignatureError),
    /// The answer is signed but belongs to another appid or mch_id.
    #[error("response is for another merchant (field `{field}`)")]
    MerchantMismatch {
        /// `appid` or `mch_id`.
        field: &'static str,
    },
    /// `result_code=FAIL`: a business outcome.
    #[error("WeChat Pay business error {code}: {description}")]
    Business {
        /// `err_code`.
        code: ErrCode,
        /// `err_code_des`.
        description: String,
    },
    /// A bill that cannot be read or does not add up: refused whole.
    #[error("bill: {0}")]
    Bill(#[from] super::bill::BillError),
    /// A signed answer lacks a field or holds an invalid one.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
}

impl Error {
    /// Whether trying again with the same parameters may succeed: network failures,
    /// timeouts, HTTP 5xx and 429, and the retryable business codes. Everything else is
    /// final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(TransportError::Timeout(_) | TransportError::Network(_)) => true,
            Error::HttpStatus { status } => *status >= 500 || *status == 429,
            Error::Business { code, .. } => code.is_retryable(),
            _ => false,
        }
    }

    /// The business code, when this is a business error.
    pub fn err_code(&self) -> Option<&ErrCode> {
        match self {
            Error::Business { code, .. } => Some(code),
            _ => None,
        }
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

    #[test]
    fn retryable_codes_follow_the_reference() {
        for code in ["SYSTEMERROR", "BIZERR_NEED_RETRY", "FREQUENCY_LIMITED"] {
            assert!(ErrCode::parse(code).is_retryable(), "{code}");
        }
        for code in [
            "ORDERPAID",
            "ORDERCLOSED",
            "OUT_TRADE_NO_USED",
            "SIGNERROR",
            "INVALID_REQUEST",
            "NOTENOUGH",
            "ORDERNOTEXIST",
            "LACK_PARAMS",
            "NOAUTH",
            "SOMETHING_NEW",
        ] {
            let parsed = ErrCode::parse(code);
            assert!(!parsed.is_retryable(), "{code}");
            assert_eq!(parsed.as_str(), code);
        }
    }

    #[test]
    fn error_classes() {
        assert!(Error::HttpStatus { status: 502 }.is_retryable());
        assert!(!Error::HttpStatus { status: 404 }.is_retryable());
        assert!(
            !Error::Protocol {
                return_msg: "签名错误".into()
            }
            .is_retryable()
        );
        assert!(!Error::Signature(SignatureError::Mismatch).is_retryable());
        let busy = Error::Business {
            code: ErrCode::SystemError,
            description: String::new(),
        };
        assert!(busy.is_retryable());
        assert_eq!(busy.err_code(), Some(&ErrCode::SystemError));
    }
}
