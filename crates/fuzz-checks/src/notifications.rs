//! WeChat's notifications: the payment notification verifier and the refund notification
//! parser, each fed the bytes as received and, to get past the signature or the encryption a
//! fuzzer cannot forge, the same content signed or encrypted with the merchant's key.

use wechat_pay::v2::xml;
use wechat_pay::v2::{
    self, ApiKey, NotifyError, Params, PaymentNotification, PaymentOutcome, RefundNotification,
    SignType, decrypt_req_info, encrypt_req_info, parse_payment_notification,
    parse_refund_notification,
};

/// The merchant key of the reference's test vectors (V2-NOTIFY, V2-REFUND-REQINFO), so that
/// their documents, kept in the corpus, verify and decrypt.
const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
/// Another merchant's key.
const OTHER_KEY: &str = "ffffffffffffffffffffffffffffffff";

fn key(text: &str) -> ApiKey {
    ApiKey::new(text).unwrap_or_else(|_| unreachable!("32 printable ASCII characters"))
}

/// Any bytes as a payment notification: refused or verified, never a panic, and a verified one
/// is signed with the key and says what its fields say. The same fields, then signed with the
/// key, are refused only for what they hold (`return_code`, a missing or invalid field), never
/// for their signature.
pub fn payment_notification(data: &[u8]) {
    let key = key(KEY);
    if let Ok(n) = parse_payment_notification(data, &key) {
        verified_payment(&n, &key);
    }
    let Ok(mut fields) = xml::decode(data) else {
        return;
    };
    let Ok(sign_type) = SignType::of_message(&fields) else {
        return;
    };
    v2::sign_params(&mut fields, &key, sign_type);
    let Some(doc) = document(&fields) else {
        return;
    };
    match parse_payment_notification(doc.as_bytes(), &key) {
        Ok(n) => {
            assert_eq!(n.fields, fields, "the fields read are the fields sent");
            verified_payment(&n, &key);
        }
        Err(NotifyError::NotSuccess | NotifyError::Field(_)) => {}
        Err(e) => panic!("a correctly signed notification refused: {e}"),
    }
}

/// What a verified payment notification must be.
fn verified_payment(n: &PaymentNotification, key: &ApiKey) {
    let fields = &n.fields;
    assert_eq!(fields.get("return_code"), Some("SUCCESS"));
    assert_eq!(v2::verify(fields, key, n.sign_type), Ok(()));
    assert!(v2::verify(fields, &self::key(OTHER_KEY), n.sign_type).is_err());
    assert_eq!(fields.get("out_trade_no"), Some(n.out_trade_no.as_str()));
    assert_eq!(fields.get("appid"), Some(n.appid.as_str()));
    assert_eq!(fields.get("mch_id"), Some(n.mch_id.as_str()));
    assert_eq!(n.check_merchant(&n.appid, &n.mch_id), Ok(()));
    assert!(
        n.check_merchant(&n.appid, &format!("{}0", n.mch_id))
            .is_err()
    );
    match &n.outcome {
        PaymentOutcome::Paid(paid) => {
            assert_eq!(fields.get("result_code"), Some("SUCCESS"));
            assert_eq!(fields.get("openid"), Some(paid.openid.as_str()));
            assert_eq!(
                fields.get("transaction_id"),
                Some(paid.transaction_id.as_str())
            );
        }
        PaymentOutcome::Failed { .. } => assert_eq!(fields.get("result_code"), Some("FAIL")),
    }
}

/// Any bytes as a refund notification, and as the `req_info` text of one: refused or read,
/// never a panic. The bytes as the plaintext of `req_info`: encrypted with the key they decrypt
/// back to themselves, and inside a notification they are read exactly when they are a flat
/// `<root>` document with valid fields.
pub fn refund_notification(data: &[u8]) {
    let key = key(KEY);
    if let Ok(n) = parse_refund_notification(data, &key) {
        verified_refund(&n);
    }
    let _ = decrypt_req_info(&String::from_utf8_lossy(data), &key);

    let req_info = encrypt_req_info(data, &key);
    match decrypt_req_info(&req_info, &key) {
        Ok(plain) => assert_eq!(plain, data, "req_info decrypts to what was encrypted"),
        // Longer than any req_info WeChat sends: refused before decryption.
        Err(NotifyError::Field("req_info")) => return,
        Err(e) => panic!("our own req_info refused: {e}"),
    }
    let envelope: Params = [
        ("return_code", "SUCCESS"),
        ("appid", "wx2421b1c4370ec43b"),
        ("mch_id", "10000100"),
        ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c"),
        ("req_info", req_info.as_str()),
    ]
    .into_iter()
    .collect();
    let Some(doc) = document(&envelope) else {
        unreachable!("the envelope's fields are plain text")
    };
    let plain = xml::decode_with_root(data, "root");
    match parse_refund_notification(doc.as_bytes(), &key) {
        Ok(n) => {
            assert_eq!(Ok(&n.info.fields), plain.as_ref());
            verified_refund(&n);
        }
        Err(NotifyError::Undecryptable) => assert!(plain.is_err(), "a <root> document refused"),
        Err(NotifyError::Field(_)) => assert!(plain.is_ok(), "no document, yet a field refused"),
        Err(e) => panic!("a refund notification with our own req_info refused: {e}"),
    }
    // Under another key the content is garbage, refused as such.
    assert!(parse_refund_notification(doc.as_bytes(), &self::key(OTHER_KEY)).is_err());
}

/// What a read refund notification must be.
fn verified_refund(n: &RefundNotification) {
    let info = &n.info;
    let fields = &info.fields;
    assert!(
        info.refund_status.is_final(),
        "a notification reports a final state"
    );
    assert_eq!(
        fields.get("out_refund_no"),
        Some(info.out_refund_no.as_str())
    );
    assert_eq!(fields.get("out_trade_no"), Some(info.out_trade_no.as_str()));
    assert_eq!(
        fields.get("refund_status"),
        Some(info.refund_status.as_str())
    );
    assert_eq!(n.check_merchant(&n.appid, &n.mch_id), Ok(()));
    assert!(
        n.check_merchant(&format!("{}0", n.appid), &n.mch_id)
            .is_err()
    );
}

/// `fields` as a notification body, when they can be one: a field named `xml` cannot be
/// written, and a body past the decoder's limit would be refused for its size alone.
fn document(fields: &Params) -> Option<String> {
    xml::encode(fields)
        .ok()
        .filter(|doc| doc.len() <= xml::DEFAULT_MAX_BYTES)
}
