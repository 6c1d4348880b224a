//! WeChat's daily bill (`wechat_pay::v2::bill`) and v3's resource decryption and signature
//! verification (`wechat_pay::v3`): any bytes are refused or read, never a panic; a bill that
//! is read adds up and writes back to itself.

use wechat_pay::v2::BillType;
use wechat_pay::v2::bill::{self, parse_bill};
use wechat_pay::v3;

/// Any bytes as a bill (plain, and as the gzip layer), and as an XML answer to a download.
pub fn bill(data: &[u8]) {
    if let Ok(read) = parse_bill(data) {
        assert!(read.check().is_ok(), "a bill that was read adds up");
        let again = parse_bill(read.render(BillType::All).as_bytes());
        assert_eq!(
            again.as_ref().ok(),
            Some(&read),
            "a read bill writes back to itself"
        );
    }
    if let Ok(inflated) = bill::gunzip(data) {
        let _ = parse_bill(&inflated);
    }
    let _ = bill::read_xml_answer(data);
}

/// Any bytes as a v3 `resource` ciphertext and as a signed answer: refused (never a panic),
/// and a ciphertext only decrypts under the key, nonce and associated data it was made with.
pub fn v3_resource(data: &[u8]) {
    let Ok(key) = v3::ApiV3Key::new("WeChatPayV3TestKey0123456789abcd") else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let _ = v3::decrypt_resource(&key, "c5ac7061fcca", "transaction", &text);
    if let Ok(sealed) = v3::encrypt_resource(&key, "c5ac7061fcca", "transaction", data) {
        let opened = v3::decrypt_resource(&key, "c5ac7061fcca", "transaction", &sealed);
        assert_eq!(
            opened.as_deref().ok(),
            Some(data),
            "a sealed resource opens"
        );
        assert!(v3::decrypt_resource(&key, "c5ac7061fcca", "refund", &sealed).is_err());
    }
    let headers = v3::SignedHeaders {
        timestamp: Some("1764650000"),
        nonce: Some("nonce"),
        signature: Some(&text),
        serial: Some("PUB_KEY_ID_0110000100000000000000000001"),
        signature_type: None,
    };
    let key_of = |_: &str| v3::WeChatPublicKey::from_pem(v3::EXAMPLE_WECHAT_PUBLIC_KEY_PEM).ok();
    assert!(
        v3::verify_signed(&headers, data, 1_764_650_000, key_of).is_err(),
        "bytes nobody signed never verify"
    );
    let _ = v3::WeChatPublicKey::from_spki_der(data);
    let _ = v3::WeChatPublicKey::from_certificate_pem(&text);
    let _ = v3::serial_number(&text);
    if let Some(auth) = v3::parse_authorization(&text) {
        assert!(
            text.contains(&auth.signature),
            "fields come from the header"
        );
    }
    // A certificate list and a notification from anyone's bytes: refused or, if they parse,
    // nothing in them decrypts unless it was sealed under the key.
    let _ = v3::decode_certificates(data, &key);
    if let Ok(notification) = v3::Notification::parse(data) {
        let _ = notification.transaction(&key, "wxd930ea5d5a258f4f", "10000100");
        let _ = notification.refund(&key, "10000100");
    }
}
