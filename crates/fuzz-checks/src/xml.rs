//! The XML codec: any bytes are a document or a typed refusal, and what is accepted writes back
//! to a document that reads the same.

use wechat_pay::v2::xml::{self, EncodeError};

/// Any bytes as a document under `<xml>` and under `<root>` (a refund's `req_info`): refused
/// or decoded, never a panic; what decodes re-encodes and decodes to the same fields.
pub fn xml_decode(data: &[u8]) {
    round_trip(data, "xml");
    round_trip(data, "root");
}

fn round_trip(data: &[u8], root: &str) {
    let Ok(params) = xml::decode_with_root(data, root) else {
        return;
    };
    match xml::encode_with_root(&params, root) {
        // CDATA wrapping can make the document longer than the decoder's limit (only near
        // the limit; the fuzzer's inputs are far below it).
        Ok(doc) if doc.len() > xml::DEFAULT_MAX_BYTES => {}
        Ok(doc) => assert_eq!(
            xml::decode_with_root(doc.as_bytes(), root).as_ref(),
            Ok(&params),
            "re-encoded as {doc:?}"
        ),
        // The one thing the decoder takes and the encoder refuses: a field named `xml`.
        Err(e) => assert!(
            e == EncodeError::InvalidName
                && params.iter().any(|(k, _)| k.eq_ignore_ascii_case("xml")),
            "decoded, then refused by the encoder: {e}"
        ),
    }
}
