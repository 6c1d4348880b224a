//! order-svc's session tokens: only a token issued with the service's secret verifies, to the
//! openid it was issued for, until its expiry.

use order_svc::session::{Sessions, TokenError};
use secrecy::SecretString;
use wechat_pay::OpenId;

/// The secret of the tokens in the corpus (as order-svc's own tests use).
const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// Another service's secret.
const OTHER_SECRET: &str = "ffffffffffffffffffffffffffffffff";
/// "Now" for every check: 2025-06-15, before the expiry of the corpus's tokens.
const NOW: i64 = 1_750_000_000;
/// The characters an openid may hold.
const OPENID_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

fn sessions(secret: &str) -> Sessions {
    Sessions::new(SecretString::from(secret.to_owned()))
}

/// Any bytes as a token (lossy UTF-8): refused or verified, never a panic; one that verifies
/// was issued with the secret (it fails under another) and any change of one character breaks
/// it. And a token issued for an openid made of the bytes, expiring at a time made of them,
/// verifies back to that openid exactly while it is unexpired, under this secret only, and
/// breaks when one of its bits flips.
pub fn session_token(data: &[u8]) {
    let ours = sessions(SECRET);
    let theirs = sessions(OTHER_SECRET);
    let token = String::from_utf8_lossy(data);
    if ours.verify(&token, NOW).is_ok() {
        assert_eq!(theirs.verify(&token, NOW), Err(TokenError::Invalid));
        for at in 0..token.len() {
            if let Some(changed) = flip(&token, at, 1) {
                assert_eq!(
                    ours.verify(&changed, NOW),
                    Err(TokenError::Invalid),
                    "{changed:?}"
                );
            }
        }
    }

    let openid = openid_of(data);
    let expires_at = expiry_of(data);
    let issued = ours.issue(&openid, expires_at);
    if expires_at > NOW {
        assert_eq!(ours.verify(&issued, NOW), Ok(openid));
    } else {
        assert_eq!(ours.verify(&issued, NOW), Err(TokenError::Expired));
    }
    assert_eq!(theirs.verify(&issued, NOW), Err(TokenError::Invalid));
    let at = data.len() % issued.len();
    let bit = data.last().map_or(0, |b| b % 7);
    if let Some(changed) = flip(&issued, at, 1 << bit) {
        assert_eq!(
            ours.verify(&changed, NOW),
            Err(TokenError::Invalid),
            "{changed:?}"
        );
    }
}

/// `token` with bits `mask` of its byte `at` flipped, when that byte is ASCII (so the result
/// stays text and differs from `token`).
fn flip(token: &str, at: usize, mask: u8) -> Option<String> {
    let mut bytes = token.as_bytes().to_vec();
    let byte = bytes.get_mut(at).filter(|b| b.is_ascii())?;
    *byte ^= mask & 0x7f;
    String::from_utf8(bytes).ok().filter(|t| t != token)
}

/// An openid of 1 to 128 characters taken from the bytes.
fn openid_of(data: &[u8]) -> OpenId {
    let text: String = data
        .iter()
        .take(OpenId::MAX_LEN)
        .map(|b| char::from(OPENID_CHARS[usize::from(b % 64)]))
        .collect();
    let text = if text.is_empty() {
        "o".to_owned()
    } else {
        text
    };
    OpenId::parse(text).unwrap_or_else(|e| unreachable!("openid characters only: {e}"))
}

/// An expiry from the bytes' first eight (any `i64`, both sides of [`NOW`]).
fn expiry_of(data: &[u8]) -> i64 {
    let mut bytes = [0; 8];
    for (to, from) in bytes.iter_mut().zip(data) {
        *to = *from;
    }
    i64::from_le_bytes(bytes)
}
