//! WeChat's verification keys (§3.2): platform certificates, fetched from `/v3/certificates`
//! and decrypted with the APIv3 key (several valid at once during a rotation), **and** a
//! WeChat Pay public key by its id (`PUB_KEY_ID_…`), held at the same time so that a merchant
//! migrating from one to the other verifies whichever signed.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::aead::{ApiV3Key, DecryptError, Resource};
use super::verify::{
    InvalidPublicKey, SignedHeaders, VerifyError, WeChatPublicKey, serial_number, verify_signed,
};
use crate::WeChatTime;

/// The prefix of WeChat Pay public key ids.
pub const PUBLIC_KEY_ID_PREFIX: &str = "PUB_KEY_ID_";

/// The least time between two certificate refreshes caused by unknown serials: a flood of
/// forged serials costs WeChat one call per this long, not one per request.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// One platform certificate: its serial, validity and key.
#[derive(Debug, Clone)]
pub struct PlatformCertificate {
    /// The serial (upper-case hex without leading zeros).
    pub serial_no: String,
    /// Valid from, Unix seconds.
    pub effective_time: i64,
    /// Valid until, Unix seconds.
    pub expire_time: i64,
    /// The certificate, PEM.
    pub pem: String,
    key: WeChatPublicKey,
}

/// Why a certificate list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificatesError {
    /// Not the `{"data": [...]}` document.
    #[error("the certificate list is not the expected JSON: {0}")]
    Json(String),
    /// An entry does not decrypt under the APIv3 key.
    #[error("a certificate does not decrypt: {0}")]
    Decrypt(#[from] DecryptError),
    /// An entry is not an RSA certificate, or its serial is not the one listed.
    #[error("certificate {0} is not a usable RSA certificate with that serial")]
    Certificate(String),
    /// A validity time is not RFC 3339.
    #[error("certificate {0} has an unreadable validity time")]
    Time(String),
}

impl PlatformCertificate {
    /// A certificate from its PEM, listed as `serial_no`, valid between the two times (Unix
    /// seconds). Refused when the PEM's serial is another.
    pub fn from_pem(
        serial_no: &str,
        effective_time: i64,
        expire_time: i64,
        pem: String,
    ) -> Result<Self, InvalidPublicKey> {
        let (key, serial) = WeChatPublicKey::from_certificate_pem(&pem)?;
        if serial_number(serial_no).as_deref() != Some(serial.as_str()) {
            return Err(InvalidPublicKey);
        }
        Ok(PlatformCertificate {
            serial_no: serial,
            effective_time,
            expire_time,
            pem,
            key,
        })
    }

    /// Whether it may verify at Unix time `now`.
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.effective_time <= now && now < self.expire_time
    }
}

#[derive(Deserialize)]
struct CertificateList {
    data: Vec<CertificateEntry>,
}

#[derive(Deserialize)]
struct CertificateEntry {
    serial_no: String,
    effective_time: String,
    expire_time: String,
    encrypt_certificate: Resource,
}

/// Reads a `/v3/certificates` answer: each certificate decrypted under `key` and checked to be
/// the RSA certificate its entry names. The answer's signature is checked by the caller.
pub fn decode_certificates(
    body: &[u8],
    key: &ApiV3Key,
) -> Result<Vec<PlatformCertificate>, CertificatesError> {
    let list: CertificateList =
        serde_json::from_slice(body).map_err(|e| CertificatesError::Json(e.to_string()))?;
    list.data
        .into_iter()
        .map(|entry| {
            let serial: String = entry.serial_no.chars().take(64).collect();
            let time = |t: &str| {
                WeChatTime::parse_rfc3339(t)
                    .map(WeChatTime::unix_seconds)
                    .map_err(|_| CertificatesError::Time(serial.clone()))
            };
            let (effective, expire) = (time(&entry.effective_time)?, time(&entry.expire_time)?);
            let pem = String::from_utf8(entry.encrypt_certificate.open(key)?)
                .map_err(|_| CertificatesError::Certificate(serial.clone()))?;
            PlatformCertificate::from_pem(&entry.serial_no, effective, expire, pem)
                .map_err(|_| CertificatesError::Certificate(serial.clone()))
        })
        .collect()
}

#[derive(Debug, Default)]
struct Keys {
    public_key: Option<(String, WeChatPublicKey)>,
    /// By serial number (see [`serial_number`]).
    certificates: BTreeMap<String, PlatformCertificate>,
}

/// The keys WeChat's answers and notifications are verified with: platform certificates and a
/// public key, at the same time; the key is chosen by the `Wechatpay-Serial` received.
/// Cloning shares the keys.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    keys: Arc<RwLock<Keys>>,
    /// When certificates were last refreshed for an unknown serial; held while refreshing.
    refreshed: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

impl Verifier {
    /// A verifier with no key yet: everything is refused until keys are added.
    pub fn new() -> Self {
        Verifier::default()
    }

    /// Sets the WeChat Pay public key and its id (`PUB_KEY_ID_…`).
    pub fn set_public_key(&self, id: &str, key: WeChatPublicKey) {
        self.write().public_key = Some((id.to_owned(), key));
    }

    /// The public key's id, when one is set.
    pub fn public_key_id(&self) -> Option<String> {
        self.read().public_key.as_ref().map(|(id, _)| id.clone())
    }

    /// Adds certificates (one with a known serial replaces it) and forgets those expired at
    /// Unix time `now`.
    pub fn add_certificates(&self, certificates: Vec<PlatformCertificate>, now: i64) {
        let mut keys = self.write();
        for certificate in certificates {
            keys.certificates
                .insert(certificate.serial_no.clone(), certificate);
        }
        keys.certificates.retain(|_, c| c.expire_time > now);
    }

    /// The certificates held.
    pub fn certificates(&self) -> Vec<PlatformCertificate> {
        self.read().certificates.values().cloned().collect()
    }

    /// The key `serial` names at Unix time `now`: the public key by its exact id, a
    /// certificate by its serial compared as a number, valid at `now`.
    pub fn key_of(&self, serial: &str, now: i64) -> Option<WeChatPublicKey> {
        let keys = self.read();
        if let Some((id, key)) = &keys.public_key
            && id == serial
        {
            return Some(key.clone());
        }
        let number = serial_number(serial)?;
        keys.certificates
            .get(&number)
            .filter(|c| c.is_valid_at(now))
            .map(|c| c.key.clone())
    }

    /// Verifies a response or notification with the keys held.
    pub fn verify(
        &self,
        headers: &SignedHeaders<'_>,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        verify_signed(headers, body, now, |serial| self.key_of(serial, now))
    }

    /// [`Verifier::verify`]; when the serial is an unknown certificate serial, refreshes the
    /// certificates with `fetch` ([`Verifier::refresh`]) and verifies again. A refresh that
    /// fails or is not due leaves the keys as they were and the answer refused.
    pub async fn verify_refreshing<F, Fut, E>(
        &self,
        headers: &SignedHeaders<'_>,
        body: &[u8],
        now: i64,
        fetch: F,
    ) -> Result<(), VerifyError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<PlatformCertificate>, E>>,
        E: Display,
    {
        match self.verify(headers, body, now) {
            Err(VerifyError::UnknownSerial(serial))
                if !serial.starts_with(PUBLIC_KEY_ID_PREFIX)
                    && serial_number(&serial).is_some() =>
            {
                match self.refresh(now, fetch).await {
                    Ok(Some(count)) => tracing::info!(
                        count,
                        "platform certificates refreshed for an unknown serial"
                    ),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "platform certificates could not be refreshed");
                    }
                }
                self.verify(headers, body, now)
            }
            other => other,
        }
    }

    /// Fetches the certificates with `fetch` and adds them, unless a refresh (by anyone holding
    /// this verifier or a clone) started less than [`MIN_REFRESH_INTERVAL`] ago: refreshes are
    /// serialised, so callers that waited find the keys the first one fetched. How many
    /// certificates came, or `None` when no refresh was due.
    pub async fn refresh<F, Fut, E>(&self, now: i64, fetch: F) -> Result<Option<usize>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<PlatformCertificate>, E>>,
    {
        let mut last = self.refreshed.lock().await;
        if last.is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL) {
            return Ok(None);
        }
        *last = Some(Instant::now());
        let certificates = fetch().await?;
        let count = certificates.len();
        self.add_certificates(certificates, now);
        Ok(Some(count))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
