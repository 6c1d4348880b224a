//! v3 notifications (§3.4): a signed JSON envelope whose `resource` is encrypted under the
//! APIv3 key. The signature is checked first (by the receiver, with a [`super::Verifier`]),
//! then the envelope is read, then the resource decrypted and checked against the merchant.

use serde::{Deserialize, Serialize};

use super::aead::{ApiV3Key, DecryptError, Resource};
use super::api::{RefundResource, Transaction};

/// `event_type` of a successful payment.
pub const TRANSACTION_SUCCESS: &str = "TRANSACTION.SUCCESS";
/// `event_type`s of a refund's outcomes.
pub const REFUND_EVENTS: [&str; 3] = ["REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"];

/// A notification's envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// WeChat's id of the notification (the same on every retry).
    pub id: String,
    /// When it was created (RFC 3339).
    pub create_time: String,
    /// `encrypt-resource`.
    pub resource_type: String,
    /// `TRANSACTION.SUCCESS`, `REFUND.SUCCESS`, ...
    pub event_type: String,
    /// In words.
    #[serde(default)]
    pub summary: String,
    /// The encrypted content.
    pub resource: Resource,
}

/// Why a notification was refused (after its signature verified).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The body is not the envelope.
    #[error("the notification is not the expected JSON: {0}")]
    Json(String),
    /// The event is not one this endpoint takes.
    #[error("unexpected event_type {0:?}")]
    EventType(String),
    /// The resource does not decrypt under our APIv3 key.
    #[error("the resource does not decrypt: {0}")]
    Decrypt(#[from] DecryptError),
    /// The decrypted resource is not the expected object.
    #[error("the resource is not the expected JSON: {0}")]
    Resource(String),
    /// The resource is for another Mini Program or merchant.
    #[error("the notification is for another merchant (field `{0}`)")]
    MerchantMismatch(&'static str),
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

impl Notification {
    /// Reads the envelope of a verified notification body.
    pub fn parse(body: &[u8]) -> Result<Notification, NotifyError> {
        serde_json::from_slice(body).map_err(|e| NotifyError::Json(clip(&e.to_string())))
    }

    /// The transaction of a `TRANSACTION.SUCCESS` notification for merchant `mchid` and Mini
    /// Program `appid`.
    pub fn transaction(
        &self,
        key: &ApiV3Key,
        appid: &str,
        mchid: &str,
    ) -> Result<Transaction, NotifyError> {
        if self.event_type != TRANSACTION_SUCCESS {
            return Err(NotifyError::EventType(clip(&self.event_type)));
        }
        let plain = self.resource.open(key)?;
        let transaction: Transaction = serde_json::from_slice(&plain)
            .map_err(|e| NotifyError::Resource(clip(&e.to_string())))?;
        if transaction.mchid != mchid {
            return Err(NotifyError::MerchantMismatch("mchid"));
        }
        if transaction.appid.as_deref() != Some(appid) {
            return Err(NotifyError::MerchantMismatch("appid"));
        }
        Ok(transaction)
    }

    /// The refund of a `REFUND.*` notification for merchant `mchid`.
    pub fn refund(&self, key: &ApiV3Key, mchid: &str) -> Result<RefundResource, NotifyError> {
        if !REFUND_EVENTS.contains(&self.event_type.as_str()) {
            return Err(NotifyError::EventType(clip(&self.event_type)));
        }
        let plain = self.resource.open(key)?;
        let refund: RefundResource = serde_json::from_slice(&plain)
            .map_err(|e| NotifyError::Resource(clip(&e.to_string())))?;
        if refund.mchid != mchid {
            return Err(NotifyError::MerchantMismatch("mchid"));
        }
        Ok(refund)
    }
}
