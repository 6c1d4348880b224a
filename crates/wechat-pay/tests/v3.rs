//! API v3 through the public interface: platform certificates and the public key held at
//! once, the certificate list, the refresh on an unknown serial, `Authorization` parsing, the
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

//! v3 `wx.requestPayment` object and notifications.

use std::sync::atomic::{AtomicU32, Ordering};

use wechat_pay::NonceStr;
use wechat_pay::v3::{
    self, ApiV3Key, EXAMPLE_API_V3_KEY, EXAMPLE_MERCHANT_KEY_PEM, EXAMPLE_MERCHANT_SERIAL,
    EXAMPLE_PLATFORM_CERT_PEM, EXAMPLE_PLATFORM_CERT_SERIAL, EXAMPLE_WECHAT_KEY_PEM,
    EXAMPLE_WECHAT_PUBLIC_KEY_ID, EXAMPLE_WECHAT_PUBLIC_KEY_PEM, MerchantKey, Notification,
    NotifyError, PlatformCertificate, Resource, SignedHeaders, Verifier, VerifyError,
    WeChatPublicKey,
};

const NOW: i64 = 1_800_000_000;
const BODY: &[u8] = br#"{"prepay_id":"wx201410272009395522657a690389285100"}"#;

fn wechat(serial: &str) -> MerchantKey {
    MerchantKey::from_pem(EXAMPLE_WECHAT_KEY_PEM, serial).unwrap()
}

fn certificate(serial: &str) -> PlatformCertificate {
    PlatformCertificate::from_pem(
        serial,
        NOW - 10,
        NOW + 3600,
        EXAMPLE_PLATFORM_CERT_PEM.into(),
    )
    .unwrap()
}

/// (timestamp, signature) of `body` signed at `NOW` with nonce `n1`.
fn signed(body: &[u8]) -> (String, String) {
    let ts = NOW.to_string();
    let sig = wechat("x").sign(&v3::response_message(&ts, "n1", body));
    (ts, sig)
}

fn headers<'a>(ts: &'a str, sig: &'a str, serial: &'a str) -> SignedHeaders<'a> {
    SignedHeaders {
        timestamp: Some(ts),
        nonce: Some("n1"),
        signature: Some(sig),
        serial: Some(serial),
        signature_type: Some(v3::AUTH_SCHEME),
    }
}

#[test]
fn the_platform_certificate_yields_its_key_and_serial_without_leading_zeros() {
    let (key, serial) = WeChatPublicKey::from_certificate_pem(EXAMPLE_PLATFORM_CERT_PEM).unwrap();
    assert_eq!(serial, "B2F3E1D5A6C7B8E9F0A1B2C3D4E5F6071829304");
    let (ts, sig) = signed(BODY);
    assert!(key.verifies(&v3::response_message(&ts, "n1", BODY), &sig));
    assert!(WeChatPublicKey::from_certificate_pem(EXAMPLE_WECHAT_PUBLIC_KEY_PEM).is_err());
    // A listing under another serial than the certificate's is refused.
    assert!(
        PlatformCertificate::from_pem("5157F09E", NOW, NOW + 1, EXAMPLE_PLATFORM_CERT_PEM.into())
            .is_err()
    );
}

#[test]
fn certificates_and_the_public_key_verify_at_the_same_time_chosen_by_serial() {
    let verifier = Verifier::new();
    let (ts, sig) = signed(BODY);
    // Nothing held: refused, never accepted.
    assert!(matches!(
        verifier.verify(&headers(&ts, &sig, EXAMPLE_WECHAT_PUBLIC_KEY_ID), BODY, NOW),
        Err(VerifyError::UnknownSerial(_))
    ));
    verifier.set_public_key(
        EXAMPLE_WECHAT_PUBLIC_KEY_ID,
        WeChatPublicKey::from_pem(EXAMPLE_WECHAT_PUBLIC_KEY_PEM).unwrap(),
    );
    verifier.add_certificates(vec![certificate(EXAMPLE_PLATFORM_CERT_SERIAL)], NOW);
    for serial in [
        EXAMPLE_WECHAT_PUBLIC_KEY_ID,
        EXAMPLE_PLATFORM_CERT_SERIAL,
        // Serials compare as numbers: SDKs drop leading zeros, some write lower case.
        "B2F3E1D5A6C7B8E9F0A1B2C3D4E5F6071829304",
        "000b2f3e1d5a6c7b8e9f0a1b2c3d4e5f6071829304",
    ] {
        assert_eq!(
            verifier.verify(&headers(&ts, &sig, serial), BODY, NOW),
            Ok(()),
            "{serial}"
        );
    }
    for serial in [
        "PUB_KEY_ID_0110000100000000000000000002",
        "B2F3E1D5A6C7B8E9F0A1B2C3D4E5F607182930",
    ] {
        assert!(matches!(
            verifier.verify(&headers(&ts, &sig, serial), BODY, NOW),
            Err(VerifyError::UnknownSerial(_))
        ));
    }
    // An expired certificate verifies nothing, and is forgotten on the next update.
    assert!(matches!(
        verifier.verify(
            &headers(&ts, &sig, EXAMPLE_PLATFORM_CERT_SERIAL),
            BODY,
            NOW + 3600
        ),
        Err(VerifyError::Stale(_))
    ));
    assert!(
        verifier
            .key_of(EXAMPLE_PLATFORM_CERT_SERIAL, NOW + 3600)
            .is_none()
    );
    verifier.add_certificates(Vec::new(), NOW + 3600);
    assert!(verifier.certificates().is_empty());
}

/// A second certificate of the same WeChat key (made with `openssl req -x509 -set_serial`): the
/// next certificate of a rotation.
const ROTATED_CERT_PEM: &str = include_str!("data/rotated_platform_cert.pem");
const ROTATED_SERIAL: &str = "1C4E5D6F708192A3B4C5D6E7F8091A2B3C4D5E6F";

#[test]
fn during_a_rotation_both_certificates_verify_until_the_old_one_expires() {
    let verifier = Verifier::new();
    let old = certificate(EXAMPLE_PLATFORM_CERT_SERIAL);
    let next = PlatformCertificate::from_pem(
        ROTATED_SERIAL,
        NOW - 10,
        NOW + 7200,
        ROTATED_CERT_PEM.into(),
    )
    .unwrap();
    verifier.add_certificates(vec![old], NOW);
    // A later list adds the next certificate; the old one stays until it expires.
    verifier.add_certificates(vec![next], NOW);
    assert_eq!(verifier.certificates().len(), 2);
    let (ts, sig) = signed(BODY);
    for serial in [EXAMPLE_PLATFORM_CERT_SERIAL, ROTATED_SERIAL] {
        assert_eq!(
            verifier.verify(&headers(&ts, &sig, serial), BODY, NOW),
            Ok(()),
            "{serial}"
        );
    }
    // An hour on, the old certificate has expired: only the next one is kept and used.
    let later = NOW + 3600;
    verifier.add_certificates(Vec::new(), later);
    let kept: Vec<String> = verifier
        .certificates()
        .into_iter()
        .map(|c| c.serial_no)
        .collect();
    assert_eq!(kept, [ROTATED_SERIAL]);
    assert!(
        verifier
            .key_of(EXAMPLE_PLATFORM_CERT_SERIAL, later)
            .is_none()
    );
    assert!(verifier.key_of(ROTATED_SERIAL, later).is_some());
}

fn sealed_list(key: &ApiV3Key, serial: &str) -> Vec<u8> {
    let resource = Resource::seal(
        key,
        "c5ac7061fcca",
        "certificate",
        Some("certificate"),
        EXAMPLE_PLATFORM_CERT_PEM.as_bytes(),
    )
    .unwrap();
    serde_json::to_vec(&serde_json::json!({"data": [{
        "serial_no": serial,
        "effective_time": "2026-01-01T00:00:00+08:00",
        "expire_time": "2036-01-01T00:00:00+08:00",
        "encrypt_certificate": resource,
    }]}))
    .unwrap()
}

#[test]
fn the_certificate_list_decrypts_under_the_api_v3_key_only() {
    let key = ApiV3Key::new(EXAMPLE_API_V3_KEY).unwrap();
    let list =
        v3::decode_certificates(&sealed_list(&key, EXAMPLE_PLATFORM_CERT_SERIAL), &key).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].serial_no, "B2F3E1D5A6C7B8E9F0A1B2C3D4E5F6071829304");
    assert_eq!(list[0].expire_time, 2_082_729_600);
    let other = ApiV3Key::new("AnotherApiV3Key0123456789abcdefg").unwrap();
    assert!(matches!(
        v3::decode_certificates(&sealed_list(&key, EXAMPLE_PLATFORM_CERT_SERIAL), &other),
        Err(v3::CertificatesError::Decrypt(_))
    ));
    assert!(v3::decode_certificates(&sealed_list(&key, "01"), &key).is_err());
    assert!(v3::decode_certificates(b"{\"data\":7}", &key).is_err());
}

#[tokio::test]
async fn an_unknown_certificate_serial_refreshes_once_then_is_refused() {
    let verifier = Verifier::new();
    let (ts, sig) = signed(BODY);
    let calls = AtomicU32::new(0);
    let fetch = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, String>(vec![certificate(EXAMPLE_PLATFORM_CERT_SERIAL)])
    };
    let h = headers(&ts, &sig, EXAMPLE_PLATFORM_CERT_SERIAL);
    assert_eq!(
        verifier.verify_refreshing(&h, BODY, NOW, fetch).await,
        Ok(())
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Known now: no second fetch.
    assert_eq!(
        verifier.verify_refreshing(&h, BODY, NOW, fetch).await,
        Ok(())
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Another unknown serial within the refresh interval: refused without a fetch.
    let unknown = headers(&ts, &sig, "0C");
    assert!(matches!(
        verifier.verify_refreshing(&unknown, BODY, NOW, fetch).await,
        Err(VerifyError::UnknownSerial(_))
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // A public key id never causes a fetch.
    let fresh = Verifier::new();
    let by_id = headers(&ts, &sig, EXAMPLE_WECHAT_PUBLIC_KEY_ID);
    assert!(
        fresh
            .verify_refreshing(&by_id, BODY, NOW, fetch)
            .await
            .is_err()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // A failed fetch leaves the answer refused.
    let failing = Verifier::new();
    let failed = failing
        .verify_refreshing(&h, BODY, NOW, || async {
            Err::<Vec<PlatformCertificate>, _>("down")
        })
        .await;
    assert!(matches!(failed, Err(VerifyError::UnknownSerial(_))));
}

#[test]
fn authorization_headers_are_read_in_any_order_and_refused_when_incomplete() {
    let key = MerchantKey::from_pem(EXAMPLE_MERCHANT_KEY_PEM, EXAMPLE_MERCHANT_SERIAL).unwrap();
    let header = key.authorization("1230000109", "GET", "/v3/certificates", NOW, "abc", b"");
    let auth = v3::parse_authorization(&header).unwrap();
    assert_eq!(auth.mchid, "1230000109");
    assert_eq!(auth.serial_no, EXAMPLE_MERCHANT_SERIAL);
    assert_eq!(auth.timestamp, NOW.to_string());
    let reordered = format!(
        "{} serial_no=\"{}\",timestamp=\"{}\",signature=\"{}\",nonce_str=\"abc\",mchid=\"1230000109\"",
        v3::AUTH_SCHEME,
        auth.serial_no,
        auth.timestamp,
        auth.signature
    );
    assert_eq!(v3::parse_authorization(&reordered), Some(auth));
    for bad in [
        "Bearer x".to_owned(),
        format!("{} mchid=\"1\"", v3::AUTH_SCHEME),
        format!(
            "{} mchid=\"1\",mchid=\"1\",nonce_str=\"a\",signature=\"s\",timestamp=\"1\",serial_no=\"2\"",
            v3::AUTH_SCHEME
        ),
        format!(
            "{} mchid=1,nonce_str=\"a\",signature=\"s\",timestamp=\"1\",serial_no=\"2\"",
            v3::AUTH_SCHEME
        ),
    ] {
        assert_eq!(v3::parse_authorization(&bad), None, "{bad}");
    }
}

/// V3-PAYSIGN through the `wx.requestPayment` object.
#[test]
fn the_request_payment_object_carries_the_pay_sign_vector() {
    let key = MerchantKey::from_pem(EXAMPLE_MERCHANT_KEY_PEM, EXAMPLE_MERCHANT_SERIAL).unwrap();
    let payment = v3::request_payment(
        "wx8888888888888888",
        "wx201410272009395522657a690389285100",
        &key,
        1_414_561_699,
        &NonceStr::parse("5K8264ILTKCH16CQ2502SI8ZNMTM67VS").unwrap(),
    );
    assert_eq!(payment.sign_type, "RSA");
    assert_eq!(
        payment.package,
        "prepay_id=wx201410272009395522657a690389285100"
    );
    assert_eq!(
        payment.pay_sign,
        "jxYjh6BosU3RNBw6Z9pci5+kUXDaeVYVusUXoeqrz+v1HsizHVAX+W2R7dkZxr0DgfwH5kJov9RDGh0n/01ih0927fffkvZHi728OvxPnuOLFivUvMbvhvDaq0zOoIpg7XQ5Ky86LSkiqhkw1gw+1AAgCgJqdI/yt85H/B4EtEw6byul4oBtr2LiQNaMT02dCe5n7ZJMwVHXPTqZlXf1BFXPkqitHS9zLenr05oakIjvNP/e69AzFljAszBh+j0aKANpzhA77hdiPr9N5jVx+eT4fn4ieTs1QzqSytKBn92XLC0xZXDDDNY3bmgJTOvUx1aHAZxbKaNOdoSQied5pA=="
    );
}

fn notification(event_type: &str, plain: &serde_json::Value, key: &ApiV3Key) -> Notification {
    let resource = Resource::seal(
        key,
        "0123456789ab",
        "transaction",
        Some("transaction"),
        plain.to_string().as_bytes(),
    )
    .unwrap();
    let body = serde_json::json!({
        "id": "EV-2018022511223320873",
        "create_time": "2015-05-20T13:29:35+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": resource,
    });
    Notification::parse(body.to_string().as_bytes()).unwrap()
}

#[test]
fn notifications_decrypt_and_are_checked_against_the_merchant() {
    let key = ApiV3Key::new(EXAMPLE_API_V3_KEY).unwrap();
    let paid = serde_json::json!({
        "appid": "wxd930ea5d5a258f4f", "mchid": "10000100",
        "out_trade_no": "MP20261202000001", "transaction_id": "4200000000202612020000000001",
        "trade_type": "JSAPI", "trade_state": "SUCCESS", "success_time": "2026-12-02T10:00:00+08:00",
        "payer": {"openid": "o1"}, "amount": {"total": 1999, "payer_total": 1999, "currency": "CNY"},
    });
    let n = notification("TRANSACTION.SUCCESS", &paid, &key);
    let t = n
        .transaction(&key, "wxd930ea5d5a258f4f", "10000100")
        .unwrap();
    assert_eq!(t.amount.unwrap().total.unwrap().get(), 1999);
    assert_eq!(
        n.transaction(&key, "wxd930ea5d5a258f4f", "10000101"),
        Err(NotifyError::MerchantMismatch("mchid"))
    );
    assert_eq!(
        n.transaction(&key, "wx0000000000000000", "10000100"),
        Err(NotifyError::MerchantMismatch("appid"))
    );
    let wrong = ApiV3Key::new("AnotherApiV3Key0123456789abcdefg").unwrap();
    assert!(matches!(
        n.transaction(&wrong, "wxd930ea5d5a258f4f", "10000100"),
        Err(NotifyError::Decrypt(_))
    ));
    let mut tampered = n.clone();
    tampered.resource.ciphertext.replace_range(0..4, "AAAA");
    assert!(matches!(
        tampered.transaction(&key, "wxd930ea5d5a258f4f", "10000100"),
        Err(NotifyError::Decrypt(_))
    ));
    assert!(matches!(
        n.refund(&key, "10000100"),
        Err(NotifyError::EventType(_))
    ));
    assert!(Notification::parse(b"{\"id\":1}").is_err());
}
