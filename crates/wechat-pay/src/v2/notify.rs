//! Payment notifications (WeChat → `notify_url`): parse and verify, in named steps, before
//! any field is used; and the exact acknowledgement bodies.

use super::Params;
use super::sign::{ApiKey, SignType, SignatureError, verify};
use super::xml::{self, XmlError};
use crate::domain::{Fen, OpenId, OutTradeNo, TransactionId, WeChatTime};

/// The success acknowledgement: WeChat stops retrying.
pub const ACK_SUCCESS: &str = "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>";

/// A failure acknowledgement with a short reason: WeChat will retry.
///
/// ```
/// assert_eq!(
///     wechat_pay::v2::ack_failure("签名失败"),
///     "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[签名失败]]></return_msg></xml>"
/// );
/// ```
pub fn ack_failure(reason: &str) -> String {
    let reason: String = reason
        .chars()
        .filter(|&c| xml::is_xml_char(c))
        .collect::<String>()
        .replace("]]>", "]]]]><![CDATA[>");
    format!(
        "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[{reason}]]></return_msg></xml>"
    )
}

/// Why a notification was refused. Each is answered with a failure ack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The body is not an acceptable document.
    #[error("malformed notification: {0}")]
    Xml(#[from] XmlError),
    /// `return_code` is not `SUCCESS`: nothing in it can be trusted.
    #[error("notification return_code is not SUCCESS")]
    NotSuccess,
    /// Missing, unknown-algorithm or wrong signature.
    #[error("notification signature: {0}")]
    Signature(#[from] SignatureError),
    /// Signed, but a required field is missing or invalid.
    #[error("notification field `{0}` is missing or invalid")]
    Field(&'static str),
    /// Signed, but for another appid or mch_id.
    #[error("notification is for another merchant (field `{0}`)")]
    MerchantMismatch(&'static str),
    /// A refund notification's `req_info` does not decrypt under the merchant's key (forged,
    /// another key's, or damaged).
    #[error("refund notification req_info does not decrypt")]
    Undecryptable,
}

/// A verified payment notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotification {
    /// The appid (check it with [`PaymentNotification::check_merchant`]).
    pub appid: String,
    /// The merchant.
    pub mch_id: String,
    /// Our order number.
    pub out_trade_no: OutTradeNo,
    /// The algorithm that signed it.
    pub sign_type: SignType,
    /// Paid, or a failed payment.
    pub outcome: PaymentOutcome,
    /// Echo of unified order's `attach`.
    pub attach: Option<String>,
    /// Every field received, all covered by the verified signature.
    pub fields: Params,
}

/// What the notification reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// `result_code=SUCCESS`: the user paid.
    Paid(PaidDetails),
    /// `result_code=FAIL`.
    Failed {
        /// `err_code`.
        err_code: Option<String>,
        /// `err_code_des`.
        err_code_des: Option<String>,
    },
}

/// The facts of a successful payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidDetails {
    /// WeChat's order number.
    pub transaction_id: TransactionId,
    /// Order amount in fen: compare it with the stored amount.
    pub total_fee: Fen,
    /// Amount paid in cash.
    pub cash_fee: Fen,
    /// Currency (`CNY` when absent).
    pub fee_type: String,
    /// The payer.
    pub openid: OpenId,
    /// `JSAPI` for Mini Programs.
    pub trade_type: String,
    /// Paying bank.
    pub bank_type: String,
    /// When payment completed.
    pub time_end: WeChatTime,
}

/// Parses and verifies a payment notification body with the merchant's key, in the order
/// the reference prescribes: parse safely, require `return_code=SUCCESS` and a `sign`,
/// verify it with the notification's own `sign_type` (absent means MD5), and only then read
/// the fields.
///
/// The caller still checks the merchant ([`PaymentNotification::check_merchant`]) and the
/// order (amount, state).
pub fn parse_payment_notification(
    body: &[u8],
    key: &ApiKey,
) -> Result<PaymentNotification, NotifyError> {
    let fields = xml::decode(body)?;
    check_return_code(&fields)?;
    check_signature(&fields, key)?;
    decode_fields(fields)
}

fn check_return_code(fields: &Params) -> Result<(), NotifyError> {
    if fields.get("return_code") != Some("SUCCESS") {
        return Err(NotifyError::NotSuccess);
    }
    Ok(())
}

fn check_signature(fields: &Params, key: &ApiKey) -> Result<(), NotifyError> {
    if fields.get_non_empty("sign").is_none() {
        return Err(NotifyError::Signature(SignatureError::Missing));
    }
    let sign_type = SignType::of_message(fields)?;
    verify(fields, key, sign_type)?;
    Ok(())
}

fn decode_fields(fields: Params) -> Result<PaymentNotification, NotifyError> {
    let text = |name: &'static str| {
        fields
            .get_non_empty(name)
            .map(str::to_owned)
            .ok_or(NotifyError::Field(name))
    };
    let amount = |name: &'static str| -> Result<Fen, NotifyError> {
        fields
            .get(name)
            .ok_or(NotifyError::Field(name))?
            .parse()
            .map_err(|_| NotifyError::Field(name))
    };
    let outcome = match fields.get("result_code") {
        Some("SUCCESS") => {
            let time_end = WeChatTime::parse(&text("time_end")?)
                .map_err(|_| NotifyError::Field("time_end"))?;
            let fee_type = fields.get_non_empty("fee_type").unwrap_or("CNY").to_owned();
            PaymentOutcome::Paid(PaidDetails {
                transaction_id: TransactionId::parse(text("transaction_id")?)
                    .map_err(|_| NotifyError::Field("transaction_id"))?,
                total_fee: amount("total_fee")?,
                cash_fee: amount("cash_fee")?,
                fee_type,
                openid: OpenId::parse(text("openid")?).map_err(|_| NotifyError::Field("openid"))?,
                trade_type: text("trade_type")?,
                bank_type: text("bank_type")?,
                time_end,
            })
        }
        Some("FAIL") => PaymentOutcome::Failed {
            err_code: fields.get_non_empty("err_code").map(str::to_owned),
            err_code_des: fields.get_non_empty("err_code_des").map(str::to_owned),
        },
        _ => return Err(NotifyError::Field("result_code")),
    };
    let out_trade_no =
        OutTradeNo::parse(text("out_trade_no")?).map_err(|_| NotifyError::Field("out_trade_no"))?;
    let sign_type = SignType::of_message(&fields)?;
    Ok(PaymentNotification {
        appid: text("appid")?,
        mch_id: text("mch_id")?,
        out_trade_no,
        sign_type,
        outcome,
        attach: fields.get_non_empty("attach").map(str::to_owned),
        fields,
    })
}

impl PaymentNotification {
    /// Refuses a notification for another appid or mch_id (a valid signature from a key
    /// shared with another app must not pay our order).
    pub fn check_merchant(&self, appid: &str, mch_id: &str) -> Result<(), NotifyError> {
        same_merchant((&self.appid, &self.mch_id), (appid, mch_id))
    }
}

/// Refuses a notification's `(appid, mch_id)` unless it is `expected`, naming the first
/// field that differs.
pub(crate) fn same_merchant(got: (&str, &str), expected: (&str, &str)) -> Result<(), NotifyError> {
    if got.0 != expected.0 {
        return Err(NotifyError::MerchantMismatch("appid"));
    }
    if got.1 != expected.1 {
        return Err(NotifyError::MerchantMismatch("mch_id"));
    }
    Ok(())
}
