//! The one mapping from what can go wrong in pay-gateway-svc to gRPC statuses.
//!
//! Every status carries a `google.rpc.ErrorInfo` detail whose `reason` is a stable code
//! (`ORDER_PAID`, `OUT_TRADE_NO_USED`, `WECHAT_UNAVAILABLE`, ...) that callers act on.
//! Internal failures are logged here, once, with their cause chain; callers never see them.

use std::collections::HashMap;

use proto::paygateway::v1::reason;
use service_runtime::telemetry::error_chain;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use wechat_pay::TransportError;
use wechat_pay::login::LoginError;
use wechat_pay::v2::{self, ErrCode};

/// Why a call to the gateway failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GatewayError {
    /// The caller's request is invalid; the message says which field and why.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A merchant API call failed (after its retries).
    #[error("WeChat Pay {endpoint} failed")]
    WeChat {
        endpoint: &'static str,
        #[source]
        source: v2::Error,
    },
    /// The login call failed (after its retries).
    #[error("WeChat login failed")]
    Login(#[from] LoginError),
    /// A refund was asked of a gateway without the merchant certificate.
    #[error("refunds are disabled: no merchant certificate")]
    RefundsDisabled,
}

pub(crate) fn status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details =
        ErrorDetails::with_error_info(reason, reason::DOMAIN, HashMap::<String, String>::new());
    Status::with_error_details(code, message, details)
}

impl From<GatewayError> for Status {
    fn from(error: GatewayError) -> Self {
        let status = match &error {
            GatewayError::InvalidArgument(message) => status(
                Code::InvalidArgument,
                reason::INVALID_ARGUMENT,
                message.clone(),
            ),
            GatewayError::WeChat { source, .. } => wechat_status(source),
            GatewayError::Login(source) => login_status(source),
            GatewayError::RefundsDisabled => status(
                Code::FailedPrecondition,
                reason::REFUNDS_DISABLED,
                "refunds are disabled: pay-gateway-svc has no merchant API certificate (WECHAT_CERT_FILE, WECHAT_KEY_FILE)",
            ),
        };
        // What the caller can act on (its own mistake, WeChat busy, an order already paid)
        // is in the status; what only we can fix is logged, here and nowhere else.
        if status.code() == Code::Internal {
            tracing::error!(reason = %status.message(), error = %error_chain(&error), "WeChat call failed");
        }
        status
    }
}

fn wechat_status(error: &v2::Error) -> Status {
    use v2::Error as E;
    match error {
        E::Business { code, description } => {
            let (grpc, message) = match code {
                ErrCode::OrderPaid => (Code::FailedPrecondition, "the order is already paid"),
                ErrCode::OrderClosed => (Code::FailedPrecondition, "the order is closed at WeChat"),
                ErrCode::NotEnough => (Code::FailedPrecondition, "insufficient balance"),
                ErrCode::OutTradeNoUsed => (
                    Code::AlreadyExists,
                    "out_trade_no already used with other parameters",
                ),
                ErrCode::OrderNotExist => (Code::NotFound, "WeChat has no such order"),
                ErrCode::InvalidRequest | ErrCode::ParamError | ErrCode::LackParams => {
                    (Code::InvalidArgument, "WeChat refused a parameter")
                }
                ErrCode::SystemError | ErrCode::BizErrNeedRetry | ErrCode::FrequencyLimited => {
                    (Code::Unavailable, "WeChat Pay is busy; retries exhausted")
                }
                ErrCode::Other(c) if c == "REFUNDNOTEXIST" => {
                    (Code::NotFound, "WeChat has no such refund")
                }
                // Refund refusals about the order or the money (more than is left, an order
                // past the refund window, a closed account): the caller's to handle.
                ErrCode::Other(c)
                    if matches!(
                        c.as_str(),
                        "ERROR"
                            | "TRADE_OVERDUE"
                            | "USER_ACCOUNT_ABNORMAL"
                            | "INVALID_TRANSACTIONID"
                    ) =>
                {
                    (Code::FailedPrecondition, "WeChat Pay refused the refund")
                }
                _ => (Code::Internal, "WeChat Pay refused the call"),
            };
            // The three outcomes callers act on have reasons of their own; every other
            // business error carries WeChat's err_code.
            let reason = match code {
                ErrCode::OrderPaid => reason::ORDER_PAID,
                ErrCode::OrderClosed => reason::ORDER_CLOSED,
                ErrCode::OrderNotExist => reason::ORDER_NOT_EXIST,
                ErrCode::Other(c) if c == "REFUNDNOTEXIST" => reason::REFUND_NOT_EXIST,
                _ => code.as_str(),
            };
            let message = if description.is_empty() {
                message.to_owned()
            } else {
                format!("{message}: {description}")
            };
            status(grpc, reason, message)
        }
        E::Transport(TransportError::Timeout(_)) => status(
            Code::Unavailable,
            reason::WECHAT_TIMEOUT,
            "WeChat Pay did not answer in time",
        ),
        E::Transport(_) => status(
            Code::Unavailable,
            reason::WECHAT_UNAVAILABLE,
            "WeChat Pay is unreachable",
        ),
        E::HttpStatus { status: s } if *s >= 500 => status(
            Code::Unavailable,
            reason::WECHAT_UNAVAILABLE,
            "WeChat Pay answered a server error",
        ),
        E::Bill(problem) => status(
            Code::FailedPrecondition,
            reason::BILL_INVALID,
            format!("WeChat's bill is refused: {problem}"),
        ),
        E::InvalidRequest(message) => status(
            Code::InvalidArgument,
            reason::INVALID_ARGUMENT,
            message.clone(),
        ),
        _ => status(
            Code::Internal,
            reason::WECHAT_PROTOCOL_ERROR,
            "WeChat Pay's answer could not be trusted",
        ),
    }
}

fn login_status(error: &LoginError) -> Status {
    match error {
        LoginError::InvalidCode => status(
            Code::InvalidArgument,
            reason::INVALID_CODE,
            "the login code is invalid or expired",
        ),
        LoginError::CodeUsed => status(
            Code::InvalidArgument,
            reason::CODE_USED,
            "the login code was already used",
        ),
        LoginError::RateLimited => status(
            Code::ResourceExhausted,
            reason::RATE_LIMITED,
            "too many logins; try again in a minute",
        ),
        LoginError::HighRiskUser => status(
            Code::PermissionDenied,
            reason::HIGH_RISK_USER,
            "WeChat blocks this user's login",
        ),
        LoginError::Busy | LoginError::Transport(_) => status(
            Code::Unavailable,
            reason::WECHAT_UNAVAILABLE,
            "WeChat login is unavailable",
        ),
        LoginError::HttpStatus { status: s } if *s >= 500 => status(
            Code::Unavailable,
            reason::WECHAT_UNAVAILABLE,
            "WeChat login is unavailable",
        ),
        _ => status(Code::Internal, reason::LOGIN_FAILED, "WeChat login failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &Status) -> String {
        s.get_details_error_info()
            .map(|i| i.reason)
            .unwrap_or_default()
    }

    #[test]
    fn final_wechat_errors_map_to_precise_codes() {
        let business = |code: &str| GatewayError::WeChat {
            endpoint: "unifiedorder",
            source: v2::Error::Business {
                code: ErrCode::parse(code),
                description: String::new(),
            },
        };
        let cases = [
            ("ORDERPAID", Code::FailedPrecondition, "ORDER_PAID"),
            ("ORDERCLOSED", Code::FailedPrecondition, "ORDER_CLOSED"),
            (
                "OUT_TRADE_NO_USED",
                Code::AlreadyExists,
                "OUT_TRADE_NO_USED",
            ),
            ("ORDERNOTEXIST", Code::NotFound, "ORDER_NOT_EXIST"),
            ("SYSTEMERROR", Code::Unavailable, "SYSTEMERROR"),
            ("INVALID_REQUEST", Code::InvalidArgument, "INVALID_REQUEST"),
            ("SIGNERROR", Code::Internal, "SIGNERROR"),
        ];
        for (code, grpc, expected_reason) in cases {
            let s = Status::from(business(code));
            assert_eq!(s.code(), grpc, "{code}");
            assert_eq!(reason(&s), expected_reason, "{code}");
        }
        let s = Status::from(GatewayError::Login(LoginError::CodeUsed));
        assert_eq!(
            (s.code(), reason(&s).as_str()),
            (Code::InvalidArgument, reason::CODE_USED)
        );
    }
}
