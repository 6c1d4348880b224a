//! Verifying what WeChat signs (§3.2): responses and notifications carry `Wechatpay-Timestamp`,
//! `-Nonce`, `-Signature`, `-Serial` and `-Signature-Type`; the signature is RSA-SHA256 over
//! `timestamp\nnonce\nbody\n` with the WeChat key the serial names. Nothing is read before it
//! verifies; every failure (a probe with a `WECHATPAY/SIGNTEST/` signature included) is a
//! refusal, never a skip.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

use super::sign::{AUTH_SCHEME, pem_block};

/// How far WeChat's timestamp may be from ours, either way (the official SDKs' 5 minutes).
pub const FRESHNESS_SECS: i64 = 300;

/// A WeChat RSA public key (from a `PUBLIC KEY` PEM: the WeChat Pay public key, or a
/// platform certificate's key).
#[derive(Clone)]
pub struct WeChatPublicKey {
    /// PKCS#1 `RSAPublicKey` DER, as ring verifies with.
    rsa: Vec<u8>,
}

impl std::fmt::Debug for WeChatPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeChatPublicKey")
    }
}

/// Why a public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RSA public key in a PEM \"PUBLIC KEY\" (SubjectPublicKeyInfo) block")]
pub struct InvalidPublicKey;

/// One DER element at the start of `der`: (tag, contents, rest).
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    der_tlv(der).map(|(tag, contents, _, rest)| (tag, contents, rest))
}

/// A DER element read from the front of a buffer: (tag, contents, the whole element, rest).
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// One DER element at the start of `der`.
fn der_tlv(der: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = der.len() - rest.len();
    Some((tag, &rest[..len], &der[..header + len], &rest[len..]))
}

/// A certificate serial as a number written in upper-case hex without leading zeros, which is
/// how serials are compared (SDKs drop leading zeros); `None` when `serial` is not hex.
pub fn serial_number(serial: &str) -> Option<String> {
    if serial.is_empty() || serial.len() > 128 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let trimmed = serial.trim_start_matches('0').to_ascii_uppercase();
    Some(if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed
    })
}

/// The DER tag of the rsaEncryption algorithm identifier's OID (1.2.840.113549.1.1.1).
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

impl WeChatPublicKey {
    /// The key of a `PUBLIC KEY` PEM (SubjectPublicKeyInfo, RSA).
    pub fn from_pem(pem: &str) -> Result<WeChatPublicKey, InvalidPublicKey> {
        let der = pem_block(pem, "PUBLIC KEY").ok_or(InvalidPublicKey)?;
        Self::from_spki_der(&der)
    }

    /// The key of a SubjectPublicKeyInfo DER (RSA).
    pub fn from_spki_der(der: &[u8]) -> Result<WeChatPublicKey, InvalidPublicKey> {
        let (0x30, spki, _) = der_element(der).ok_or(InvalidPublicKey)? else {
            return Err(InvalidPublicKey);
        };
        let (0x30, algorithm, rest) = der_element(spki).ok_or(InvalidPublicKey)? else {
            return Err(InvalidPublicKey);
        };
        let (0x06, oid, _) = der_element(algorithm).ok_or(InvalidPublicKey)? else {
            return Err(InvalidPublicKey);
        };
        if oid != RSA_ENCRYPTION {
            return Err(InvalidPublicKey);
        }
        let (0x03, bits, _) = der_element(rest).ok_or(InvalidPublicKey)? else {
            return Err(InvalidPublicKey);
        };
        // A BIT STRING: its first byte counts the unused bits, 0 here.
        match bits.split_first() {
            Some((0, rsa)) if der_element(rsa).is_some_and(|(tag, ..)| tag == 0x30) => {
                Ok(WeChatPublicKey { rsa: rsa.to_vec() })
            }
            _ => Err(InvalidPublicKey),
        }
    }

    /// The key and the serial number (upper-case hex, see [`serial_number`]) of an X.509
    /// certificate in a `CERTIFICATE` PEM: a platform certificate. Only the structure up to
    /// the key is read; the certificate's own signature is not checked (its authenticity
    /// comes from the APIv3 key it was encrypted with, §3.5).
    pub fn from_certificate_pem(pem: &str) -> Result<(WeChatPublicKey, String), InvalidPublicKey> {
        let der = pem_block(pem, "CERTIFICATE").ok_or(InvalidPublicKey)?;
        let (0x30, certificate, _) = der_element(&der).ok_or(InvalidPublicKey)? else {
            return Err(InvalidPublicKey);
        };
        let (0x30, tbs, _) = der_element(certificate).ok_or(InvalidPublicKey)? else {
            return Err(InvalidPublicKey);
        };
        let mut rest = tbs;
        // The optional explicit version, [0].
        if let Some((0xa0, _, after)) = der_element(rest) {
            rest = after;
        }
        let (0x02, serial, after) = der_element(rest).ok_or(InvalidPublicKey)? else {
            return Err(InvalidPublicKey);
        };
        rest = after;
        // signature algorithm, issuer, validity, subject: four SEQUENCEs.
        for _ in 0..4 {
            let (0x30, _, after) = der_element(rest).ok_or(InvalidPublicKey)? else {
                return Err(InvalidPublicKey);
            };
            rest = after;
        }
        let (0x30, _, spki, _) = der_tlv(rest).ok_or(InvalidPublicKey)? else {
            return Err(InvalidPublicKey);
        };
        let serial = serial_number(&hex::encode_upper(serial)).ok_or(InvalidPublicKey)?;
        Ok((Self::from_spki_der(spki)?, serial))
    }

    /// Whether `signature` (base64) is this key's RSA-SHA256 signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(signature) = STANDARD.decode(signature) else {
            return false;
        };
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.rsa)
            .verify(message, &signature)
            .is_ok()
    }
}

/// The `Wechatpay-*` headers of a response or notification, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedHeaders<'a> {
    /// `Wechatpay-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `Wechatpay-Nonce`.
    pub nonce: Option<&'a str>,
    /// `Wechatpay-Signature`.
    pub signature: Option<&'a str>,
    /// `Wechatpay-Serial`.
    pub serial: Option<&'a str>,
    /// `Wechatpay-Signature-Type`.
    pub signature_type: Option<&'a str>,
}

/// Why a response or notification is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A `Wechatpay-*` header is missing.
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// Another signature type than WECHATPAY2-SHA256-RSA2048.
    #[error("signature type {0:?} is not WECHATPAY2-SHA256-RSA2048")]
    SignatureType(String),
    /// The timestamp is not Unix seconds.
    #[error("Wechatpay-Timestamp is not Unix seconds")]
    Timestamp,
    /// The timestamp is five minutes or more away from now (a replay, or a clock off).
    #[error("Wechatpay-Timestamp is {0} s away from now (at most 300 accepted)")]
    Stale(i64),
    /// No key of this serial (certificate serial or public key id).
    #[error("no WeChat key with serial {0:?}")]
    UnknownSerial(String),
    /// The signature does not verify (a `WECHATPAY/SIGNTEST/` probe included).
    #[error("the signature does not verify")]
    BadSignature,
}

/// The message WeChat signs: `timestamp\nnonce\nbody\n`.
pub fn response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// Verifies `body` signed as `headers` say, at Unix time `now`, with the key `key_of` finds
/// for the serial (`None`: unknown). Steps in the reference's order: headers and type,
/// freshness, key, signature over the raw bytes.
pub fn verify_signed(
    headers: &SignedHeaders<'_>,
    body: &[u8],
    now: i64,
    key_of: impl Fn(&str) -> Option<WeChatPublicKey>,
) -> Result<(), VerifyError> {
    let timestamp = headers
        .timestamp
        .ok_or(VerifyError::MissingHeader("Wechatpay-Timestamp"))?;
    let nonce = headers
        .nonce
        .ok_or(VerifyError::MissingHeader("Wechatpay-Nonce"))?;
    let signature = headers
        .signature
        .ok_or(VerifyError::MissingHeader("Wechatpay-Signature"))?;
    let serial = headers
        .serial
        .ok_or(VerifyError::MissingHeader("Wechatpay-Serial"))?;
    // ⚠ The reference lists the type header among WeChat's; the official SDKs treat an
    // absent one as the only type there is. We accept absent, refuse any other value.
    if let Some(kind) = headers.signature_type
        && kind != AUTH_SCHEME
    {
        return Err(VerifyError::SignatureType(kind.chars().take(64).collect()));
    }
    if timestamp.is_empty()
        || timestamp.len() > 12
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(VerifyError::Timestamp);
    }
    let sent: i64 = timestamp.parse().map_err(|_| VerifyError::Timestamp)?;
    let skew = now.saturating_sub(sent);
    if skew.saturating_abs() >= FRESHNESS_SECS {
        return Err(VerifyError::Stale(skew));
    }
    let key = key_of(serial)
        .ok_or_else(|| VerifyError::UnknownSerial(serial.chars().take(64).collect()))?;
    if key.verifies(&response_message(timestamp, nonce, body), signature) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::{EXAMPLE_WECHAT_KEY_PEM, EXAMPLE_WECHAT_PUBLIC_KEY_PEM, MerchantKey};

    const KEY_ID: &str = "PUB_KEY_ID_0110000100000000000000000001";
    const NOW: i64 = 1_764_650_000;
    const BODY: &[u8] = br#"{"code_url":"weixin://wxpay/bizpayurl?pr=p4lpSuK"}"#;

    fn wechat() -> MerchantKey {
        MerchantKey::from_pem(EXAMPLE_WECHAT_KEY_PEM, KEY_ID).unwrap()
    }

    fn key_of(serial: &str) -> Option<WeChatPublicKey> {
        (serial == KEY_ID)
            .then(|| WeChatPublicKey::from_pem(EXAMPLE_WECHAT_PUBLIC_KEY_PEM).unwrap())
    }

    fn signed(body: &[u8], at: i64) -> (String, String) {
        let ts = at.to_string();
        let signature = wechat().sign(&response_message(&ts, "nonce-1", body));
        (ts, signature)
    }

    fn headers<'a>(ts: &'a str, signature: &'a str) -> SignedHeaders<'a> {
        SignedHeaders {
            timestamp: Some(ts),
            nonce: Some("nonce-1"),
            signature: Some(signature),
            serial: Some(KEY_ID),
            signature_type: Some(AUTH_SCHEME),
        }
    }

    #[test]
    fn a_fresh_answer_signed_by_the_named_key_verifies() {
        let (ts, signature) = signed(BODY, NOW);
        assert_eq!(
            verify_signed(&headers(&ts, &signature), BODY, NOW + 299, key_of),
            Ok(())
        );
        let untyped = SignedHeaders {
            signature_type: None,
            ..headers(&ts, &signature)
        };
        assert_eq!(verify_signed(&untyped, BODY, NOW, key_of), Ok(()));
        // An empty body (a 204) is signed as an empty line.
        let (ts, signature) = signed(b"", NOW);
        assert_eq!(
            verify_signed(&headers(&ts, &signature), b"", NOW, key_of),
            Ok(())
        );
    }

    #[test]
    fn every_refusal_is_a_refusal() {
        let (ts, signature) = signed(BODY, NOW);
        let h = headers(&ts, &signature);
        let tampered = br#"{"code_url":"weixin://wxpay/bizpayurl?pr=p4lpSuL"}"#;
        assert_eq!(
            verify_signed(&h, tampered, NOW, key_of),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify_signed(&h, BODY, NOW + 300, key_of),
            Err(VerifyError::Stale(300))
        );
        assert_eq!(
            verify_signed(&h, BODY, NOW - 300, key_of),
            Err(VerifyError::Stale(-300))
        );
        let probe = format!("WECHATPAY/SIGNTEST/{signature}");
        assert_eq!(
            verify_signed(&headers(&ts, &probe), BODY, NOW, key_of),
            Err(VerifyError::BadSignature)
        );
        let other = SignedHeaders {
            serial: Some("PUB_KEY_ID_0110000100000000000000000002"),
            ..h
        };
        assert!(matches!(
            verify_signed(&other, BODY, NOW, key_of),
            Err(VerifyError::UnknownSerial(_))
        ));
        let typed = SignedHeaders {
            signature_type: Some("WECHATPAY2-SHA256-RSA1024"),
            ..h
        };
        assert!(matches!(
            verify_signed(&typed, BODY, NOW, key_of),
            Err(VerifyError::SignatureType(_))
        ));
        let no_nonce = SignedHeaders { nonce: None, ..h };
        assert_eq!(
            verify_signed(&no_nonce, BODY, NOW, key_of),
            Err(VerifyError::MissingHeader("Wechatpay-Nonce"))
        );
        let text_time = headers("1764650000.5", &signature);
        assert_eq!(
            verify_signed(&text_time, BODY, NOW, key_of),
            Err(VerifyError::Timestamp)
        );
        // The merchant's own key never verifies WeChat's answers.
        let merchant =
            |_: &str| WeChatPublicKey::from_pem(crate::v3::EXAMPLE_MERCHANT_PUBLIC_KEY_PEM).ok();
        assert_eq!(
            verify_signed(&h, BODY, NOW, merchant),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn public_keys_are_read_from_spki_and_nothing_else() {
        assert!(WeChatPublicKey::from_pem(EXAMPLE_WECHAT_PUBLIC_KEY_PEM).is_ok());
        assert!(WeChatPublicKey::from_pem(EXAMPLE_WECHAT_KEY_PEM).is_err());
        assert!(WeChatPublicKey::from_spki_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(WeChatPublicKey::from_spki_der(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(WeChatPublicKey::from_spki_der(&[]).is_err());
    }
}
