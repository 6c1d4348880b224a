//! Minipay's contract: the gRPC services of order-svc and pay-gateway-svc, and the event
//! bodies carried over RabbitMQ. Generated from `proto/minipay/<area>/v1/*.proto`.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

/// Events (RabbitMQ message bodies).
pub mod events {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/minipay.events.v1.rs"));
    }
}

/// order-svc's gRPC API.
pub mod order {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/minipay.order.v1.rs"));
    }
}

/// pay-gateway-svc's gRPC API.
pub mod paygateway {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/minipay.paygateway.v1.rs"));

        /// The `reason` of the `google.rpc.ErrorInfo` every PayGateway error status carries,
        /// spelled once for both sides of the boundary: pay-gateway-svc sets them, callers
        /// act on them. A WeChat business error without a reason of its own here carries
        /// WeChat's `err_code` as its reason (e.g. `SYSTEMERROR`, `OUT_TRADE_NO_USED`).
        pub mod reason {
            /// The `domain` of every `ErrorInfo`.
            pub const DOMAIN: &str = "paygateway.minipay";
            /// The request itself is invalid.
            pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
            /// WeChat says the order is already paid.
            pub const ORDER_PAID: &str = "ORDER_PAID";
            /// WeChat says the order is closed.
            pub const ORDER_CLOSED: &str = "ORDER_CLOSED";
            /// WeChat has no such order.
            pub const ORDER_NOT_EXIST: &str = "ORDER_NOT_EXIST";
            /// WeChat did not answer in time.
            pub const WECHAT_TIMEOUT: &str = "WECHAT_TIMEOUT";
            /// WeChat could not be reached or answered a server error.
            pub const WECHAT_UNAVAILABLE: &str = "WECHAT_UNAVAILABLE";
            /// WeChat's answer could not be trusted (signature, format).
            pub const WECHAT_PROTOCOL_ERROR: &str = "WECHAT_PROTOCOL_ERROR";
            /// The login code is invalid or expired.
            pub const INVALID_CODE: &str = "INVALID_CODE";
            /// The login code was already used.
            pub const CODE_USED: &str = "CODE_USED";
            /// Too many logins.
            pub const RATE_LIMITED: &str = "RATE_LIMITED";
            /// WeChat blocks this user's login.
            pub const HIGH_RISK_USER: &str = "HIGH_RISK_USER";
            /// The login failed for another reason.
            pub const LOGIN_FAILED: &str = "LOGIN_FAILED";
            /// pay-gateway-svc has no merchant certificate: it cannot refund.
            pub const REFUNDS_DISABLED: &str = "REFUNDS_DISABLED";
            /// WeChat has no such refund.
            pub const REFUND_NOT_EXIST: &str = "REFUND_NOT_EXIST";
            /// WeChat's bill cannot be read or does not add up to its own summary.
            pub const BILL_INVALID: &str = "BILL_INVALID";
        }
    }
}

/// The encoded `FileDescriptorSet` of every Minipay proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/minipay_descriptor.bin"));

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::FILE_DESCRIPTOR_SET;
    use super::events::v1::PaymentSucceeded;

    #[test]
    fn events_round_trip_and_descriptor_set_is_present() {
        let e = PaymentSucceeded {
            out_trade_no: "MP1".into(),
            amount_fen: 1999,
            ..Default::default()
        };
        let bytes = e.encode_to_vec();
        assert_eq!(PaymentSucceeded::decode(bytes.as_slice()).ok(), Some(e));
        assert!(FILE_DESCRIPTOR_SET.len() > 100);
    }
}
