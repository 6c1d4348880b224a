//! The merchant's side of v3 signatures (§3.1, §3.7): the signed messages, the RSA-SHA256
//! (PKCS#1 v1.5) signature with the merchant's private key, the `Authorization` header.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

/// The `Authorization` scheme (and the only `Wechatpay-Signature-Type` accepted).
pub const AUTH_SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// Why a merchant private key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMerchantKey {
    /// Not a PEM `PRIVATE KEY` block with valid base64.
    #[error("the merchant private key is not a PKCS#8 PEM \"PRIVATE KEY\" block")]
    NotPem,
    /// The DER is not an RSA key ring accepts (2048 to 8192 bits).
    #[error("the merchant private key is not a usable RSA key: {0}")]
    Rejected(String),
}

/// The merchant's API private key and its certificate's serial number. `Debug` shows the
/// serial only.
pub struct MerchantKey {
    serial: String,
    key: RsaKeyPair,
}

impl std::fmt::Debug for MerchantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantKey")
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// The DER inside the PEM block labelled `label`.
pub(crate) fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop].split_whitespace().collect();
    STANDARD.decode(body).ok()
}

impl MerchantKey {
    /// The key from its PKCS#8 PEM (`apiclient_key.pem`), with the serial of the merchant
    /// certificate it belongs to (hex, as the merchant platform shows it).
    pub fn from_pem(pem: &str, serial: &str) -> Result<MerchantKey, InvalidMerchantKey> {
        let der = pem_block(pem, "PRIVATE KEY").ok_or(InvalidMerchantKey::NotPem)?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| InvalidMerchantKey::Rejected(e.to_string()))?;
        Ok(MerchantKey {
            serial: serial.to_owned(),
            key,
        })
    }

    /// The merchant certificate's serial.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Base64 of RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        // PKCS#1 v1.5 uses no randomness; ring asks for a source all the same. Signing with
        // a key ring accepted into a buffer of its modulus' length cannot fail.
        let rng = ring::rand::SystemRandom::new();
        match self
            .key
            .sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
        {
            Ok(()) => STANDARD.encode(signature),
            Err(_) => String::new(),
        }
    }

    /// The `Authorization` header of a request (§3.1): `method` (uppercase), `url` (path and
    /// query exactly as sent), Unix `timestamp`, `nonce`, the exact `body` bytes.
    pub fn authorization(
        &self,
        mchid: &str,
        method: &str,
        url: &str,
        timestamp: i64,
        nonce: &str,
        body: &[u8],
    ) -> String {
        let signature = self.sign(&request_message(method, url, timestamp, nonce, body));
        format!(
            "{AUTH_SCHEME} mchid=\"{mchid}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
            self.serial
        )
    }
}

/// The five fields of an `Authorization` header (the simulator checks requests with them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Authorization {
    /// `mchid`.
    pub mchid: String,
    /// `nonce_str`.
    pub nonce_str: String,
    /// `signature` (base64).
    pub signature: String,
    /// `timestamp` (Unix seconds, as sent).
    pub timestamp: String,
    /// `serial_no`: the merchant certificate's serial.
    pub serial_no: String,
}

/// Reads an `Authorization` header: the scheme, then `key="value"` pairs separated by commas
/// in any order. `None` when the scheme is another or a field is missing or repeated.
pub fn parse_authorization(header: &str) -> Option<Authorization> {
    let pairs = header.strip_prefix(AUTH_SCHEME)?.strip_prefix(' ')?;
    let mut auth = Authorization::default();
    let mut seen = 0u8;
    for pair in pairs.split(',') {
        let (name, value) = pair.trim().split_once('=')?;
        let value = value.strip_prefix('"')?.strip_suffix('"')?.to_owned();
        let (bit, slot) = match name {
            "mchid" => (1, &mut auth.mchid),
            "nonce_str" => (2, &mut auth.nonce_str),
            "signature" => (4, &mut auth.signature),
            "timestamp" => (8, &mut auth.timestamp),
            "serial_no" => (16, &mut auth.serial_no),
            _ => return None,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        *slot = value;
    }
    (seen == 31).then_some(auth)
}

/// The signed message of a request: five lines, each ending in `\n` (the body's too).
pub fn request_message(
    method: &str,
    url: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut message = format!("{method}\n{url}\n{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// The signed message of the Mini Program's `paySign` (§3.7): appId, timeStamp, nonceStr,
/// package, each line ending in `\n`.
pub fn pay_sign_message(app_id: &str, time_stamp: &str, nonce_str: &str, package: &str) -> Vec<u8> {
    format!("{app_id}\n{time_stamp}\n{nonce_str}\n{package}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::EXAMPLE_MERCHANT_KEY_PEM;

    fn key() -> MerchantKey {
        MerchantKey::from_pem(
            EXAMPLE_MERCHANT_KEY_PEM,
            "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        )
        .unwrap()
    }

    const URL: &str =
        "/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=1230000109";
    const NONCE: &str = "593BEC0C930BF1AFEB40B4A08C8FB242";

    /// V3-REQ (§3.1).
    #[test]
    fn the_request_vector_reproduces_byte_for_byte() {
        let message = request_message("GET", URL, 1_554_208_460, NONCE, b"");
        assert_eq!(
            message,
            b"GET\n/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=1230000109\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
        );
        let signature = "Bsc9r7cJ+hLDV3dkwYMJfndH3LerrDU7PC1zbvsL30mYz+Ru7bJnu12bvrd5EDNuBjQQcQKP2e30h0uCIbmkd+Uf3889q22BnfNru+14Vx8IzP0+kfoAfRu1NLLMr91uWGAylYwOwtDPRRJrcT8quk8+nbICYoElF3b7rQt/o2dLtJDdNurLlbQ7Jcc8KdMmeUxKq8Cj0BshvZ+sStfTO2dKQxC8Uk6sdJqymPW2qFA3Cz14ZAygRDOYdjkV4+rYvuAxhiDe/l7ExSUa0YLPHR2skxBmjPdd8dJ3KrYa4PHPARe4l5jgn4ozVCQ/Ha5qKDJN1vupJx92w9gZPQhbrQ==";
        assert_eq!(key().sign(&message), signature);
        let header = key().authorization("1230000109", "GET", URL, 1_554_208_460, NONCE, b"");
        assert_eq!(
            header,
            format!(
                "WECHATPAY2-SHA256-RSA2048 mchid=\"1230000109\",nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",signature=\"{signature}\",timestamp=\"1554208460\",serial_no=\"5157F09EFDC096DE15EBE81A47057A7232F1B8E1\""
            )
        );
    }

    /// V3-PAYSIGN (§3.7).
    #[test]
    fn the_pay_sign_vector_reproduces_byte_for_byte() {
        let message = pay_sign_message(
            "wx8888888888888888",
            "1414561699",
            "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
            "prepay_id=wx201410272009395522657a690389285100",
        );
        assert_eq!(
            key().sign(&message),
            "jxYjh6BosU3RNBw6Z9pci5+kUXDaeVYVusUXoeqrz+v1HsizHVAX+W2R7dkZxr0DgfwH5kJov9RDGh0n/01ih0927fffkvZHi728OvxPnuOLFivUvMbvhvDaq0zOoIpg7XQ5Ky86LSkiqhkw1gw+1AAgCgJqdI/yt85H/B4EtEw6byul4oBtr2LiQNaMT02dCe5n7ZJMwVHXPTqZlXf1BFXPkqitHS9zLenr05oakIjvNP/e69AzFljAszBh+j0aKANpzhA77hdiPr9N5jVx+eT4fn4ieTs1QzqSytKBn92XLC0xZXDDDNY3bmgJTOvUx1aHAZxbKaNOdoSQied5pA=="
        );
    }

    #[test]
    fn a_bad_key_is_refused_and_never_shown() {
        assert_eq!(
            MerchantKey::from_pem("nonsense", "1").unwrap_err(),
            InvalidMerchantKey::NotPem
        );
        let truncated = EXAMPLE_MERCHANT_KEY_PEM.replacen("MII", "MIJ", 1);
        assert!(MerchantKey::from_pem(&truncated, "1").is_err());
        let shown = format!("{:?}", key());
        assert!(
            shown.contains("5157F09E") && !shown.contains("PRIVATE"),
            "{shown}"
        );
    }
}
