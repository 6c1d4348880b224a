//! WeChat Pay API v3 (JSON over HTTPS, RSA signatures): so far the cryptography every v3 call
//! and notification rests on, checked against the reference's vectors — the merchant's
//! request signature and `Authorization` header, the Mini Program's RSA `paySign`, and
//! AEAD_AES_256_GCM resource decryption (and encryption, for the simulator), and the
//! verification of what WeChat signs with a key chosen by its serial.
//!
//! RSA and AES-GCM come from `ring`, which the TLS stack already builds on: maintained,
//! constant-time, no open timing advisory (the `rsa` crate has one, RUSTSEC-2023-0071).

mod aead;
mod sign;
mod verify;

pub use self::aead::{
    AEAD_ALGORITHM, ApiV3Key, DecryptError, InvalidApiV3Key, decrypt_resource, encrypt_resource,
};
pub use self::sign::{
    AUTH_SCHEME, InvalidMerchantKey, MerchantKey, pay_sign_message, request_message,
};
pub use self::verify::{
    FRESHNESS_SECS, InvalidPublicKey, SignedHeaders, VerifyError, WeChatPublicKey,
    response_message, verify_signed,
};

/// The reference's throw-away merchant private key (§8.2, PKCS#8 PEM): the simulator's
/// default v3 merchant and the vectors' key. For tests and local runs only.
pub const EXAMPLE_MERCHANT_KEY_PEM: &str = include_str!("example_merchant_key.pem");

/// The public key of [`EXAMPLE_MERCHANT_KEY_PEM`] (the simulator checks requests with it).
pub const EXAMPLE_MERCHANT_PUBLIC_KEY_PEM: &str = include_str!("example_merchant_public_key.pem");

/// The reference's throw-away key of the simulator's "WeChat" side (§8.3): it signs the
/// simulator's v3 answers and notifications. For tests and local runs only.
pub const EXAMPLE_WECHAT_KEY_PEM: &str = include_str!("example_wechat_key.pem");

/// The public key of [`EXAMPLE_WECHAT_KEY_PEM`]: the simulator's WeChat Pay public key.
pub const EXAMPLE_WECHAT_PUBLIC_KEY_PEM: &str = include_str!("example_wechat_public_key.pem");
