//! What the fuzz targets check, one function per target: each takes any bytes and panics
//! (through an `assert`) only on a real bug. The cargo-fuzz targets in `fuzz/` are one call
//! each to these functions, and `tests/corpus.rs` calls the same functions on every file of
//! `fuzz/corpus/<target>/`, so the corpus replays in a plain `cargo test` on stable.
//!
//! - [`xml_decode`]: WeChat's XML codec (`wechat_pay::v2::xml`).
//! - [`payment_notification`]: the payment notification verifier.
//! - [`refund_notification`]: the refund notification parser and its `req_info` decryption.
//! - [`order_json_bodies`]: every JSON body order-svc's HTTP APIs accept, through the same
//!   parsing and checks as their handlers (`order_svc::http::bodies`).
//! - [`session_token`]: order-svc's session tokens.
//! - [`bill`]: WeChat's daily bill and the answers to its download.
//! - [`v3_resource`]: v3's resource decryption, signature verification, public keys and
//!   certificates, `Authorization` headers, certificate lists and notification envelopes.

#![deny(missing_docs)]

mod bill;
mod bodies;
mod notifications;
mod session;
mod xml;

pub use self::bill::{bill, v3_resource};
pub use self::bodies::order_json_bodies;
pub use self::notifications::{payment_notification, refund_notification};
pub use self::session::session_token;
pub use self::xml::xml_decode;
