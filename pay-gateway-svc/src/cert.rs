//! The merchant's API certificate (`apiclient_cert.pem` + `apiclient_key.pem`), which v2
//! refunds present over mutual TLS. Loaded and checked at start-up: a missing file, a file
//! without a PEM certificate or key, or a key that does not belong to the certificate stops
//! the service with the variable's name (never the content).

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use service_runtime::settings::SettingsError;

/// The merchant's certificate and key, ready for the HTTP client. `Debug` shows nothing of
/// it.
#[derive(Clone)]
pub struct MerchantCert {
    identity: reqwest::Identity,
}

impl std::fmt::Debug for MerchantCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MerchantCert([REDACTED])")
    }
}

fn invalid(name: &str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

impl MerchantCert {
    /// Reads and checks the certificate (`cert_var` names its file) and key (`key_var`).
    pub fn load(
        cert_path: &Path,
        cert_var: &str,
        key_path: &Path,
        key_var: &str,
    ) -> Result<MerchantCert, SettingsError> {
        let cert_pem = std::fs::read(cert_path).map_err(|e| {
            invalid(
                cert_var,
                format!("cannot read {}: {e}", cert_path.display()),
            )
        })?;
        let key_pem = std::fs::read(key_path)
            .map_err(|e| invalid(key_var, format!("cannot read {}: {e}", key_path.display())))?;
        MerchantCert::from_pem(&cert_pem, cert_var, &key_pem, key_var)
    }

    /// Checks PEM text: at least one certificate, one private key, and the key is the first
    /// certificate's.
    pub fn from_pem(
        cert_pem: &[u8],
        cert_var: &str,
        key_pem: &[u8],
        key_var: &str,
    ) -> Result<MerchantCert, SettingsError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(cert_var, format!("not a PEM certificate: {e}")))?;
        if chain.is_empty() {
            return Err(invalid(cert_var, "no PEM certificate in the file"));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| invalid(key_var, format!("not a PEM private key: {e}")))?;
        let provider = rustls::crypto::ring::default_provider();
        rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
            invalid(
                key_var,
                format!("the key does not belong to the certificate: {e}"),
            )
        })?;
        let mut bundle = cert_pem.to_vec();
        bundle.push(b'\n');
        bundle.extend_from_slice(key_pem);
        let identity = reqwest::Identity::from_pem(&bundle)
            .map_err(|e| invalid(cert_var, format!("unusable certificate and key: {e}")))?;
        Ok(MerchantCert { identity })
    }

    /// The client identity.
    pub fn identity(&self) -> &reqwest::Identity {
        &self.identity
    }
}
