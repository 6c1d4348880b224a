//! WeChat Pay API v3 (JSON over HTTPS, RSA signatures), checked against the reference's
//! vectors: the merchant's request signature and `Authorization` header, the Mini Program's
//! RSA `paySign`, AEAD_AES_256_GCM resources, the verification of what WeChat signs with a
//! key chosen by its serial ([`Verifier`]: platform certificates and a WeChat Pay public key
//! at the same time), typed calls ([`Client`]) and notifications ([`Notification`]).
//!
//! RSA and AES-GCM come from `ring`, which the TLS stack already builds on: maintained,
//! constant-time, no open timing advisory (the `rsa` crate has one, RUSTSEC-2023-0071).

mod aead;
mod api;
mod client;
mod error;
mod keys;
mod notify;
mod sign;
mod verify;

pub use self::aead::{
    AEAD_ALGORITHM, ApiV3Key, DecryptError, InvalidApiV3Key, Resource, decrypt_resource,
    encrypt_resource,
};
pub use self::api::{
    CloseRequest, ErrorBody, JsapiPrepayRequest, Payer, PrepayAmount, PrepayResponse, Refund,
    RefundAmount, RefundRequest, RefundRequestAmount, RefundResource, RefundStatus, Transaction,
    TransactionAmount,
};
pub use self::client::{
    Client, ClientConfig, Merchant, PAY_SIGN_TYPE, request_payment, signed_headers, unix_now,
};
pub use self::error::{Error, code_is};
pub use self::keys::{
    CertificatesError, MIN_REFRESH_INTERVAL, PUBLIC_KEY_ID_PREFIX, PlatformCertificate, Verifier,
    decode_certificates,
};
pub use self::notify::{Notification, NotifyError, REFUND_EVENTS, TRANSACTION_SUCCESS};
pub use self::sign::{
    AUTH_SCHEME, Authorization, InvalidMerchantKey, MerchantKey, parse_authorization,
    pay_sign_message, request_message,
};
pub use self::verify::{
    FRESHNESS_SECS, InvalidPublicKey, SignedHeaders, VerifyError, WeChatPublicKey,
    response_message, serial_number, verify_signed,
};

/// The reference's throw-away merchant private key (§8.2, PKCS#8 PEM): the simulator's
/// default v3 merchant and the vectors' key. For tests and local runs only.
pub const EXAMPLE_MERCHANT_KEY_PEM: &str = include_str!("example_merchant_key.pem");

/// The serial of the example merchant's API certificate.
pub const EXAMPLE_MERCHANT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";

/// The public key of [`EXAMPLE_MERCHANT_KEY_PEM`] (the simulator checks requests with it).
pub const EXAMPLE_MERCHANT_PUBLIC_KEY_PEM: &str = include_str!("example_merchant_public_key.pem");

/// The reference's throw-away key of the simulator's "WeChat" side (§8.3): it signs the
/// simulator's v3 answers and notifications. For tests and local runs only.
pub const EXAMPLE_WECHAT_KEY_PEM: &str = include_str!("example_wechat_key.pem");

/// The public key of [`EXAMPLE_WECHAT_KEY_PEM`]: the simulator's WeChat Pay public key.
pub const EXAMPLE_WECHAT_PUBLIC_KEY_PEM: &str = include_str!("example_wechat_public_key.pem");

/// The id of the simulator's WeChat Pay public key.
pub const EXAMPLE_WECHAT_PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0110000100000000000000000001";

/// A self-issued certificate of [`EXAMPLE_WECHAT_KEY_PEM`]: the simulator's platform
/// certificate (made with `openssl req -new -x509 -set_serial`, valid ten years from
/// 2026-12-02). Its serial starts with a zero, which SDKs drop.
pub const EXAMPLE_PLATFORM_CERT_PEM: &str = include_str!("example_wechat_cert.pem");

/// The serial of [`EXAMPLE_PLATFORM_CERT_PEM`], as WeChat lists it.
pub const EXAMPLE_PLATFORM_CERT_SERIAL: &str = "0B2F3E1D5A6C7B8E9F0A1B2C3D4E5F6071829304";

/// The simulator's default APIv3 key. For tests and local runs only.
pub const EXAMPLE_API_V3_KEY: &str = "WeChatPayV3TestKey0123456789abcd";
