//! WeChat Pay API v3 (JSON over HTTPS, RSA signatures): so far the cryptography every v3 call
//! and notification rests on, checked against the reference's vectors — the merchant's
//! request signature and `Authorization` header, the Mini Program's RSA `paySign`, and
//! AEAD_AES_256_GCM resource decryption (and encryption, for the simulator).
//!
//! RSA and AES-GCM come from `ring`, which the TLS stack already builds on: maintained,
//! constant-time, no open timing advisory (the `rsa` crate has one, RUSTSEC-2023-0071).

mod aead;
mod sign;

pub use self::aead::{
    AEAD_ALGORITHM, ApiV3Key, DecryptError, InvalidApiV3Key, decrypt_resource, encrypt_resource,
};
pub use self::sign::{
    AUTH_SCHEME, InvalidMerchantKey, MerchantKey, pay_sign_message, request_message,
};

/// The reference's throw-away merchant private key (§8.2, PKCS#8 PEM): the simulator's
/// default v3 merchant and the vectors' key. For tests and local runs only.
pub const EXAMPLE_MERCHANT_KEY_PEM: &str = include_str!("example_merchant_key.pem");
