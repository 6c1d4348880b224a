//! Operators' credentials for the admin API: bearer tokens known only by their SHA-256 hash
//! (`ADMIN_TOKENS="alice:<sha256 hex>,bob:<sha256 hex>"`), so configuration and memory never
//! hold a usable token. A token is checked against every configured hash in constant time; no
//! token configured means nobody is let in.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The operators who may use the admin API.
#[derive(Clone, Default)]
pub struct AdminTokens {
    operators: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.operators.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("AdminTokens")
            .field("operators", &names)
            .finish()
    }
}

/// Why `ADMIN_TOKENS` cannot be read (never quoting it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {entry}: {reason}")]
pub struct InvalidAdminTokens {
    /// Which entry (1-based).
    pub entry: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl AdminTokens {
    /// Reads `name:sha256hex` entries separated by commas (blank ones skipped). Names are 1
    /// to 64 letters, digits, `.`, `_`, `-` or `@`, each once; hashes 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, InvalidAdminTokens> {
        let mut operators: Vec<(String, [u8; 32])> = Vec::new();
        for (i, entry) in text.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let invalid = |reason| InvalidAdminTokens {
                entry: i + 1,
                reason,
            };
            let (name, hash) = entry
                .split_once(':')
                .ok_or_else(|| invalid("expected operator:sha256hex"))?;
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
            if !name_ok {
                return Err(invalid(
                    "the operator name must be 1 to 64 of [A-Za-z0-9._@-]",
                ));
            }
            if operators.iter().any(|(n, _)| n == name) {
                return Err(invalid("the operator is listed twice"));
            }
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hash, &mut digest)
                .map_err(|_| invalid("the hash must be 64 hex digits (SHA-256 of the token)"))?;
            operators.push((name.to_owned(), digest));
        }
        Ok(AdminTokens { operators })
    }

    /// Whether no operator is configured.
    pub fn is_empty(&self) -> bool {
        self.operators.is_empty()
    }

    /// The operator whose token this is. Every hash is compared, in constant time.
    pub fn operator(&self, token: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (name, hash) in &self.operators {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(name.as_str());
            }
        }
        found
    }

    /// The `ADMIN_TOKENS` entry of `token` for `operator` (what `minipay up` writes).
    pub fn entry(operator: &str, token: &str) -> String {
        format!(
            "{operator}:{}",
            hex::encode(Sha256::digest(token.as_bytes()))
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn tokens_are_known_by_hash_only() {
        let text = format!(
            "{}, {}",
            AdminTokens::entry("alice", "alice-secret-token"),
            AdminTokens::entry("bob@shop", "bob-secret-token")
        );
        let tokens = AdminTokens::parse(&text).unwrap();
        assert_eq!(tokens.operator("alice-secret-token"), Some("alice"));
        assert_eq!(tokens.operator("bob-secret-token"), Some("bob@shop"));
        assert_eq!(tokens.operator("alice-secret-tokeN"), None);
        assert_eq!(tokens.operator(""), None);
        assert!(!format!("{tokens:?}").contains(&text[6..20]));
        assert!(AdminTokens::parse("").unwrap().is_empty());
        assert_eq!(AdminTokens::parse("").unwrap().operator("x"), None);
    }

    #[test]
    fn bad_entries_are_named_without_their_content() {
        for bad in ["alice", "alice:xyz", ":00", "a b:00", "alice:00"] {
            assert!(AdminTokens::parse(bad).is_err(), "{bad}");
        }
        let twice = format!(
            "{},{}",
            AdminTokens::entry("a", "t1"),
            AdminTokens::entry("a", "t2")
        );
        assert_eq!(AdminTokens::parse(&twice).unwrap_err().entry, 2);
    }
}
