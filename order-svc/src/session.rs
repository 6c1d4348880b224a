//! Session tokens: `v1.<payload>.<signature>`, the payload (base64url JSON) carrying the
//! openid and the expiry, the signature HMAC-SHA256 with the service's secret.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use wechat_pay::OpenId;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of ours, or tampered with.
    #[error("invalid session token")]
    Invalid,
    /// Past its expiry.
    #[error("session token expired")]
    Expired,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: OpenId,
    exp: i64,
}

/// Signs and verifies session tokens.
#[derive(Clone)]
pub struct Sessions {
    secret: SecretString,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions([REDACTED])")
    }
}

impl Sessions {
    /// With this secret.
    pub fn new(secret: SecretString) -> Self {
        Sessions { secret }
    }

    fn mac(&self, message: &[u8]) -> Vec<u8> {
        let mut mac = match Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes()) {
            Ok(m) => m,
            Err(_) => return Vec::new(),
        };
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    /// A token for `openid`, valid until `expires_at_unix`.
    pub fn issue(&self, openid: &OpenId, expires_at_unix: i64) -> String {
        let claims = serde_json::to_vec(&Claims {
            sub: openid.clone(),
            exp: expires_at_unix,
        })
        .unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(claims);
        let signed = format!("v1.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(self.mac(signed.as_bytes()));
        format!("{signed}.{signature}")
    }

    /// The openid of a valid, unexpired token.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<OpenId, TokenError> {
        if token.len() > 2048 {
            return Err(TokenError::Invalid);
        }
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let payload = signed.strip_prefix("v1.").ok_or(TokenError::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Invalid)?;
        let expected = self.mac(signed.as_bytes());
        if expected.is_empty()
            || signature.len() != expected.len()
            || !bool::from(signature.ct_eq(&expected))
        {
            return Err(TokenError::Invalid);
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Invalid)?;
        if claims.exp <= now_unix {
            return Err(TokenError::Expired);
        }
        Ok(claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(SecretString::from(
            "0123456789abcdef0123456789abcdef".to_owned(),
        ))
    }

    #[test]
    fn issue_verify_expire_tamper() {
        let s = sessions();
        let user = OpenId::parse("oUser").unwrap();
        let token = s.issue(&user, 1_000);
        assert_eq!(s.verify(&token, 999), Ok(user));
        assert_eq!(s.verify(&token, 1_000), Err(TokenError::Expired));
        let other = Sessions::new(SecretString::from(
            "ffffffffffffffffffffffffffffffff".to_owned(),
        ));
        assert_eq!(other.verify(&token, 0), Err(TokenError::Invalid));
        let forged = token.replacen("v1.", "v1.e", 1);
        assert_eq!(s.verify(&forged, 0), Err(TokenError::Invalid));
        for junk in ["", "v1", "v1..", "v2.a.b", "v1.a.!!!", &"x".repeat(5000)] {
            assert_eq!(s.verify(junk, 0), Err(TokenError::Invalid), "{junk:?}");
        }
    }
}
