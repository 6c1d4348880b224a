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
