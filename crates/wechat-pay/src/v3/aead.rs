//! AEAD_AES_256_GCM (§3.3): the `resource` of v3 notifications and of `/v3/certificates` is
//! encrypted under the merchant's APIv3 key; the ciphertext carries the 16-byte tag at its
//! end. A tag mismatch (a wrong key, another associated data, tampering) is refused.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// The only `algorithm` of a v3 `resource`.
pub const AEAD_ALGORITHM: &str = "AEAD_AES_256_GCM";

/// The merchant's APIv3 key: 32 ASCII characters, used as the AES-256 key bytes. `Debug`
/// hides it.
#[derive(Clone)]
pub struct ApiV3Key([u8; 32]);

impl std::fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiV3Key(***)")
    }
}

/// Why an APIv3 key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an APIv3 key is 32 ASCII characters")]
pub struct InvalidApiV3Key;

impl ApiV3Key {
    /// The key from its 32 characters.
    pub fn new(text: &str) -> Result<ApiV3Key, InvalidApiV3Key> {
        let bytes: [u8; 32] = text.as_bytes().try_into().map_err(|_| InvalidApiV3Key)?;
        if !bytes.iter().all(u8::is_ascii_graphic) {
            return Err(InvalidApiV3Key);
        }
        Ok(ApiV3Key(bytes))
    }

    /// The AES-256-GCM key (32 bytes is its key length: ring refusing it would be a refusal
    /// of the resource, never an acceptance).
    fn aes(&self) -> Result<LessSafeKey, DecryptError> {
        UnboundKey::new(&AES_256_GCM, &self.0)
            .map(LessSafeKey::new)
            .map_err(|_| DecryptError::Tag)
    }
}

/// Why a `resource` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// The `nonce` is not 12 bytes.
    #[error("the resource nonce is not 12 bytes")]
    Nonce,
    /// The ciphertext is not base64, or shorter than a tag.
    #[error("the resource ciphertext is not base64 of at least 16 bytes")]
    Ciphertext,
    /// Another `algorithm` than AEAD_AES_256_GCM.
    #[error("the resource algorithm is not AEAD_AES_256_GCM")]
    Algorithm,
    /// The tag does not match: a wrong APIv3 key, other associated data, or tampering.
    #[error("the resource does not authenticate (wrong APIv3 key or tampered)")]
    Tag,
}

/// Decrypts a `resource`: `ciphertext` (base64, tag last) under `key` with `nonce` and
/// `associated_data`; the plaintext bytes.
pub fn decrypt_resource(
    key: &ApiV3Key,
    nonce: &str,
    associated_data: &str,
    ciphertext: &str,
) -> Result<Vec<u8>, DecryptError> {
    let nonce =
        Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| DecryptError::Nonce)?;
    let mut sealed = STANDARD
        .decode(ciphertext)
        .map_err(|_| DecryptError::Ciphertext)?;
    if sealed.len() < AES_256_GCM.tag_len() {
        return Err(DecryptError::Ciphertext);
    }
    let plain = key
        .aes()?
        .open_in_place(nonce, Aad::from(associated_data.as_bytes()), &mut sealed)
        .map_err(|_| DecryptError::Tag)?;
    Ok(plain.to_vec())
}

/// An encrypted `resource` (§3.3) as notifications and `/v3/certificates` carry it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resource {
    /// `AEAD_AES_256_GCM`, the only one there is.
    pub algorithm: String,
    /// Base64 of the ciphertext with its tag.
    pub ciphertext: String,
    /// The 12-character nonce.
    pub nonce: String,
    /// Associated data (`transaction`, `refund`, `certificate`; may be empty or absent).
    #[serde(default)]
    pub associated_data: Option<String>,
    /// What the plaintext is (`transaction`, `refund`, `certificate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_type: Option<String>,
}

impl Resource {
    /// Encrypts `plaintext` under `key` (the simulator's notifications and certificates).
    pub fn seal(
        key: &ApiV3Key,
        nonce: &str,
        associated_data: &str,
        original_type: Option<&str>,
        plaintext: &[u8],
    ) -> Result<Resource, DecryptError> {
        Ok(Resource {
            algorithm: AEAD_ALGORITHM.to_owned(),
            ciphertext: encrypt_resource(key, nonce, associated_data, plaintext)?,
            nonce: nonce.to_owned(),
            associated_data: Some(associated_data.to_owned()),
            original_type: original_type.map(str::to_owned),
        })
    }

    /// The plaintext, once its algorithm is the one there is and its tag authenticates
    /// under `key`.
    pub fn open(&self, key: &ApiV3Key) -> Result<Vec<u8>, DecryptError> {
        if self.algorithm != AEAD_ALGORITHM {
            return Err(DecryptError::Algorithm);
        }
        decrypt_resource(
            key,
            &self.nonce,
            self.associated_data.as_deref().unwrap_or(""),
            &self.ciphertext,
        )
    }
}

/// Encrypts `plaintext` as WeChat does (the simulator's notifications): base64 of the
/// ciphertext with its tag appended.
pub fn encrypt_resource(
    key: &ApiV3Key,
    nonce: &str,
    associated_data: &str,
    plaintext: &[u8],
) -> Result<String, DecryptError> {
    let nonce =
        Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| DecryptError::Nonce)?;
    let mut buffer = plaintext.to_vec();
    key.aes()?
        .seal_in_place_append_tag(nonce, Aad::from(associated_data.as_bytes()), &mut buffer)
        .map_err(|_| DecryptError::Tag)?;
    Ok(STANDARD.encode(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAINTEXT: &str = r#"{"out_trade_no":"1217752501201407033233368018","trade_state":"SUCCESS","amount":{"total":100,"currency":"CNY"}}"#;
    const CIPHERTEXT: &str = "Lw604JE6xG9oCoL8hcAjDZibT7HdJI4n2PXr6DlDhCaRCtU6T8fZVpzDvMATvAXTkdKOi6CRVKgngQ+u2k4fBkilDLJZo1eYORvY6iJVOC3WJb1o4InRepeXu13TSTK0SeNy9868bCAlVFM9JkX3smj7FNUpzCyNb0jgvuNxyg==";

    fn key() -> ApiV3Key {
        ApiV3Key::new("WeChatPayV3TestKey0123456789abcd").unwrap()
    }

    /// V3-GCM (§3.3).
    #[test]
    fn the_gcm_vector_decrypts_and_encrypts_back() {
        let plain = decrypt_resource(&key(), "c5ac7061fcca", "transaction", CIPHERTEXT).unwrap();
        assert_eq!(plain, PLAINTEXT.as_bytes());
        assert_eq!(
            encrypt_resource(&key(), "c5ac7061fcca", "transaction", PLAINTEXT.as_bytes()).unwrap(),
            CIPHERTEXT
        );
    }

    #[test]
    fn other_associated_data_a_wrong_key_or_a_flipped_bit_are_refused() {
        assert_eq!(
            decrypt_resource(&key(), "c5ac7061fcca", "refund", CIPHERTEXT),
            Err(DecryptError::Tag)
        );
        let other = ApiV3Key::new("WeChatPayV3TestKey0123456789abce").unwrap();
        assert_eq!(
            decrypt_resource(&other, "c5ac7061fcca", "transaction", CIPHERTEXT),
            Err(DecryptError::Tag)
        );
        let mut bytes = STANDARD.decode(CIPHERTEXT).unwrap();
        bytes[5] ^= 1;
        let tampered = STANDARD.encode(bytes);
        assert_eq!(
            decrypt_resource(&key(), "c5ac7061fcca", "transaction", &tampered),
            Err(DecryptError::Tag)
        );
        assert_eq!(
            decrypt_resource(&key(), "short", "transaction", CIPHERTEXT),
            Err(DecryptError::Nonce)
        );
        assert_eq!(
            decrypt_resource(&key(), "c5ac7061fcca", "transaction", "AAAA"),
            Err(DecryptError::Ciphertext)
        );
        assert_eq!(
            decrypt_resource(&key(), "c5ac7061fcca", "transaction", "%%%"),
            Err(DecryptError::Ciphertext)
        );
        assert!(ApiV3Key::new("short").is_err());
        assert_eq!(format!("{:?}", key()), "ApiV3Key(***)");
    }
}
