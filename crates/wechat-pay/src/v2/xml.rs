//! The codec for WeChat's flat `<xml>` documents, built to refuse hostile input.
//!
//! Decoding never expands or fetches anything: before the XML parser sees a byte, the raw
//! text is scanned and any DOCTYPE, entity declaration, comment, other `<!` markup or
//! processing instruction is refused with its own error (§5.1 of the reference: "billion
//! laughs must be impossible, not merely bounded"). Entity references other than the five
//! predefined ones and numeric character references are refused too, and so is any character
//! XML 1.0 forbids (U+0000–U+001F but tab, CR and LF; surrogates; U+FFFE, U+FFFF), raw or as
//! a character reference.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::errors::{Error as QxError, IllFormedError, SyntaxError};
use quick_xml::events::{BytesStart, Event};

use super::Params;

/// Default cap on a document's size: 64 KiB (WeChat's bodies are a few KB).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;

/// Cap on the number of fields in one document.
pub const MAX_FIELDS: usize = 512;

/// Why a document was refused. Each kind of refusal has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The body is larger than the limit.
    #[error("document larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not valid UTF-8.
    #[error("document is not valid UTF-8")]
    InvalidUtf8,
    /// The body is empty or only white space.
    #[error("empty document")]
    Empty,
    /// A `<!DOCTYPE ...>` declaration (with no entity declarations in it).
    #[error("DOCTYPE declarations are not allowed")]
    Doctype,
    /// An entity declaration (`<!ENTITY ...>`), e.g. the "billion laughs" attack.
    #[error("entity declarations are not allowed")]
    EntityDeclaration,
    /// An external entity or external DTD (`SYSTEM` / `PUBLIC`), e.g. an XXE attack.
    #[error("external entities and DTDs are not allowed")]
    ExternalEntity,
    /// A reference to an entity other than the five predefined ones.
    #[error("reference to an undeclared entity")]
    UnknownEntity,
    /// A processing instruction other than a leading XML declaration.
    #[error("processing instructions are not allowed")]
    ProcessingInstruction,
    /// A comment.
    #[error("comments are not allowed")]
    Comment,
    /// A `<!...>` construct that is neither CDATA nor one of the above.
    #[error("markup declarations are not allowed")]
    Declaration,
    /// An element inside a field: WeChat's documents are flat.
    #[error("nested element inside field `{field}`")]
    Nested {
        /// The field that held an element.
        field: String,
    },
    /// The same field twice.
    #[error("duplicate field `{field}`")]
    DuplicateField {
        /// The repeated field.
        field: String,
    },
    /// The document ends before it is complete.
    #[error("document is truncated")]
    Truncated,
    /// The root element is not the expected one (`<xml>`, or `<root>` for a refund's
    /// `req_info`).
    #[error("unexpected root element")]
    WrongRoot,
    /// Elements carry attributes; WeChat's never do.
    #[error("attributes are not allowed")]
    Attributes,
    /// More fields than [`MAX_FIELDS`].
    #[error("more than {MAX_FIELDS} fields")]
    TooManyFields,
    /// Content after the root element.
    #[error("content after the root element")]
    TrailingContent,
    /// A character XML 1.0 forbids (a control character other than tab, CR and LF, a
    /// surrogate, U+FFFE or U+FFFF), raw or as a character reference: not well-formed.
    #[error("character U+{code:04X} is not allowed in XML")]
    ForbiddenChar {
        /// The code point.
        code: u32,
    },
    /// Anything else that is not well-formed.
    #[error("malformed XML: {0}")]
    Malformed(&'static str),
}

/// Why a parameter map cannot be written as a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A field name that is not `[A-Za-z0-9_]+` starting with a letter or `_`.
    #[error("invalid field name")]
    InvalidName,
    /// A value holding a character XML 1.0 cannot carry (e.g. U+0000).
    #[error("field `{field}` holds a character XML cannot carry")]
    InvalidChar {
        /// The offending field.
        field: String,
    },
}

/// Decodes a document with the default size limit ([`DEFAULT_MAX_BYTES`]).
pub fn decode(body: &[u8]) -> Result<Params, XmlError> {
    decode_with_limit(body, DEFAULT_MAX_BYTES, "xml")
}

/// Decodes a flat document whose root element is `root` instead of `<xml>` (the decrypted
/// `req_info` of a refund notification is a `<root>` document), with the same limits.
pub fn decode_with_root(body: &[u8], root: &str) -> Result<Params, XmlError> {
    decode_with_limit(body, DEFAULT_MAX_BYTES, root)
}

/// Decodes a flat `<xml>` document into its fields, refusing anything over `max_bytes`.
///
/// Text and CDATA are both accepted (and may be mixed within one field); the five predefined
/// entities and numeric character references are decoded.
fn decode_with_limit(body: &[u8], max_bytes: usize, root: &str) -> Result<Params, XmlError> {
    if body.len() > max_bytes {
        return Err(XmlError::TooLarge { limit: max_bytes });
    }
    let text = std::str::from_utf8(body).map_err(|_| XmlError::InvalidUtf8)?;
    if text.trim().is_empty() {
        return Err(XmlError::Empty);
    }
    forbidden_chars(text)?;
    prescan(text)?;
    parse(text, root.as_bytes())
}

/// Refuses a raw character XML 1.0 forbids anywhere in the document (text, CDATA, markup):
/// the parser would pass a NUL in CDATA through as data.
fn forbidden_chars(text: &str) -> Result<(), XmlError> {
    match text.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(XmlError::ForbiddenChar { code: u32::from(c) }),
        None => Ok(()),
    }
}

/// Refuses every `<!` that is not CDATA and every `<?` but a leading XML declaration,
/// before the parser sees the document.
fn prescan(text: &str) -> Result<(), XmlError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'<') {
        let pos = i + offset;
        let rest = &bytes[pos..];
        if rest.starts_with(b"<![CDATA[") {
            let body = pos + 9;
            let end = find(&bytes[body..], b"]]>").ok_or(XmlError::Truncated)?;
            i = body + end + 3;
            continue;
        }
        if rest.starts_with(b"<!") {
            return Err(classify_bang(rest));
        }
        if rest.starts_with(b"<?") {
            let is_decl = pos == 0
                && rest.len() > 5
                && rest.starts_with(b"<?xml")
                && (rest[5].is_ascii_whitespace() || rest[5] == b'?');
            if !is_decl {
                return Err(XmlError::ProcessingInstruction);
            }
        }
        i = pos + 1;
    }
    Ok(())
}

/// Names the refusal for a `<!` construct: an entity declaration (external or not) wherever
/// it stands, else a DOCTYPE, comment or other declaration.
fn classify_bang(rest: &[u8]) -> XmlError {
    let upper = rest.to_ascii_uppercase();
    let is_external = |decl: &[u8]| {
        let head = &decl[..find(decl, b">").unwrap_or(decl.len())];
        find(head, b"SYSTEM").is_some() || find(head, b"PUBLIC").is_some()
    };
    if upper.starts_with(b"<!--") {
        return XmlError::Comment;
    }
    if upper.starts_with(b"<!DOCTYPE") || upper.starts_with(b"<!ENTITY") {
        if let Some(at) = find(&upper, b"<!ENTITY") {
            return if is_external(&upper[at..]) {
                XmlError::ExternalEntity
            } else {
                XmlError::EntityDeclaration
            };
        }
        // An external DTD (`<!DOCTYPE x SYSTEM "...">`) would be fetched by a careless parser.
        let head_end = [find(&upper, b"["), find(&upper, b">")]
            .into_iter()
            .flatten()
            .min();
        let head = &upper[..head_end.unwrap_or(upper.len())];
        if find(head, b"SYSTEM").is_some() || find(head, b"PUBLIC").is_some() {
            return XmlError::ExternalEntity;
        }
        return XmlError::Doctype;
    }
    XmlError::Declaration
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where the parser stands.
enum State {
    /// Before the root element.
    Prolog,
    /// Inside `<xml>`, between fields.
    Root,
    /// Inside a field, collecting its value.
    Field { name: String, value: String },
    /// After `</xml>`.
    Done,
}

fn parse(text: &str, root_name: &[u8]) -> Result<Params, XmlError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    let mut params = Params::new();
    let mut state = State::Prolog;
    loop {
        let event = reader.read_event().map_err(map_parser_error)?;
        state = match (state, event) {
            (_, Event::DocType(_)) => return Err(XmlError::Doctype),
            (_, Event::PI(_)) => return Err(XmlError::ProcessingInstruction),
            (_, Event::Comment(_)) => return Err(XmlError::Comment),
            (State::Prolog, Event::Decl(_)) => State::Prolog,
            (State::Prolog, Event::Start(e)) => {
                root(&e, root_name)?;
                State::Root
            }
            (State::Prolog, Event::Empty(e)) => {
                root(&e, root_name)?;
                State::Done
            }
            (State::Root, Event::Start(e)) => State::Field {
                name: field_name(&e)?,
                value: String::new(),
            },
            (State::Root, Event::Empty(e)) => {
                insert(&mut params, field_name(&e)?, String::new())?;
                State::Root
            }
            (State::Root, Event::End(_)) => State::Done,
            (State::Field { name, mut value }, Event::Text(t)) => {
                let raw = std::str::from_utf8(&t).map_err(|_| XmlError::InvalidUtf8)?;
                value.push_str(&unescape(raw)?);
                State::Field { name, value }
            }
            (State::Field { name, mut value }, Event::CData(c)) => {
                let raw = std::str::from_utf8(&c).map_err(|_| XmlError::InvalidUtf8)?;
                value.push_str(raw);
                State::Field { name, value }
            }
            (State::Field { name, .. }, Event::Start(_) | Event::Empty(_)) => {
                return Err(XmlError::Nested { field: name });
            }
            (State::Field { name, value }, Event::End(_)) => {
                insert(&mut params, name, value)?;
                State::Root
            }
            (s @ (State::Prolog | State::Root | State::Done), Event::Text(t)) => {
                if !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(match s {
                        State::Done => XmlError::TrailingContent,
                        _ => XmlError::Malformed("text outside a field"),
                    });
                }
                s
            }
            (State::Done, Event::Eof) => return Ok(params),
            (_, Event::Eof) => return Err(XmlError::Truncated),
            (State::Done, _) => return Err(XmlError::TrailingContent),
            (_, Event::Decl(_)) => return Err(XmlError::ProcessingInstruction),
            (_, Event::CData(_)) => return Err(XmlError::Malformed("CDATA outside a field")),
            (_, Event::End(_)) => return Err(XmlError::Malformed("unexpected end tag")),
        };
    }
}

fn root(e: &BytesStart<'_>, name: &[u8]) -> Result<(), XmlError> {
    if e.name().as_ref() != name {
        return Err(XmlError::WrongRoot);
    }
    no_attributes(e)
}

fn no_attributes(e: &BytesStart<'_>) -> Result<(), XmlError> {
    if e.attributes().next().is_some() {
        return Err(XmlError::Attributes);
    }
    Ok(())
}

fn field_name(e: &BytesStart<'_>) -> Result<String, XmlError> {
    no_attributes(e)?;
    let name = e.name();
    let name = std::str::from_utf8(name.as_ref()).map_err(|_| XmlError::InvalidUtf8)?;
    if !is_valid_name(name) {
        return Err(XmlError::Malformed("invalid field name"));
    }
    Ok(name.to_owned())
}

fn insert(params: &mut Params, name: String, value: String) -> Result<(), XmlError> {
    if params.contains(&name) {
        return Err(XmlError::DuplicateField { field: name });
    }
    if params.len() >= MAX_FIELDS {
        return Err(XmlError::TooManyFields);
    }
    params.insert(name, value);
    Ok(())
}

fn map_parser_error(e: QxError) -> XmlError {
    match e {
        QxError::Syntax(
            SyntaxError::UnclosedTag
            | SyntaxError::UnclosedCData
            | SyntaxError::UnclosedComment
            | SyntaxError::UnclosedDoctype
            | SyntaxError::UnclosedPIOrXmlDecl,
        ) => XmlError::Truncated,
        QxError::Syntax(SyntaxError::InvalidBangMarkup) => XmlError::Declaration,
        QxError::IllFormed(IllFormedError::MissingEndTag(_)) => XmlError::Truncated,
        QxError::IllFormed(
            IllFormedError::MismatchedEndTag { .. } | IllFormedError::UnmatchedEndTag(_),
        ) => XmlError::Malformed("mismatched end tag"),
        QxError::Encoding(_) => XmlError::InvalidUtf8,
        _ => XmlError::Malformed("not well-formed"),
    }
}

/// Decodes the five predefined entities and numeric character references; refuses any other
/// reference.
fn unescape(raw: &str) -> Result<Cow<'_, str>, XmlError> {
    if !raw.contains('&') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after
            .find(';')
            .ok_or(XmlError::Malformed("'&' without ';'"))?;
        let name = &after[..semi];
        let ch = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => numeric_reference(name)?,
        };
        out.push(ch);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

fn numeric_reference(name: &str) -> Result<char, XmlError> {
    let code = if let Some(hex) = name.strip_prefix("#x") {
        if hex.is_empty() || hex.len() > 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(XmlError::Malformed("bad character reference"));
        }
        u32::from_str_radix(hex, 16).map_err(|_| XmlError::Malformed("bad character reference"))?
    } else if let Some(dec) = name.strip_prefix('#') {
        if dec.is_empty() || dec.len() > 7 || !dec.bytes().all(|b| b.is_ascii_digit()) {
            return Err(XmlError::Malformed("bad character reference"));
        }
        dec.parse()
            .map_err(|_| XmlError::Malformed("bad character reference"))?
    } else {
        return Err(XmlError::UnknownEntity);
    };
    char::from_u32(code)
        .filter(|&c| is_xml_char(c))
        .ok_or(XmlError::ForbiddenChar { code })
}

/// Whether XML 1.0 can carry `c` (the `Char` production).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Writes `params` as a flat `<xml>` document: digit-only values bare, every other value in
/// CDATA (a value containing `]]>` is split across two CDATA sections), `sign` last.
///
/// ```
/// use wechat_pay::v2::{Params, xml};
/// let params: Params = [("total_fee", "1"), ("body", "a]]>b")].into_iter().collect();
/// let doc = xml::encode(&params).unwrap();
/// assert_eq!(doc, "<xml><body><![CDATA[a]]]]><![CDATA[>b]]></body><total_fee>1</total_fee></xml>");
/// assert_eq!(xml::decode(doc.as_bytes()).unwrap(), params);
/// ```
pub fn encode(params: &Params) -> Result<String, EncodeError> {
    encode_with_root(params, "xml")
}

/// Writes `params` as [`encode`] does, under the root element `root` (a valid XML name).
pub fn encode_with_root(params: &Params, root: &str) -> Result<String, EncodeError> {
    if !is_valid_name(root) {
        return Err(EncodeError::InvalidName);
    }
    let mut out = String::with_capacity(
        64 + params
            .iter()
            .map(|(k, v)| 2 * k.len() + v.len() + 17)
            .sum::<usize>(),
    );
    out.push('<');
    out.push_str(root);
    out.push('>');
    let fields = params
        .iter()
        .filter(|(k, _)| *k != "sign")
        .chain(params.iter().filter(|(k, _)| *k == "sign"));
    for (name, value) in fields {
        if !is_valid_name(name) || name.eq_ignore_ascii_case("xml") {
            return Err(EncodeError::InvalidName);
        }
        if !value.chars().all(is_xml_char) {
            return Err(EncodeError::InvalidChar {
                field: name.to_owned(),
            });
        }
        out.push('<');
        out.push_str(name);
        out.push('>');
        if value.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(value);
        } else if !value.is_empty() {
            out.push_str("<![CDATA[");
            out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
            out.push_str("]]>");
        }
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    out.push_str("</");
    out.push_str(root);
    out.push('>');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cdata_and_entities() {
        let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  <a><![CDATA[x<y]]></a>\n  <b>1 &amp; 2 &lt;3&gt; &quot;&apos; &#20013;&#x6587;</b><c/><d></d><e>p<![CDATA[q]]>r</e>\n</xml>\n";
        let p = decode(doc.as_bytes()).unwrap();
        assert_eq!(p.get("a"), Some("x<y"));
        assert_eq!(p.get("b"), Some("1 & 2 <3> \"' 中文"));
        assert_eq!(p.get("c"), Some(""));
        assert_eq!(p.get("d"), Some(""));
        assert_eq!(p.get("e"), Some("pqr"));
        assert_eq!(p.len(), 5);
    }

    #[test]
    fn leading_and_trailing_spaces_inside_values_are_kept() {
        let p = decode(b"<xml><a> x </a></xml>").unwrap();
        assert_eq!(p.get("a"), Some(" x "));
    }

    #[test]
    fn each_refusal_has_its_own_error() {
        let cases: &[(&str, XmlError)] = &[
            ("", XmlError::Empty),
            ("<!DOCTYPE xml><xml><a>1</a></xml>", XmlError::Doctype),
            ("<!DOCTYPE>", XmlError::Doctype),
            (
                "<!DOCTYPE xml [<!ENTITY x \"y\">]><xml><a>&x;</a></xml>",
                XmlError::EntityDeclaration,
            ),
            (
                "<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><a>&x;</a></xml>",
                XmlError::ExternalEntity,
            ),
            (
                "<!DOCTYPE xml SYSTEM \"http://evil/x.dtd\"><xml/>",
                XmlError::ExternalEntity,
            ),
            ("<xml><a>&x;</a></xml>", XmlError::UnknownEntity),
            (
                "<xml><?php x?><a>1</a></xml>",
                XmlError::ProcessingInstruction,
            ),
            ("<xml><a>1</a></xml><?x?>", XmlError::ProcessingInstruction),
            ("<xml><!-- c --><a>1</a></xml>", XmlError::Comment),
            ("<xml><!ELEMENT a ANY><a>1</a></xml>", XmlError::Declaration),
            (
                "<xml><a><b>1</b></a></xml>",
                XmlError::Nested { field: "a".into() },
            ),
            (
                "<xml><a>1</a><a>2</a></xml>",
                XmlError::DuplicateField { field: "a".into() },
            ),
            ("<xml><a>1</a>", XmlError::Truncated),
            ("<xml><a>1</a", XmlError::Truncated),
            ("<xml><a><![CDATA[1", XmlError::Truncated),
            ("<root><a>1</a></root>", XmlError::WrongRoot),
            ("<xml a=\"1\"><a>1</a></xml>", XmlError::Attributes),
            ("<xml><a>1</a></xml><xml/>", XmlError::TrailingContent),
            (
                "<xml><a>1</b></xml>",
                XmlError::Malformed("mismatched end tag"),
            ),
            (
                "<xml>hello<a>1</a></xml>",
                XmlError::Malformed("text outside a field"),
            ),
            (
                "<xml><a>1 & 2</a></xml>",
                XmlError::Malformed("'&' without ';'"),
            ),
            (
                "<xml><a>&#0;</a></xml>",
                XmlError::ForbiddenChar { code: 0 },
            ),
        ];
        for (doc, expected) in cases {
            assert_eq!(decode(doc.as_bytes()).as_ref(), Err(expected), "{doc}");
        }
        assert_eq!(
            decode(b"<xml><a>\xff</a></xml>"),
            Err(XmlError::InvalidUtf8)
        );
        let big = format!("<xml><a>{}</a></xml>", "x".repeat(DEFAULT_MAX_BYTES));
        assert_eq!(
            decode(big.as_bytes()),
            Err(XmlError::TooLarge {
                limit: DEFAULT_MAX_BYTES
            })
        );
        let many: String = (0..=MAX_FIELDS)
            .map(|i| format!("<f{i}>1</f{i}>"))
            .collect();
        assert_eq!(
            decode(format!("<xml>{many}</xml>").as_bytes()),
            Err(XmlError::TooManyFields)
        );
    }

    #[test]
    fn characters_xml_forbids_are_refused_raw_or_referenced() {
        let cases: &[(&str, u32)] = &[
            ("<xml><a>x\u{0}y</a></xml>", 0),
            ("<xml><a><![CDATA[x\u{0}y]]></a></xml>", 0),
            ("<xml><a><![CDATA[\u{1}]]></a></xml>", 1),
            ("<xml><a>\u{8}</a></xml>", 8),
            ("<xml><a>\u{b}</a></xml>", 0xB),
            ("<xml><a>\u{1f}</a></xml>", 0x1F),
            ("<xml><a>\u{fffe}</a></xml>", 0xFFFE),
            ("<xml>\u{0}<a>1</a></xml>", 0),
            ("<xml><a>&#0;</a></xml>", 0),
            ("<xml><a>&#1;</a></xml>", 1),
            ("<xml><a>&#x1F;</a></xml>", 0x1F),
            ("<xml><a>&#xD800;</a></xml>", 0xD800),
            ("<xml><a>&#xFFFF;</a></xml>", 0xFFFF),
            ("<xml><a>&#x110000;</a></xml>", 0x11_0000),
        ];
        for (doc, code) in cases {
            assert_eq!(
                decode(doc.as_bytes()),
                Err(XmlError::ForbiddenChar { code: *code }),
                "{doc:?}"
            );
        }
    }

    #[test]
    fn tab_cr_and_lf_are_data() {
        let p = decode(b"<xml><a>x\ty\nz\r</a><b><![CDATA[\t\n]]></b><c>&#9;&#10;&#13;</c></xml>")
            .unwrap();
        assert_eq!(p.get("a"), Some("x\ty\nz\r"));
        assert_eq!(p.get("b"), Some("\t\n"));
        assert_eq!(p.get("c"), Some("\t\n\r"));
    }

    #[test]
    fn doctype_text_inside_cdata_is_just_data() {
        let p = decode(b"<xml><a><![CDATA[<!DOCTYPE x><?pi?>&x;]]></a></xml>").unwrap();
        assert_eq!(p.get("a"), Some("<!DOCTYPE x><?pi?>&x;"));
    }

    #[test]
    fn encode_refuses_what_xml_cannot_carry() {
        let p: Params = [("a", "x\u{0}")].into_iter().collect();
        assert_eq!(
            encode(&p),
            Err(EncodeError::InvalidChar { field: "a".into() })
        );
        let p: Params = [("a b", "x")].into_iter().collect();
        assert_eq!(encode(&p), Err(EncodeError::InvalidName));
    }
}
