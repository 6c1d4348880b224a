//! Payment notifications: the reference's V2-NOTIFY vector, the negative checks it asks
//! for, and the acknowledgement bodies.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use wechat_pay::v2::xml::XmlError;
use wechat_pay::v2::{
    self, ACK_SUCCESS, ApiKey, NotifyError, Params, PaymentOutcome, SignType, SignatureError,
    parse_payment_notification, xml,
};
use wechat_pay::{Fen, WeChatTime};

fn key() -> ApiKey {
    ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap()
}

/// The fields of V2-NOTIFY.
fn fields() -> Params {
    [
        ("appid", "wx2421b1c4370ec43b"),
        ("attach", "支付测试"),
        ("bank_type", "CFT"),
        ("cash_fee", "1"),
        ("fee_type", "CNY"),
        ("is_subscribe", "N"),
        ("mch_id", "10000100"),
        ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c"),
        ("openid", "oUpF8uMEb4qRXf22hE3X68TekukE"),
        ("out_trade_no", "1409811653"),
        ("result_code", "SUCCESS"),
        ("return_code", "SUCCESS"),
        ("time_end", "20140903131540"),
        ("total_fee", "1"),
        ("trade_type", "JSAPI"),
        ("transaction_id", "1004400740201409030005092168"),
    ]
    .into_iter()
    .collect()
}

fn body(fields: &Params) -> Vec<u8> {
    xml::encode(fields).unwrap().into_bytes()
}

#[test]
fn vector_v2_notify_md5_and_hmac() {
    let mut md5 = fields();
    assert_eq!(
        v2::sign(&md5, &key(), SignType::Md5),
        "AAC655C5789F84AD6C098495E474F0E7"
    );
    md5.insert("sign", "AAC655C5789F84AD6C098495E474F0E7");
    let n = parse_payment_notification(&body(&md5), &key()).unwrap();
    assert_eq!(n.sign_type, SignType::Md5);
    assert_eq!(n.out_trade_no.as_str(), "1409811653");
    assert_eq!(n.attach.as_deref(), Some("支付测试"));
    let PaymentOutcome::Paid(paid) = &n.outcome else {
        panic!("expected a paid outcome")
    };
    assert_eq!(paid.total_fee, Fen::new(1).unwrap());
    assert_eq!(paid.transaction_id.as_str(), "1004400740201409030005092168");
    assert_eq!(paid.time_end, WeChatTime::parse("20140903131540").unwrap());
    assert_eq!(n.check_merchant("wx2421b1c4370ec43b", "10000100"), Ok(()));

    let mut hmac = fields();
    hmac.insert("sign_type", "HMAC-SHA256");
    assert_eq!(
        v2::sign(&hmac, &key(), SignType::HmacSha256),
        "8D5F9B58663C4459C3AF76D5357FBE2055F1783EF2AA295295B6E932F762DFCE"
    );
    hmac.insert(
        "sign",
        "8D5F9B58663C4459C3AF76D5357FBE2055F1783EF2AA295295B6E932F762DFCE",
    );
    let n = parse_payment_notification(&body(&hmac), &key()).unwrap();
    assert_eq!(n.sign_type, SignType::HmacSha256);
}

fn signed() -> Params {
    let mut f = fields();
    v2::sign_params(&mut f, &key(), SignType::Md5);
    f
}

#[test]
fn removing_any_field_breaks_the_signature() {
    for (name, _) in fields().iter() {
        let mut f = signed();
        f.remove(name);
        let err = parse_payment_notification(&body(&f), &key()).unwrap_err();
        let expected = if name == "return_code" {
            NotifyError::NotSuccess
        } else {
            NotifyError::Signature(SignatureError::Mismatch)
        };
        assert_eq!(err, expected, "removing {name}");
    }
}

#[test]
fn adding_an_unknown_field_breaks_the_signature_and_a_signed_one_is_kept() {
    let mut f = signed();
    f.insert("promotion_detail", "x");
    assert_eq!(
        parse_payment_notification(&body(&f), &key()),
        Err(NotifyError::Signature(SignatureError::Mismatch))
    );
    let mut f = fields();
    f.insert("brand_new", "kept");
    v2::sign_params(&mut f, &key(), SignType::Md5);
    let n = parse_payment_notification(&body(&f), &key()).unwrap();
    assert_eq!(n.fields.get("brand_new"), Some("kept"));
}

#[test]
fn tampering_and_forgery_are_refused() {
    let mut f = signed();
    f.insert("total_fee", "100");
    assert_eq!(
        parse_payment_notification(&body(&f), &key()),
        Err(NotifyError::Signature(SignatureError::Mismatch))
    );

    let mut f = fields();
    assert_eq!(
        parse_payment_notification(&body(&f), &key()),
        Err(NotifyError::Signature(SignatureError::Missing))
    );
    f.insert("sign", "");
    assert_eq!(
        parse_payment_notification(&body(&f), &key()),
        Err(NotifyError::Signature(SignatureError::Missing))
    );

    let other = ApiKey::new("00000000000000000000000000000000").unwrap();
    let mut f = fields();
    v2::sign_params(&mut f, &other, SignType::Md5);
    assert_eq!(
        parse_payment_notification(&body(&f), &key()),
        Err(NotifyError::Signature(SignatureError::Mismatch))
    );

    let mut f = fields();
    f.insert("sign_type", "SHA1");
    v2::sign_params(&mut f, &key(), SignType::Md5);
    assert_eq!(
        parse_payment_notification(&body(&f), &key()),
        Err(NotifyError::Signature(SignatureError::UnknownSignType))
    );

    // Signed with HMAC but claiming MD5 (no sign_type): refused.
    let mut f = fields();
    v2::sign_params(&mut f, &key(), SignType::HmacSha256);
    assert_eq!(
        parse_payment_notification(&body(&f), &key()),
        Err(NotifyError::Signature(SignatureError::Mismatch))
    );

    let fail: Params = [("return_code", "FAIL"), ("return_msg", "x")]
        .into_iter()
        .collect();
    assert_eq!(
        parse_payment_notification(&body(&fail), &key()),
        Err(NotifyError::NotSuccess)
    );
}

#[test]
fn signed_but_invalid_fields_are_refused() {
    for (name, value) in [
        ("total_fee", "1.00"),
        ("time_end", "2014-09-03"),
        ("out_trade_no", "x"),
        ("result_code", "MAYBE"),
    ] {
        let mut f = fields();
        f.insert(name, value);
        v2::sign_params(&mut f, &key(), SignType::Md5);
        assert_eq!(
            parse_payment_notification(&body(&f), &key()),
            Err(NotifyError::Field(name)),
            "{name}"
        );
    }
    let mut f = fields();
    f.remove("transaction_id");
    v2::sign_params(&mut f, &key(), SignType::Md5);
    assert_eq!(
        parse_payment_notification(&body(&f), &key()),
        Err(NotifyError::Field("transaction_id"))
    );
}

#[test]
fn failed_payment_is_reported_as_such() {
    let mut f = fields();
    f.insert("result_code", "FAIL");
    f.insert("err_code", "NOTENOUGH");
    v2::sign_params(&mut f, &key(), SignType::Md5);
    let n = parse_payment_notification(&body(&f), &key()).unwrap();
    assert_eq!(
        n.outcome,
        PaymentOutcome::Failed {
            err_code: Some("NOTENOUGH".into()),
            err_code_des: None
        }
    );
}

#[test]
fn wrong_merchant_is_refused() {
    let n = parse_payment_notification(&body(&signed()), &key()).unwrap();
    assert_eq!(
        n.check_merchant("wxOTHER", "10000100"),
        Err(NotifyError::MerchantMismatch("appid"))
    );
    assert_eq!(
        n.check_merchant("wx2421b1c4370ec43b", "1"),
        Err(NotifyError::MerchantMismatch("mch_id"))
    );
}

#[test]
fn hostile_documents_are_refused_before_anything_else() {
    let xxe = br#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><return_code>&xxe;</return_code></xml>"#;
    assert_eq!(
        parse_payment_notification(xxe, &key()),
        Err(NotifyError::Xml(XmlError::ExternalEntity))
    );
    let lol = br#"<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><xml><x>&c;</x></xml>"#;
    assert_eq!(
        parse_payment_notification(lol, &key()),
        Err(NotifyError::Xml(XmlError::EntityDeclaration))
    );
    let mut big = body(&signed());
    big.extend(std::iter::repeat_n(b' ', 70_000));
    assert!(matches!(
        parse_payment_notification(&big, &key()),
        Err(NotifyError::Xml(XmlError::TooLarge { .. }))
    ));
}

#[test]
fn the_reference_unified_order_body_decodes_and_verifies() {
    let doc = "<xml><appid>wxd678efh567hg6787</appid><body><![CDATA[腾讯充值中心-QQ会员充值]]></body><mch_id>1230000109</mch_id><nonce_str>5K8264ILTKCH16CQ2502SI8ZNMTM67VS</nonce_str><notify_url><![CDATA[https://example.com/wxpay/notify]]></notify_url><openid>oUpF8uMuAJO_M2pxb1Q9zNjWeS6o</openid><out_trade_no>20150806125346</out_trade_no><sign_type>MD5</sign_type><spbill_create_ip>123.12.12.123</spbill_create_ip><total_fee>88</total_fee><trade_type>JSAPI</trade_type><sign>F86DB4CD9AE0CEF6455E1698E507665D</sign></xml>";
    let p = xml::decode(doc.as_bytes()).unwrap();
    assert_eq!(p.get("body"), Some("腾讯充值中心-QQ会员充值"));
    assert_eq!(v2::verify(&p, &key(), SignType::Md5), Ok(()));
}

#[test]
fn acknowledgement_bodies_are_exact() {
    assert_eq!(
        ACK_SUCCESS,
        "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
    );
    let fail = v2::ack_failure("bad ]]> reason\u{0}");
    let parsed = xml::decode(fail.as_bytes()).unwrap();
    assert_eq!(parsed.get("return_code"), Some("FAIL"));
    assert_eq!(parsed.get("return_msg"), Some("bad ]]> reason"));
}

/// A correctly signed body whose `field` holds `value` raw, even a character `xml::encode`
/// refuses to write.
fn signed_body_with(field: &str, value: &str) -> Vec<u8> {
    const MARK: &str = "MARKxMARK";
    let mut p = fields();
    p.insert(field, value);
    v2::sign_params(&mut p, &key(), SignType::Md5);
    p.insert(field, MARK);
    xml::encode(&p).unwrap().replace(MARK, value).into_bytes()
}

#[test]
fn a_signed_notification_with_a_control_character_is_not_well_formed() {
    for (field, value, code) in [
        ("attach", "a\u{0}b", 0),
        ("attach", "\u{1b}[31m", 0x1B),
        ("transaction_id", "100440074020140903\u{0}", 0),
    ] {
        assert_eq!(
            parse_payment_notification(&signed_body_with(field, value), &key()),
            Err(NotifyError::Xml(XmlError::ForbiddenChar { code })),
            "{field}={value:?}"
        );
    }
    // The same through a character reference.
    let referenced = String::from_utf8(signed_body_with("attach", "x"))
        .unwrap()
        .replace("<attach><![CDATA[x]]></attach>", "<attach>&#0;</attach>");
    assert_eq!(
        parse_payment_notification(referenced.as_bytes(), &key()),
        Err(NotifyError::Xml(XmlError::ForbiddenChar { code: 0 }))
    );
}

#[test]
fn a_signed_notification_with_an_oversized_transaction_id_is_refused() {
    let long = "4".repeat(2700);
    assert_eq!(
        parse_payment_notification(&signed_body_with("transaction_id", &long), &key()),
        Err(NotifyError::Field("transaction_id"))
    );
}
