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

mod bills {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use wechat_pay::v2::bill::{self, parse_bill};
    use wechat_pay::v2::{Bill, BillRefund, BillRow, BillRowKind, BillType};

    fn row() -> impl Strategy<Value = BillRow> {
        (
            "[0-9]{1,4}",
            "[A-Z0-9]{6,28}",
            1i64..10_000_000,
            prop::option::of((1i64..10_000_000, "[0-9]{6}", prop::bool::ANY)),
            0i64..100_000_000,
        )
            .prop_map(|(txn, number, fen, refund, fee)| {
                let refund = refund.map(|(amount, suffix, ok)| BillRefund {
                    refund_id: format!("5000{suffix}"),
                    out_refund_no: format!("RF{suffix}"),
                    amount_fen: amount,
                    status: if ok { "SUCCESS" } else { "PROCESSING" }.into(),
                });
                BillRow {
                    time: "2026-11-27 11:43:09".into(),
                    appid: "wxd930ea5d5a258f4f".into(),
                    mch_id: "10000100".into(),
                    transaction_id: format!("4200{txn}"),
                    out_trade_no: number,
                    openid: "o71a99f775b6bb03230735950400".into(),
                    kind: if refund.is_some() {
                        BillRowKind::Refund
                    } else {
                        BillRowKind::Payment
                    },
                    order_fen: if refund.is_some() { 0 } else { fen },
                    settlement_fen: if refund.is_some() { 0 } else { fen },
                    fee_e5: if refund.is_some() { -fee } else { fee },
                    refund,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any bytes: a bill or a typed refusal, never a panic.
        #[test]
        fn any_bytes_are_refused_or_read(bytes in vec(any::<u8>(), 0..2048)) {
            let _ = parse_bill(&bytes);
            let _ = bill::gunzip(&bytes);
            let _ = bill::read_xml_answer(&bytes);
        }

        /// Any text made of a bill's own pieces: never a panic, and whatever is read adds up.
        #[test]
        fn bill_shaped_text_is_refused_or_adds_up(
            pieces in vec(prop_oneof![
                Just(bill::HEADER_ALL.to_owned()),
                Just(bill::SUMMARY_HEADER.to_owned()),
                Just("\r\n".to_owned()),
                Just("`".to_owned()),
                Just(",".to_owned()),
                Just("SUCCESS".to_owned()),
                Just("REFUND".to_owned()),
                Just("2026-11-27 11:43:09".to_owned()),
                "-?[0-9]{1,3}(\\.[0-9]{1,5})?",
            ], 0..60)
        ) {
            if let Ok(bill) = parse_bill(pieces.concat().as_bytes()) {
                prop_assert!(bill.check().is_ok());
            }
        }

        /// Any bill written as WeChat writes it reads back equal, plain or gzipped.
        #[test]
        fn rendered_bills_read_back(rows in vec(row(), 0..40), zip in any::<bool>()) {
            let written = Bill::of_rows(rows);
            let text = written.render(BillType::All);
            let bytes = if zip { bill::gunzip(&bill::gzip(text.as_bytes())).unwrap() } else { text.into_bytes() };
            prop_assert_eq!(parse_bill(&bytes).unwrap(), written);
        }

        /// Any change to a summary total makes the bill refused, whole.
        #[test]
        fn a_summary_off_by_anything_is_refused(rows in vec(row(), 1..20), delta in 1i64..1_000_000, which in 0usize..4) {
            let mut bill = Bill::of_rows(rows);
            let s = &mut bill.summary;
            match which {
                0 => s.settlement_fen += delta,
                1 => s.refund_fen += delta,
                2 => s.order_fen += delta,
                _ => s.count += 1,
            }
            prop_assert!(parse_bill(bill.render(BillType::All).as_bytes()).is_err());
        }
    }
}
