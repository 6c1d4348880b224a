//! Property tests: signatures round-trip and break on any change; the codec round-trips any
//! value XML can carry; no input of any kind makes the decoder or the notification verifier
//! panic.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use wechat_pay::v2::{
    self, ApiKey, Params, SignType, SignatureError, parse_payment_notification, xml,
};

fn field_name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,15}".prop_filter("sign is special", |n| n != "sign")
}

/// Values XML can carry, heavy on the characters that matter: markup, CDATA terminators,
/// Chinese, emoji, white space.
fn value() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("<".to_string()),
        Just("&".to_string()),
        Just("]]>".to_string()),
        Just("]]".to_string()),
        Just("<![CDATA[".to_string()),
        Just("中文".to_string()),
        Just("😀🎉".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("&amp;".to_string()),
        "[a-zA-Z0-9]{1,8}",
        "\\PC{1,4}",
    ];
    vec(pieces, 0..8)
        .prop_map(|p| p.concat())
        .prop_filter("XML chars only", |s| s.chars().all(xml::is_xml_char))
}

fn params() -> impl Strategy<Value = Params> {
    btree_map(field_name(), value(), 1..12).prop_map(Params::from)
}

fn sign_type() -> impl Strategy<Value = SignType> {
    prop_oneof![Just(SignType::Md5), Just(SignType::HmacSha256)]
}

fn api_key() -> impl Strategy<Value = ApiKey> {
    "[0-9a-zA-Z]{32}".prop_map(|k| ApiKey::new(k).expect("32 alphanumerics"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sign_then_verify_round_trips(p in params(), key in api_key(), st in sign_type()) {
        let mut p = p;
        v2::sign_params(&mut p, &key, st);
        prop_assert_eq!(v2::verify(&p, &key, st), Ok(()));
    }

    #[test]
    fn changing_a_non_empty_field_breaks_verification(
        p in params(), key in api_key(), st in sign_type(), idx in any::<prop::sample::Index>(), extra in "[a-z0-9]{1,4}"
    ) {
        let mut p = p;
        v2::sign_params(&mut p, &key, st);
        let names: Vec<String> = p.iter().filter(|(k, v)| *k != "sign" && !v.is_empty()).map(|(k, _)| k.to_owned()).collect();
        prop_assume!(!names.is_empty());
        let name = idx.get(&names).clone();
        let changed = format!("{}{}", p.get(&name).unwrap_or_default(), extra);
        p.insert(name, changed);
        prop_assert_eq!(v2::verify(&p, &key, st), Err(SignatureError::Mismatch));
    }

    #[test]
    fn another_key_breaks_verification(p in params(), k1 in api_key(), k2 in api_key(), st in sign_type()) {
        prop_assume!(k1.expose() != k2.expose());
        let mut p = p;
        v2::sign_params(&mut p, &k1, st);
        prop_assert_eq!(v2::verify(&p, &k2, st), Err(SignatureError::Mismatch));
    }

    #[test]
    fn encode_then_decode_round_trips(p in params()) {
        let doc = xml::encode(&p).expect("encodable");
        prop_assert_eq!(xml::decode(doc.as_bytes()), Ok(p));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        let _ = xml::decode(&bytes);
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d").expect("valid");
        let _ = parse_payment_notification(&bytes, &key);
    }

    #[test]
    fn mutated_documents_never_panic(p in params(), cuts in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), truncate in any::<prop::sample::Index>()) {
        let mut doc = xml::encode(&p).expect("encodable").into_bytes();
        for (at, byte) in cuts {
            let i = at.index(doc.len());
            doc[i] = byte;
        }
        let end = truncate.index(doc.len() + 1);
        let _ = xml::decode(&doc[..end]);
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d").expect("valid");
        let _ = parse_payment_notification(&doc[..end], &key);
    }

    #[test]
    fn markup_soup_never_panics(parts in vec(prop_oneof![
        Just("<xml>"), Just("</xml>"), Just("<a>"), Just("</a>"), Just("<![CDATA["), Just("]]>"),
        Just("<!DOCTYPE"), Just("<!ENTITY"), Just("<?xml"), Just("?>"), Just("&"), Just(";"), Just("&#x"),
        Just("<"), Just(">"), Just("\""), Just("x"), Just("中"), Just("<b/>"), Just("<!--"), Just("-->"),
    ], 0..40)) {
        let doc = parts.concat();
        let _ = xml::decode(doc.as_bytes());
    }
}
