//! Refunds in API v2: the refund request (`/secapi/pay/refund`, mutual TLS), the refund
//! query (`/pay/refundquery`, whose answer lists refunds under indexed names), and the refund
//! notification, which is not signed but carries its content encrypted in `req_info`
//! (AES-256-ECB under the lower-case hex MD5 of the API key).
//!
//! ECB gives no integrity (reference §5.7): a decrypted notification only says what to check.
//! Its `out_refund_no`, `out_trade_no` and `refund_fee` must match our record, and anything
//! irreversible is confirmed by refund query.

use std::collections::BTreeMap;
use std::fmt;

use aes::Aes256;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::message::MessageError;
use super::notify::NotifyError;
use super::{ApiKey, Params, xml};
use crate::domain::{Fen, OutRefundNo, OutTradeNo, RefundId, TransactionId};

/// AES's block size.
const BLOCK: usize = 16;

/// The longest `req_info` WeChat sends (`String(1024)`), with room for what it may grow to.
const MAX_REQ_INFO: usize = 4096;

/// Refund request (申请退款). Exactly one of `transaction_id` and `out_trade_no` names the
/// order (WeChat prefers `transaction_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// WeChat's order number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<TransactionId>,
    /// Our order number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<OutTradeNo>,
    /// Our refund number: the same number is the same refund (retry with it).
    pub out_refund_no: OutRefundNo,
    /// The order's whole amount.
    pub total_fee: Fen,
    /// This refund's amount.
    pub refund_fee: Fen,
    /// `CNY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_fee_type: Option<String>,
    /// Shown to the user, at most 80 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_desc: Option<String>,
    /// Which funds pay it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_account: Option<String>,
    /// Overrides the refund notification URL configured at WeChat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
}

impl RefundRequest {
    /// The longest `refund_desc` WeChat takes, in characters.
    pub const MAX_DESC_CHARS: usize = 80;

    /// Refuses what WeChat would: a zero amount, a refund above the order's amount, a
    /// description over 80 characters, no order named.
    pub fn check(&self) -> Result<(), String> {
        if self.transaction_id.is_none() && self.out_trade_no.is_none() {
            return Err("give transaction_id or out_trade_no".into());
        }
        if self.refund_fee.is_zero() || self.total_fee.is_zero() {
            return Err("refund_fee and total_fee must be greater than zero".into());
        }
        if self.refund_fee > self.total_fee {
            return Err("refund_fee exceeds total_fee".into());
        }
        if self
            .refund_desc
            .as_ref()
            .is_some_and(|d| d.chars().count() > Self::MAX_DESC_CHARS)
        {
            return Err("refund_desc is longer than 80 characters".into());
        }
        Ok(())
    }
}

/// Refund response (both codes `SUCCESS`): the refund is **accepted**, not done; its outcome
/// comes by notification or refund query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundResponse {
    /// The appid.
    pub appid: String,
    /// The merchant.
    pub mch_id: String,
    /// WeChat's order number.
    pub transaction_id: TransactionId,
    /// Our order number.
    pub out_trade_no: OutTradeNo,
    /// Our refund number.
    pub out_refund_no: OutRefundNo,
    /// WeChat's refund number.
    pub refund_id: RefundId,
    /// The refund's amount.
    pub refund_fee: Fen,
    /// The order's amount.
    pub total_fee: Fen,
    /// The cash part of the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_fee: Option<Fen>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// Refund query request: one of the four numbers (WeChat's precedence: `refund_id`, then
/// `out_refund_no`, `transaction_id`, `out_trade_no`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundQueryRequest {
    /// WeChat's refund number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<RefundId>,
    /// Our refund number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_refund_no: Option<OutRefundNo>,
    /// WeChat's order number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<TransactionId>,
    /// Our order number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<OutTradeNo>,
}

impl RefundQueryRequest {
    /// Query one refund by our number.
    pub fn by_out_refund_no(out_refund_no: OutRefundNo) -> Self {
        RefundQueryRequest {
            refund_id: None,
            out_refund_no: Some(out_refund_no),
            transaction_id: None,
            out_trade_no: None,
        }
    }

    /// Whether a number is given.
    pub fn names_something(&self) -> bool {
        self.refund_id.is_some()
            || self.out_refund_no.is_some()
            || self.transaction_id.is_some()
            || self.out_trade_no.is_some()
    }
}

/// A refund's state (`refund_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RefundStatus {
    /// Being processed.
    Processing,
    /// Done: the money went back.
    Success,
    /// Closed without refunding.
    Refundclose,
    /// Abnormal (the user's card is gone, say): needs a person at the merchant platform.
    Change,
}

impl RefundStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::Success => "SUCCESS",
            RefundStatus::Refundclose => "REFUNDCLOSE",
            RefundStatus::Change => "CHANGE",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PROCESSING" => RefundStatus::Processing,
            "SUCCESS" => RefundStatus::Success,
            "REFUNDCLOSE" => RefundStatus::Refundclose,
            "CHANGE" => RefundStatus::Change,
            _ => return None,
        })
    }

    /// Whether it will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(self, RefundStatus::Processing)
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One refund in a refund query's answer (its fields carry the suffix `_$n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    /// Our refund number.
    pub out_refund_no: OutRefundNo,
    /// WeChat's refund number.
    pub refund_id: RefundId,
    /// The refund's amount.
    pub refund_fee: Fen,
    /// Its state.
    pub refund_status: RefundStatus,
    /// When it succeeded (`yyyy-MM-dd HH:mm:ss`, Beijing time), once it did.
    pub refund_success_time: Option<String>,
    /// Where the money went (`refund_recv_accout`, sic).
    pub refund_recv_accout: Option<String>,
}

/// Refund query response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundQueryResponse {
    /// The appid.
    pub appid: String,
    /// The merchant.
    pub mch_id: String,
    /// WeChat's order number.
    pub transaction_id: TransactionId,
    /// Our order number.
    pub out_trade_no: OutTradeNo,
    /// The order's amount.
    pub total_fee: Fen,
    /// Refunds of the order in all (the answer lists at most 10 from `offset`).
    pub total_refund_count: Option<u32>,
    /// The refunds listed here.
    pub refunds: Vec<RefundRecord>,
}

/// The most refunds one order can have at WeChat (50 partial refunds).
const MAX_REFUNDS: u32 = 50;

impl RefundQueryResponse {
    /// Reads the answer's fields (the envelope already checked), `refund_count` records of
    /// `_$n` fields.
    pub fn from_params(params: &Params) -> Result<Self, MessageError> {
        let text = |name: &str| -> Result<String, MessageError> {
            params
                .get_non_empty(name)
                .map(str::to_owned)
                .ok_or_else(|| MessageError::Invalid(format!("missing field `{name}`")))
        };
        let invalid = |name: &str| MessageError::Invalid(format!("invalid field `{name}`"));
        let fen = |name: &str| -> Result<Fen, MessageError> {
            text(name)?.parse().map_err(|_| invalid(name))
        };
        let count = |name: &str| -> Result<Option<u32>, MessageError> {
            params
                .get_non_empty(name)
                .map(|c| c.parse::<u32>().map_err(|_| invalid(name)))
                .transpose()
        };
        let refund_count = count("refund_count")?.unwrap_or(0);
        if refund_count > MAX_REFUNDS {
            return Err(invalid("refund_count"));
        }
        let mut refunds = Vec::with_capacity(refund_count as usize);
        for n in 0..refund_count {
            let name = |field: &str| format!("{field}_{n}");
            let status = text(&name("refund_status"))?;
            refunds.push(RefundRecord {
                out_refund_no: OutRefundNo::parse(text(&name("out_refund_no"))?)
                    .map_err(|_| invalid(&name("out_refund_no")))?,
                refund_id: RefundId::parse(text(&name("refund_id"))?)
                    .map_err(|_| invalid(&name("refund_id")))?,
                refund_fee: fen(&name("refund_fee"))?,
                refund_status: RefundStatus::parse(&status)
                    .ok_or_else(|| invalid(&name("refund_status")))?,
                refund_success_time: params
                    .get_non_empty(&name("refund_success_time"))
                    .map(str::to_owned),
                refund_recv_accout: params
                    .get_non_empty(&name("refund_recv_accout"))
                    .map(str::to_owned),
            });
        }
        Ok(RefundQueryResponse {
            appid: text("appid")?,
            mch_id: text("mch_id")?,
            transaction_id: TransactionId::parse(text("transaction_id")?)
                .map_err(|_| invalid("transaction_id"))?,
            out_trade_no: OutTradeNo::parse(text("out_trade_no")?)
                .map_err(|_| invalid("out_trade_no"))?,
            total_fee: fen("total_fee")?,
            total_refund_count: count("total_refund_count")?,
            refunds,
        })
    }

    /// The refund numbered `out_refund_no`, if listed.
    pub fn refund(&self, out_refund_no: &OutRefundNo) -> Option<&RefundRecord> {
        self.refunds
            .iter()
            .find(|r| &r.out_refund_no == out_refund_no)
    }

    /// Writes the answer's business fields (the simulator's side of [`Self::from_params`]).
    pub fn to_params(&self) -> Params {
        let mut p = Params::new();
        p.insert("appid", self.appid.clone());
        p.insert("mch_id", self.mch_id.clone());
        p.insert("transaction_id", self.transaction_id.to_string());
        p.insert("out_trade_no", self.out_trade_no.to_string());
        p.insert("total_fee", self.total_fee.to_string());
        p.insert("cash_fee", self.total_fee.to_string());
        if let Some(total) = self.total_refund_count {
            p.insert("total_refund_count", total.to_string());
        }
        p.insert("refund_count", self.refunds.len().to_string());
        for (n, r) in self.refunds.iter().enumerate() {
            p.insert(format!("out_refund_no_{n}"), r.out_refund_no.to_string());
            p.insert(format!("refund_id_{n}"), r.refund_id.to_string());
            p.insert(format!("refund_fee_{n}"), r.refund_fee.to_string());
            p.insert(format!("refund_status_{n}"), r.refund_status.as_str());
            p.insert(format!("refund_channel_{n}"), "ORIGINAL");
            if let Some(t) = &r.refund_success_time {
                p.insert(format!("refund_success_time_{n}"), t.clone());
            }
            if let Some(a) = &r.refund_recv_accout {
                p.insert(format!("refund_recv_accout_{n}"), a.clone());
            }
        }
        p
    }
}

/// What a refund notification's `req_info` says, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundInfo {
    /// WeChat's order number.
    pub transaction_id: TransactionId,
    /// Our order number.
    pub out_trade_no: OutTradeNo,
    /// WeChat's refund number.
    pub refund_id: RefundId,
    /// Our refund number.
    pub out_refund_no: OutRefundNo,
    /// The order's amount.
    pub total_fee: Fen,
    /// The refund's amount.
    pub refund_fee: Fen,
    /// `SUCCESS`, `CHANGE` or `REFUNDCLOSE`.
    pub refund_status: RefundStatus,
    /// When it succeeded (`yyyy-MM-dd HH:mm:ss`, Beijing time).
    pub success_time: Option<String>,
    /// Where the money went (`refund_recv_accout`, sic).
    pub refund_recv_accout: Option<String>,
    /// Every decrypted field.
    pub fields: Params,
}

/// A refund notification: the merchant fields of its envelope and its decrypted content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotification {
    /// The appid (check it with [`RefundNotification::check_merchant`]).
    pub appid: String,
    /// The merchant.
    pub mch_id: String,
    /// The decrypted content.
    pub info: RefundInfo,
}

impl RefundNotification {
    /// Refuses a notification for another appid or mch_id.
    pub fn check_merchant(&self, appid: &str, mch_id: &str) -> Result<(), NotifyError> {
        super::notify::same_merchant((&self.appid, &self.mch_id), (appid, mch_id))
    }
}

/// Parses a refund notification: the envelope safely, `return_code=SUCCESS`, the merchant
/// fields present, then `req_info` decrypted with `key` (a bad length, padding or UTF-8, or a
/// plaintext that is not a flat `<root>` document, is refused) and its fields read strictly.
/// The caller checks the merchant and matches the refund against its record.
pub fn parse_refund_notification(
    body: &[u8],
    key: &ApiKey,
) -> Result<RefundNotification, NotifyError> {
    let envelope = xml::decode(body)?;
    if envelope.get("return_code") != Some("SUCCESS") {
        return Err(NotifyError::NotSuccess);
    }
    let field = |name: &'static str| {
        envelope
            .get_non_empty(name)
            .map(str::to_owned)
            .ok_or(NotifyError::Field(name))
    };
    let (appid, mch_id) = (field("appid")?, field("mch_id")?);
    let plain = decrypt_req_info(&field("req_info")?, key)?;
    // Garbage that happened to end in valid padding (a wrong key does that one time in 16)
    // is no document: undecryptable too.
    let fields = xml::decode_with_root(&plain, "root").map_err(|_| NotifyError::Undecryptable)?;
    let info = refund_info(fields)?;
    Ok(RefundNotification {
        appid,
        mch_id,
        info,
    })
}

fn refund_info(fields: Params) -> Result<RefundInfo, NotifyError> {
    let text = |name: &'static str| {
        fields
            .get_non_empty(name)
            .map(str::to_owned)
            .ok_or(NotifyError::Field(name))
    };
    let fen = |name: &'static str| -> Result<Fen, NotifyError> {
        text(name)?.parse().map_err(|_| NotifyError::Field(name))
    };
    Ok(RefundInfo {
        transaction_id: TransactionId::parse(text("transaction_id")?)
            .map_err(|_| NotifyError::Field("transaction_id"))?,
        out_trade_no: OutTradeNo::parse(text("out_trade_no")?)
            .map_err(|_| NotifyError::Field("out_trade_no"))?,
        refund_id: RefundId::parse(text("refund_id")?)
            .map_err(|_| NotifyError::Field("refund_id"))?,
        out_refund_no: OutRefundNo::parse(text("out_refund_no")?)
            .map_err(|_| NotifyError::Field("out_refund_no"))?,
        total_fee: fen("total_fee")?,
        refund_fee: fen("refund_fee")?,
        // A notification only ever reports a final state.
        refund_status: RefundStatus::parse(&text("refund_status")?)
            .filter(|s| s.is_final())
            .ok_or(NotifyError::Field("refund_status"))?,
        success_time: fields.get_non_empty("success_time").map(str::to_owned),
        refund_recv_accout: fields
            .get_non_empty("refund_recv_accout")
            .map(str::to_owned),
        fields,
    })
}

/// The AES-256 key of `req_info`: the 32 ASCII characters of the lower-case hex MD5 of the API
/// key (not the 16 digest bytes).
fn req_info_cipher(key: &ApiKey) -> Aes256 {
    let digest = Md5::digest(key.expose().as_bytes());
    let hex_key = hex::encode(digest);
    Aes256::new(GenericArray::from_slice(hex_key.as_bytes()))
}

/// Decrypts `req_info`: base64, AES-256-ECB, PKCS#7 padding removed.
pub fn decrypt_req_info(req_info: &str, key: &ApiKey) -> Result<Vec<u8>, NotifyError> {
    if req_info.len() > MAX_REQ_INFO {
        return Err(NotifyError::Field("req_info"));
    }
    let mut data = BASE64
        .decode(req_info.trim())
        .map_err(|_| NotifyError::Undecryptable)?;
    if data.is_empty() || data.len() % BLOCK != 0 {
        return Err(NotifyError::Undecryptable);
    }
    let cipher = req_info_cipher(key);
    for block in data.chunks_exact_mut(BLOCK) {
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
    }
    let pad = usize::from(*data.last().ok_or(NotifyError::Undecryptable)?);
    if pad == 0
        || pad > BLOCK
        || !data[data.len() - pad..]
            .iter()
            .all(|&b| usize::from(b) == pad)
    {
        return Err(NotifyError::Undecryptable);
    }
    data.truncate(data.len() - pad);
    Ok(data)
}

/// Encrypts `plain` as `req_info` (what WeChat does; the simulator's side of
/// [`decrypt_req_info`]).
pub fn encrypt_req_info(plain: &[u8], key: &ApiKey) -> String {
    let pad = BLOCK - plain.len() % BLOCK;
    let mut data = Vec::with_capacity(plain.len() + pad);
    data.extend_from_slice(plain);
    // `pad` is 1..=16: it fits a byte.
    data.extend(std::iter::repeat_n(u8::try_from(pad).unwrap_or(16), pad));
    let cipher = req_info_cipher(key);
    for block in data.chunks_exact_mut(BLOCK) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    BASE64.encode(data)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    /// V2-REFUND-REQINFO (reference §2.12).
    const VECTOR_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    const VECTOR_PLAIN: &str = "<root><out_refund_no><![CDATA[R20240101000001]]></out_refund_no><refund_fee><![CDATA[1]]></refund_fee><refund_status><![CDATA[SUCCESS]]></refund_status></root>";
    const VECTOR_REQ_INFO: &str = "WBzGpzQuNpcFxIlFjUUD9BfnwwNUlVAs7bwvgHME4/RbYDxgIFt4h1/ChWvVfA2ijUF6J1J4xU4Xuo3b+lNaAqG+otF8m3pS3O4btqBgjQZulLJezp+DZ1aRak9n/fwlBTUEaZWd6pYw+c1YV4lT57rO4wZDF5SwkOt7MIFNUaladrdy0yQefoW3LYmmUmF3r7t23yZjibKV29fZKVgeUQ==";

    fn key() -> ApiKey {
        ApiKey::new(VECTOR_KEY).unwrap()
    }

    #[test]
    fn the_reference_vector_decrypts_and_encrypts_back() {
        assert_eq!(
            hex::encode(Md5::digest(VECTOR_KEY.as_bytes())),
            "d96eb16afdd491fa1e705096edbc2205"
        );
        let plain = decrypt_req_info(VECTOR_REQ_INFO, &key()).unwrap();
        assert_eq!(plain.len(), 159);
        assert_eq!(std::str::from_utf8(&plain).unwrap(), VECTOR_PLAIN);
        assert_eq!(
            encrypt_req_info(VECTOR_PLAIN.as_bytes(), &key()),
            VECTOR_REQ_INFO
        );
        let fields = xml::decode_with_root(&plain, "root").unwrap();
        assert_eq!(fields.get("out_refund_no"), Some("R20240101000001"));
        assert_eq!(fields.get("refund_status"), Some("SUCCESS"));
    }

    #[test]
    fn a_wrong_key_bad_base64_length_or_padding_is_refused() {
        let other = ApiKey::new("00000000000000000000000000000000").unwrap();
        assert!(decrypt_req_info(VECTOR_REQ_INFO, &other).is_err());
        assert!(decrypt_req_info("not base64!", &key()).is_err());
        assert!(decrypt_req_info("", &key()).is_err());
        // 15 bytes: not whole blocks.
        assert!(decrypt_req_info(&BASE64.encode([0u8; 15]), &key()).is_err());
        // The last block cut off: the padding is no longer valid.
        let whole = BASE64.decode(VECTOR_REQ_INFO).unwrap();
        let cut = BASE64.encode(&whole[..whole.len() - BLOCK]);
        assert!(decrypt_req_info(&cut, &key()).is_err());
        assert!(decrypt_req_info(&"A".repeat(MAX_REQ_INFO + 4), &key()).is_err());
    }

    fn full_info() -> Params {
        [
            ("transaction_id", "4200000000000000000000000001"),
            ("out_trade_no", "MP20240101000001"),
            ("refund_id", "50000000000000000000000001"),
            ("out_refund_no", "RF20240101000001"),
            ("total_fee", "1999"),
            ("refund_fee", "500"),
            ("settlement_refund_fee", "500"),
            ("refund_status", "SUCCESS"),
            ("success_time", "2024-01-01 12:00:00"),
            ("refund_recv_accout", "支付用户零钱"),
            ("refund_account", "REFUND_SOURCE_UNSETTLED_FUNDS"),
            ("refund_request_source", "API"),
        ]
        .into_iter()
        .collect()
    }

    fn notification(info: &Params, key: &ApiKey) -> String {
        let plain = xml::encode_with_root(info, "root").unwrap();
        let envelope: Params = [
            ("return_code", "SUCCESS"),
            ("appid", "wx2421b1c4370ec43b"),
            ("mch_id", "10000100"),
            ("nonce_str", "TeqClE3i0mvn3DrK"),
        ]
        .into_iter()
        .chain([("req_info", encrypt_req_info(plain.as_bytes(), key).as_str())])
        .collect();
        xml::encode(&envelope).unwrap()
    }

    #[test]
    fn a_notification_parses_and_its_merchant_is_checked() {
        let body = notification(&full_info(), &key());
        let n = parse_refund_notification(body.as_bytes(), &key()).unwrap();
        assert_eq!(n.info.refund_fee, Fen::new(500).unwrap());
        assert_eq!(n.info.refund_status, RefundStatus::Success);
        assert_eq!(n.info.out_refund_no.as_str(), "RF20240101000001");
        assert!(n.check_merchant("wx2421b1c4370ec43b", "10000100").is_ok());
        assert_eq!(
            n.check_merchant("wx2421b1c4370ec43b", "10000200"),
            Err(NotifyError::MerchantMismatch("mch_id"))
        );
    }

    #[test]
    fn a_notification_missing_a_field_or_under_another_key_is_refused() {
        let other = ApiKey::new("00000000000000000000000000000000").unwrap();
        let body = notification(&full_info(), &other);
        assert!(parse_refund_notification(body.as_bytes(), &key()).is_err());
        for missing in [
            "out_refund_no",
            "refund_fee",
            "out_trade_no",
            "refund_status",
        ] {
            let mut info = full_info();
            info.remove(missing);
            let body = notification(&info, &key());
            assert_eq!(
                parse_refund_notification(body.as_bytes(), &key()),
                Err(NotifyError::Field(missing)),
                "{missing}"
            );
        }
        let mut processing = full_info();
        processing.insert("refund_status", "PROCESSING");
        let body = notification(&processing, &key());
        assert!(parse_refund_notification(body.as_bytes(), &key()).is_err());
        let mut fractional = full_info();
        fractional.insert("refund_fee", "5.00");
        let body = notification(&fractional, &key());
        assert!(parse_refund_notification(body.as_bytes(), &key()).is_err());
    }

    #[test]
    fn a_refund_query_answer_reads_its_indexed_refunds() {
        let answer = RefundQueryResponse {
            appid: "wx2421b1c4370ec43b".into(),
            mch_id: "10000100".into(),
            transaction_id: TransactionId::parse("4200000000000000000000000001").unwrap(),
            out_trade_no: OutTradeNo::parse("MP20240101000001").unwrap(),
            total_fee: Fen::new(1999).unwrap(),
            total_refund_count: Some(2),
            refunds: vec![
                RefundRecord {
                    out_refund_no: OutRefundNo::parse("RF1").unwrap(),
                    refund_id: RefundId::parse("5001").unwrap(),
                    refund_fee: Fen::new(500).unwrap(),
                    refund_status: RefundStatus::Success,
                    refund_success_time: Some("2024-01-01 12:00:00".into()),
                    refund_recv_accout: Some("支付用户零钱".into()),
                },
                RefundRecord {
                    out_refund_no: OutRefundNo::parse("RF2").unwrap(),
                    refund_id: RefundId::parse("5002").unwrap(),
                    refund_fee: Fen::new(1).unwrap(),
                    refund_status: RefundStatus::Processing,
                    refund_success_time: None,
                    refund_recv_accout: None,
                },
            ],
        };
        let params = answer.to_params();
        assert_eq!(params.get("refund_status_1"), Some("PROCESSING"));
        let back = RefundQueryResponse::from_params(&params).unwrap();
        assert_eq!(back, answer);
        assert_eq!(
            back.refund(&OutRefundNo::parse("RF2").unwrap())
                .map(|r| r.refund_status),
            Some(RefundStatus::Processing)
        );
        let mut lying = params;
        lying.insert("refund_count", "3");
        assert!(RefundQueryResponse::from_params(&lying).is_err());
    }

    #[test]
    fn a_refund_request_is_checked_before_it_is_sent() {
        let ok = RefundRequest {
            transaction_id: None,
            out_trade_no: Some(OutTradeNo::parse("MP20240101000001").unwrap()),
            out_refund_no: OutRefundNo::parse("RF20240101000001").unwrap(),
            total_fee: Fen::new(1999).unwrap(),
            refund_fee: Fen::new(1999).unwrap(),
            refund_fee_type: None,
            refund_desc: Some("破损".into()),
            refund_account: None,
            notify_url: None,
        };
        assert!(ok.check().is_ok());
        let too_much = RefundRequest {
            refund_fee: Fen::new(2000).unwrap(),
            ..ok.clone()
        };
        assert!(too_much.check().is_err());
        let nothing_named = RefundRequest {
            out_trade_no: None,
            ..ok.clone()
        };
        assert!(nothing_named.check().is_err());
        let long = RefundRequest {
            refund_desc: Some("退".repeat(81)),
            ..ok
        };
        assert!(long.check().is_err());
        assert!(OutRefundNo::parse("RF@2024|x*_-1").is_ok());
        assert!(OutRefundNo::parse("RF 1").is_err());
        assert!(OutRefundNo::parse("R".repeat(65)).is_err());
    }
}
