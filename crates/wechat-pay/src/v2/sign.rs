//! The v2 signature: MD5 or HMAC-SHA256 over the sorted parameters and the API key.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::Params;

/// Which digest signs a v2 message (`sign_type`; absent means MD5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignType {
    /// `MD5`, WeChat's default.
    #[default]
    Md5,
    /// `HMAC-SHA256`.
    HmacSha256,
}

impl SignType {
    /// The wire name: `MD5` or `HMAC-SHA256`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }

    /// The algorithm a received message declares in `sign_type`: absent or empty means MD5,
    /// an unknown value is refused.
    pub fn of_message(params: &Params) -> Result<Self, SignatureError> {
        match params.get_non_empty("sign_type") {
            None => Ok(SignType::Md5),
            Some(v) => v.parse(),
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignType {
    type Err = SignatureError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "MD5" => Ok(SignType::Md5),
            "HMAC-SHA256" => Ok(SignType::HmacSha256),
            _ => Err(SignatureError::UnknownSignType),
        }
    }
}

/// A merchant's v2 API key (32 characters). Its `Debug` output is redacted, and it never
/// appears in any error or log line of this crate.
#[derive(Clone)]
pub struct ApiKey(SecretString);

/// Why a string is not an API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an API key must be exactly 32 printable ASCII characters")]
pub struct InvalidApiKey;

impl ApiKey {
    /// Validates a v2 API key: exactly 32 printable ASCII characters.
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidApiKey> {
        let key = key.into();
        if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidApiKey);
        }
        Ok(ApiKey(SecretString::from(key)))
    }

    /// The key's text. Use only to sign, encrypt or decrypt.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

/// Why a received message's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `sign` field (or an empty one) on a message that must be signed.
    #[error("the message carries no signature")]
    Missing,
    /// `sign_type` names an algorithm we do not know.
    #[error("unknown sign_type")]
    UnknownSignType,
    /// The signature does not match the message and key.
    #[error("signature mismatch")]
    Mismatch,
}

/// The string that gets digested, without the key suffix: `k1=v1&k2=v2...` over every field
/// except `sign`, empty values dropped, names in byte order.
///
/// Never log its keyed form: it ends with the API key.
fn string_a(params: &Params) -> String {
    let mut out = String::new();
    for (name, value) in params.iter() {
        if name == "sign" || value.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Computes the signature of `params` (which may or may not already hold a `sign`; it is
/// ignored) as uppercase hex.
///
/// ```
/// use wechat_pay::v2::{ApiKey, Params, SignType, sign};
/// let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap();
/// let params: Params = [
///     ("appid", "wxd930ea5d5a258f4f"),
///     ("mch_id", "10000100"),
///     ("device_info", "1000"),
///     ("body", "test"),
///     ("nonce_str", "ibuaiVcKdpRxkhJA"),
/// ]
/// .into_iter()
/// .collect();
/// assert_eq!(sign(&params, &key, SignType::Md5), "9A0A8659F005D6984697E2CA0A9CF3B7");
/// ```
pub fn sign(params: &Params, key: &ApiKey, sign_type: SignType) -> String {
    let mut message = string_a(params);
    message.push_str("&key=");
    message.push_str(key.expose());
    let digest: Vec<u8> = match sign_type {
        SignType::Md5 => Md5::digest(message.as_bytes()).to_vec(),
        SignType::HmacSha256 => {
            // HMAC accepts keys of any length, so this cannot fail; an empty MAC would only
            // ever fail verification, never pass it.
            match Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()) {
                Ok(mut mac) => {
                    mac.update(message.as_bytes());
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
    };
    hex::encode_upper(digest)
}

/// Signs `params` in place: sets `sign` (and nothing else; add `sign_type` first when it is
/// not MD5, since it is signed like any other field).
pub fn sign_params(params: &mut Params, key: &ApiKey, sign_type: SignType) {
    let signature = sign(params, key, sign_type);
    params.insert("sign", signature);
}

/// Verifies the `sign` of a received message with the given algorithm, in constant time.
pub fn verify(params: &Params, key: &ApiKey, sign_type: SignType) -> Result<(), SignatureError> {
    let received = params
        .get_non_empty("sign")
        .ok_or(SignatureError::Missing)?;
    let expected = sign(params, key, sign_type);
    let received = received.to_ascii_uppercase();
    // Lengths (32 for MD5, 64 for HMAC-SHA256) are public; only the bytes are secret.
    if received.len() == expected.len()
        && bool::from(received.as_bytes().ct_eq(expected.as_bytes()))
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiKey {
        ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap()
    }

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().copied().collect()
    }

    /// V2-SIGN-1, the official example of the signing chapter.
    #[test]
    fn vector_v2_sign_1() {
        let params = p(&[
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]);
        assert_eq!(
            string_a(&params),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"
        );
        assert_eq!(
            sign(&params, &key(), SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        assert_eq!(
            sign(&params, &key(), SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    fn v2_sign_2(sign_type: &str) -> Params {
        p(&[
            ("appid", "wxd678efh567hg6787"),
            ("attach", ""),
            ("body", "腾讯充值中心-QQ会员充值"),
            ("mch_id", "1230000109"),
            ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
            ("notify_url", "https://example.com/wxpay/notify"),
            ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
            ("out_trade_no", "20150806125346"),
            ("sign_type", sign_type),
            ("spbill_create_ip", "123.12.12.123"),
            ("total_fee", "88"),
            ("trade_type", "JSAPI"),
        ])
    }

    /// V2-SIGN-2: unified order with a UTF-8 body; the empty `attach` is dropped.
    #[test]
    fn vector_v2_sign_2() {
        let params = v2_sign_2("MD5");
        assert_eq!(
            sign(&params, &key(), SignType::Md5),
            "F86DB4CD9AE0CEF6455E1698E507665D"
        );
        let params = v2_sign_2("HMAC-SHA256");
        assert_eq!(
            sign(&params, &key(), SignType::HmacSha256),
            "6B02AC74E4728AC5570BE7A74CE88E239AF54016350D164FBE741018C332BC6C"
        );
    }

    #[test]
    fn verify_accepts_lowercase_and_refuses_missing_or_wrong() {
        let mut params = v2_sign_2("MD5");
        assert_eq!(
            verify(&params, &key(), SignType::Md5),
            Err(SignatureError::Missing)
        );
        params.insert("sign", "f86db4cd9ae0cef6455e1698e507665d");
        assert_eq!(verify(&params, &key(), SignType::Md5), Ok(()));
        assert_eq!(
            verify(&params, &key(), SignType::HmacSha256),
            Err(SignatureError::Mismatch)
        );
        params.insert("total_fee", "1");
        assert_eq!(
            verify(&params, &key(), SignType::Md5),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn api_key_is_redacted_and_validated() {
        assert_eq!(format!("{:?}", key()), "ApiKey([REDACTED])");
        assert!(ApiKey::new("short").is_err());
        assert!(ApiKey::new("192006250b4c09247ec02edce69f6a2 ").is_err());
    }

    #[test]
    fn sign_type_of_message() {
        assert_eq!(SignType::of_message(&p(&[])), Ok(SignType::Md5));
        assert_eq!(
            SignType::of_message(&p(&[("sign_type", "")])),
            Ok(SignType::Md5)
        );
        assert_eq!(
            SignType::of_message(&p(&[("sign_type", "HMAC-SHA256")])),
            Ok(SignType::HmacSha256)
        );
        assert_eq!(
            SignType::of_message(&p(&[("sign_type", "SHA1")])),
            Err(SignatureError::UnknownSignType)
        );
    }
}
