//! The daily bill (对账单, `/pay/downloadbill`, §2.14 of the reference): the request, the
//! answer told apart from an XML error, and the bill itself, read by header name and checked
//! against its own summary line before anything in it is used.
//!
//! A bill is not signed. It says what WeChat's books say, no more: a reconciler confirms any
//! difference with an order or refund query before acting on it.

use std::collections::HashMap;
use std::io::Read;

use super::xml;

/// `bill_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillType {
    /// `ALL`: payments and refunds.
    All,
    /// `SUCCESS`: payments only.
    Success,
    /// `REFUND`: refunds only.
    Refund,
}

impl BillType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            BillType::All => "ALL",
            BillType::Success => "SUCCESS",
            BillType::Refund => "REFUND",
        }
    }

    /// Reads a wire value (`ALL` when absent, as WeChat defaults).
    pub fn parse(value: &str) -> Option<BillType> {
        match value {
            "" | "ALL" => Some(BillType::All),
            "SUCCESS" => Some(BillType::Success),
            "REFUND" => Some(BillType::Refund),
            _ => None,
        }
    }

    /// The header line of a bill of this type (the current layout).
    pub fn header(self) -> &'static str {
        match self {
            BillType::All => HEADER_ALL,
            BillType::Success => HEADER_SUCCESS,
            BillType::Refund => HEADER_REFUND,
        }
    }
}

/// A bill download: one Beijing-time day, of one type, optionally gzipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadBillRequest {
    /// The day (Beijing time).
    pub bill_date: time::Date,
    /// Which rows.
    pub bill_type: BillType,
    /// Ask for `tar_type=GZIP`.
    pub gzip: bool,
}

/// `bill_date`'s layout, `yyyyMMdd`.
pub const BILL_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year][month][day]");

impl DownloadBillRequest {
    /// The business fields.
    pub fn params(&self) -> super::Params {
        let mut params = super::Params::new();
        params.insert(
            "bill_date",
            self.bill_date.format(BILL_DATE).unwrap_or_default(),
        );
        params.insert("bill_type", self.bill_type.as_str());
        if self.gzip {
            params.insert("tar_type", "GZIP");
        }
        params
    }
}

/// The `ALL` header.
pub const HEADER_ALL: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
/// The `SUCCESS` header (no refund columns).
pub const HEADER_SUCCESS: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注";
/// The `REFUND` header (the refund's application and success times after `代金券金额`).
pub const HEADER_REFUND: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,退款申请时间,退款成功时间,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
/// The summary header.
pub const SUMMARY_HEADER: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

/// Largest bill accepted, after decompression (a bomb is refused, not inflated).
pub const MAX_BILL_BYTES: usize = 64 * 1024 * 1024;

/// What `交易状态` says a detail line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillRowKind {
    /// `SUCCESS`: a payment.
    Payment,
    /// `REFUND`: a refund.
    Refund,
    /// `REVOKED`: a revoked payment (Quick Pay only).
    Revoked,
}

/// A refund's part of a detail line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRefund {
    /// `微信退款单号`.
    pub refund_id: String,
    /// `商户退款单号`.
    pub out_refund_no: String,
    /// `退款金额`, in fen.
    pub amount_fen: i64,
    /// `退款状态`: `SUCCESS`, `PROCESSING`, `FAIL` or `CHANGE` (kept verbatim).
    pub status: String,
}

/// One detail line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRow {
    /// `交易时间`, `yyyy-MM-dd HH:mm:ss` Beijing time.
    pub time: String,
    /// `公众账号ID`.
    pub appid: String,
    /// `商户号`.
    pub mch_id: String,
    /// `微信订单号`.
    pub transaction_id: String,
    /// `商户订单号`.
    pub out_trade_no: String,
    /// `用户标识`.
    pub openid: String,
    /// `交易状态`.
    pub kind: BillRowKind,
    /// `订单金额` in fen (what the order was for).
    pub order_fen: i64,
    /// `应结订单金额` in fen (0 on refund lines; `订单金额` when the column is absent).
    pub settlement_fen: i64,
    /// The refund, on a refund line.
    pub refund: Option<BillRefund>,
    /// `手续费`, in units of 0.00001 yuan (the bill's five decimals); negative on refund
    /// lines when WeChat returns the fee.
    pub fee_e5: i64,
}

/// The summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillSummary {
    /// `总交易单数`.
    pub count: u64,
    /// `应结订单总金额`, fen.
    pub settlement_fen: i64,
    /// `退款总金额`, fen.
    pub refund_fen: i64,
    /// `手续费总金额`, 0.00001 yuan.
    pub fee_e5: i64,
    /// `订单总金额`, fen.
    pub order_fen: i64,
}

/// A bill that adds up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    /// Its detail lines, in order.
    pub rows: Vec<BillRow>,
    /// Its summary line.
    pub summary: BillSummary,
}

/// Why a bill is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    /// Not UTF-8.
    #[error("the bill is not UTF-8")]
    NotUtf8,
    /// Larger than [`MAX_BILL_BYTES`] (after decompression).
    #[error("the bill is larger than {MAX_BILL_BYTES} bytes")]
    TooLarge,
    /// The gzip layer is broken.
    #[error("the bill's gzip stream is broken: {0}")]
    Gzip(String),
    /// No header line, or one without a column the bill needs.
    #[error("the bill's header lacks column {0}")]
    MissingColumn(&'static str),
    /// No summary.
    #[error("the bill has no summary line")]
    NoSummary,
    /// A line with another number of fields than its header.
    #[error("line {line} has {found} fields, its header {expected}")]
    FieldCount {
        /// 1-based line number.
        line: usize,
        /// Fields found.
        found: usize,
        /// Fields in the header.
        expected: usize,
    },
    /// A field that does not read as what its column holds.
    #[error("line {line}: {column} is not valid: {value:?}")]
    Field {
        /// 1-based line number.
        line: usize,
        /// The column.
        column: &'static str,
        /// The text (cut to 64 characters).
        value: String,
    },
    /// The detail lines do not add up to the summary.
    #[error("the bill does not add up: {0}")]
    Mismatch(String),
    /// Something follows the summary line.
    #[error("line {0} follows the summary line")]
    TrailingLine(usize),
}

/// An amount in yuan with at most `decimals` decimals (`-` allowed when `signed`), as an
/// integer count of 10^-decimals yuan; decimal arithmetic only.
pub fn parse_yuan(text: &str, decimals: u32, signed: bool) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        Some(_) => return None,
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let fraction_len = u32::try_from(fraction.len()).ok()?;
    if whole.is_empty()
        || whole.len() > 15
        || fraction_len > decimals
        || (digits.contains('.') && fraction.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let scale = 10i64.checked_pow(decimals)?;
    let mut value = whole.parse::<i64>().ok()?.checked_mul(scale)?;
    if !fraction.is_empty() {
        let pad = 10i64.checked_pow(decimals - fraction_len)?;
        value = value.checked_add(fraction.parse::<i64>().ok()?.checked_mul(pad)?)?;
    }
    Some(if negative { -value } else { value })
}

/// `value` (in 10^-decimals yuan) as yuan text with exactly `decimals` decimals.
pub fn format_yuan(value: i64, decimals: u32) -> String {
    let scale = 10u64.pow(decimals);
    let magnitude = value.unsigned_abs();
    let sign = if value < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale,
        width = decimals as usize
    )
}

/// Whether `body` is an XML error answer rather than a bill.
pub fn is_xml_answer(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    body[start..].starts_with(b"<xml>") || body[start..].starts_with(b"<xml ")
}

/// The answer to a bill download, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillAnswer {
    /// The day's bill, checked.
    Bill(Bill),
    /// `No Bill Exist` (20002): nothing happened that day.
    NoBill,
}

/// How an XML answer to a bill download reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillXmlAnswer {
    /// `20002` / `No Bill Exist`: an empty day.
    NoBill,
    /// `100` / `System Error`: try later.
    TryLater(String),
    /// Anything else: refused (its `return_msg`).
    Refused(String),
}

/// Reads an XML answer to a bill download.
pub fn read_xml_answer(body: &[u8]) -> Result<BillXmlAnswer, xml::XmlError> {
    let params = xml::decode(body)?;
    let message = params.get("return_msg").unwrap_or("").to_owned();
    let code = params.get("error_code").unwrap_or("");
    Ok(if code == "20002" || message == "No Bill Exist" {
        BillXmlAnswer::NoBill
    } else if code == "100" || message == "System Error" {
        BillXmlAnswer::TryLater(message)
    } else {
        BillXmlAnswer::Refused(message)
    })
}

/// Inflates a gzip body, at most [`MAX_BILL_BYTES`].
pub fn gunzip(body: &[u8]) -> Result<Vec<u8>, BillError> {
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_BILL_BYTES).unwrap_or(u64::MAX) + 1;
    flate2::read::GzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| BillError::Gzip(e.to_string()))?;
    if out.len() > MAX_BILL_BYTES {
        return Err(BillError::TooLarge);
    }
    Ok(out)
}

/// Compresses a bill (the simulator's `tar_type=GZIP`).
pub fn gzip(text: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(text);
    encoder.finish().unwrap_or_default()
}

/// A field's value: without the backtick every detail and summary field starts with.
fn unquote(field: &str) -> &str {
    field.strip_prefix('`').unwrap_or(field)
}

fn cut(value: &str) -> String {
    value.chars().take(64).collect()
}

/// A header's columns, by name.
struct Columns(HashMap<String, usize>, usize);

impl Columns {
    fn of(header: &str) -> Columns {
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let count = names.len();
        Columns(
            names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (n.to_owned(), i))
                .collect(),
            count,
        )
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn require(&self, name: &'static str) -> Result<(), BillError> {
        if self.has(name) {
            Ok(())
        } else {
            Err(BillError::MissingColumn(name))
        }
    }
}

/// One line's fields, read by column name.
struct Line<'a> {
    number: usize,
    fields: Vec<&'a str>,
    columns: &'a Columns,
}

impl<'a> Line<'a> {
    fn new(number: usize, text: &'a str, columns: &'a Columns) -> Result<Line<'a>, BillError> {
        let fields: Vec<&str> = text.split(',').map(unquote).collect();
        if fields.len() != columns.1 {
            return Err(BillError::FieldCount {
                line: number,
                found: fields.len(),
                expected: columns.1,
            });
        }
        Ok(Line {
            number,
            fields,
            columns,
        })
    }

    fn text(&self, column: &str) -> &'a str {
        self.columns
            .0
            .get(column)
            .and_then(|&i| self.fields.get(i).copied())
            .unwrap_or("")
    }

    fn invalid(&self, column: &'static str) -> BillError {
        BillError::Field {
            line: self.number,
            column,
            value: cut(self.text(column)),
        }
    }

    fn yuan(&self, column: &'static str, decimals: u32, signed: bool) -> Result<i64, BillError> {
        parse_yuan(self.text(column), decimals, signed).ok_or_else(|| self.invalid(column))
    }

    /// An amount in fen; 0 when the column is absent from this bill's layout.
    fn fen_or_zero(&self, column: &'static str, signed: bool) -> Result<i64, BillError> {
        if self.columns.has(column) {
            self.yuan(column, 2, signed)
        } else {
            Ok(0)
        }
    }
}

/// Reads a bill (text, after any gzip layer): the header by name, every detail line, the
/// summary line; refuses it unless the details add up to the summary.
///
/// ⚠ The reference marks two points as its own reading: the sign of the fee on refund lines
/// (accepted either way) and whether refund lines count in `总交易单数` (they do, as in its
/// example). The fee total is accepted if it equals the sum as written, the net sum
/// (payments' fees less refunds' fees) or the gross sum.
pub fn parse_bill(body: &[u8]) -> Result<Bill, BillError> {
    if body.len() > MAX_BILL_BYTES {
        return Err(BillError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| BillError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    let header = lines
        .find(|(_, l)| !l.trim().is_empty())
        .map(|(_, l)| l)
        .ok_or(BillError::MissingColumn("交易时间"))?;
    let columns = Columns::of(header);
    for required in [
        "交易时间",
        "商户号",
        "微信订单号",
        "商户订单号",
        "交易状态",
        "订单金额",
        "手续费",
    ] {
        columns.require(required)?;
    }
    let refunds_listed = columns.has("退款金额");
    if refunds_listed {
        for required in ["微信退款单号", "商户退款单号", "退款状态"] {
            columns.require(required)?;
        }
    }

    let mut rows = Vec::new();
    let mut summary = None;
    for (number, line) in lines.by_ref() {
        if line.trim().is_empty() {
            continue;
        }
        if line.trim() == SUMMARY_HEADER || line.starts_with("总交易单数") {
            let summary_columns = Columns::of(line);
            let (number, values) = lines
                .find(|(_, l)| !l.trim().is_empty())
                .ok_or(BillError::NoSummary)?;
            let values = Line::new(number, values, &summary_columns)?;
            summary = Some(read_summary(&values)?);
            break;
        }
        rows.push(read_row(
            &Line::new(number, line, &columns)?,
            refunds_listed,
        )?);
    }
    if let Some((number, _)) = lines.find(|(_, l)| !l.trim().is_empty()) {
        return Err(BillError::TrailingLine(number));
    }
    let summary = summary.ok_or(BillError::NoSummary)?;
    let bill = Bill { rows, summary };
    bill.check()?;
    Ok(bill)
}

fn read_row(line: &Line<'_>, refunds_listed: bool) -> Result<BillRow, BillError> {
    let kind = match line.text("交易状态") {
        "SUCCESS" => BillRowKind::Payment,
        "REFUND" => BillRowKind::Refund,
        "REVOKED" => BillRowKind::Revoked,
        _ => return Err(line.invalid("交易状态")),
    };
    let time = line.text("交易时间");
    if time::PrimitiveDateTime::parse(time, BILL_TIME).is_err() {
        return Err(line.invalid("交易时间"));
    }
    let order_fen = line.yuan("订单金额", 2, false)?;
    let settlement_fen = if line.columns.has("应结订单金额") {
        line.yuan("应结订单金额", 2, false)?
    } else if kind == BillRowKind::Refund {
        0
    } else {
        order_fen
    };
    // A refund line settles nothing (the reference: `应结订单金额` is 0.00 there); one that says
    // otherwise is not a bill we understand. (Found by fuzzing: such a line was read, its
    // amount left out of every sum.)
    if kind == BillRowKind::Refund && settlement_fen != 0 {
        return Err(line.invalid("应结订单金额"));
    }
    let refund = if kind == BillRowKind::Refund {
        if !refunds_listed {
            return Err(line.invalid("交易状态"));
        }
        Some(BillRefund {
            refund_id: line.text("微信退款单号").to_owned(),
            out_refund_no: line.text("商户退款单号").to_owned(),
            amount_fen: line.yuan("退款金额", 2, false)?,
            status: line.text("退款状态").to_owned(),
        })
    } else {
        None
    };
    for column in ["商户订单号", "微信订单号"] {
        if line.text(column).is_empty() {
            return Err(line.invalid(column));
        }
    }
    Ok(BillRow {
        time: time.to_owned(),
        appid: line.text("公众账号ID").to_owned(),
        mch_id: line.text("商户号").to_owned(),
        transaction_id: line.text("微信订单号").to_owned(),
        out_trade_no: line.text("商户订单号").to_owned(),
        openid: line.text("用户标识").to_owned(),
        kind,
        order_fen,
        settlement_fen,
        refund,
        fee_e5: line.yuan("手续费", 5, true)?,
    })
}

fn read_summary(line: &Line<'_>) -> Result<BillSummary, BillError> {
    line.columns.require("总交易单数")?;
    let count = line
        .text("总交易单数")
        .parse::<u64>()
        .map_err(|_| line.invalid("总交易单数"))?;
    let fee_e5 = if line.columns.has("手续费总金额") {
        line.yuan("手续费总金额", 5, true)?
    } else {
        0
    };
    Ok(BillSummary {
        count,
        settlement_fen: line.fen_or_zero("应结订单总金额", false)?,
        refund_fen: line.fen_or_zero("退款总金额", false)?,
        fee_e5,
        order_fen: line.fen_or_zero("订单总金额", false)?,
    })
}

/// `交易时间`'s layout.
const BILL_TIME: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

impl Bill {
    /// The detail lines against the summary: the count, and each sum the summary gives.
    pub fn check(&self) -> Result<(), BillError> {
        let mismatch = |what: &str, details: i128, summary: i128| {
            BillError::Mismatch(format!(
                "{what}: the lines give {details}, the summary {summary}"
            ))
        };
        let count = self.rows.len() as u64;
        if count != self.summary.count {
            return Err(mismatch("count", count.into(), self.summary.count.into()));
        }
        let sum =
            |f: &dyn Fn(&BillRow) -> i64| self.rows.iter().map(|r| i128::from(f(r))).sum::<i128>();
        let payments = |r: &BillRow| r.kind != BillRowKind::Refund;
        let settlement = sum(&|r| if payments(r) { r.settlement_fen } else { 0 });
        if settlement != self.summary.settlement_fen.into() {
            return Err(mismatch(
                "应结订单总金额 (fen)",
                settlement,
                self.summary.settlement_fen.into(),
            ));
        }
        let refunds = sum(&|r| r.refund.as_ref().map_or(0, |f| f.amount_fen));
        if refunds != self.summary.refund_fen.into() {
            return Err(mismatch(
                "退款总金额 (fen)",
                refunds,
                self.summary.refund_fen.into(),
            ));
        }
        let orders = sum(&|r| if payments(r) { r.order_fen } else { 0 });
        if orders != self.summary.order_fen.into() {
            return Err(mismatch(
                "订单总金额 (fen)",
                orders,
                self.summary.order_fen.into(),
            ));
        }
        let as_written = sum(&|r| r.fee_e5);
        let net = sum(&|r| {
            if payments(r) {
                r.fee_e5.abs()
            } else {
                -r.fee_e5.abs()
            }
        });
        let gross = sum(&|r| r.fee_e5.abs());
        let total = i128::from(self.summary.fee_e5);
        if ![as_written, net, gross].contains(&total) {
            return Err(mismatch("手续费总金额 (0.00001 yuan)", as_written, total));
        }
        Ok(())
    }

    /// The bill as WeChat writes it, for `bill_type` (ALL has every column), with `\r\n`
    /// line ends; the summary computed from the rows (fees net, as written).
    pub fn render(&self, bill_type: BillType) -> String {
        let header = bill_type.header();
        let columns: Vec<&str> = header.split(',').collect();
        let mut out = String::new();
        out.push_str(header);
        out.push_str("\r\n");
        for row in &self.rows {
            let fields: Vec<String> = columns
                .iter()
                .map(|c| format!("`{}", row_field(row, c)))
                .collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        out.push_str(SUMMARY_HEADER);
        out.push_str("\r\n");
        let s = &self.summary;
        let summary = [
            s.count.to_string(),
            format_yuan(s.settlement_fen, 2),
            format_yuan(s.refund_fen, 2),
            format_yuan(0, 2),
            format_yuan(s.fee_e5, 5),
            format_yuan(s.order_fen, 2),
            format_yuan(s.refund_fen, 2),
        ];
        let summary: Vec<String> = summary.iter().map(|v| format!("`{v}")).collect();
        out.push_str(&summary.join(","));
        out.push_str("\r\n");
        out
    }

    /// A bill of `rows` with the summary they add up to.
    pub fn of_rows(rows: Vec<BillRow>) -> Bill {
        let payments = |r: &&BillRow| r.kind != BillRowKind::Refund;
        let summary = BillSummary {
            count: rows.len() as u64,
            settlement_fen: rows.iter().filter(payments).map(|r| r.settlement_fen).sum(),
            refund_fen: rows
                .iter()
                .filter_map(|r| r.refund.as_ref())
                .map(|f| f.amount_fen)
                .sum(),
            fee_e5: rows.iter().map(|r| r.fee_e5).sum(),
            order_fen: rows.iter().filter(payments).map(|r| r.order_fen).sum(),
        };
        Bill { rows, summary }
    }
}

/// A row's value for a column of the written layout.
fn row_field(row: &BillRow, column: &str) -> String {
    let refund = row.refund.as_ref();
    let is_refund = row.kind == BillRowKind::Refund;
    match column {
        "交易时间" | "退款申请时间" | "退款成功时间" => row.time.clone(),
        "公众账号ID" => row.appid.clone(),
        "商户号" => row.mch_id.clone(),
        "特约商户号" => "0".into(),
        "微信订单号" => row.transaction_id.clone(),
        "商户订单号" => row.out_trade_no.clone(),
        "用户标识" => row.openid.clone(),
        "交易类型" => "JSAPI".into(),
        "交易状态" => match row.kind {
            BillRowKind::Payment => "SUCCESS".into(),
            BillRowKind::Refund => "REFUND".into(),
            BillRowKind::Revoked => "REVOKED".into(),
        },
        "付款银行" => "OTHERS".into(),
        "货币种类" => "CNY".into(),
        "应结订单金额" => format_yuan(if is_refund { 0 } else { row.settlement_fen }, 2),
        "代金券金额" | "充值券退款金额" => format_yuan(0, 2),
        "微信退款单号" => refund.map_or("0".into(), |f| f.refund_id.clone()),
        "商户退款单号" => refund.map_or("0".into(), |f| f.out_refund_no.clone()),
        "退款金额" | "申请退款金额" => format_yuan(refund.map_or(0, |f| f.amount_fen), 2),
        "退款类型" => refund.map_or(String::new(), |_| "ORIGINAL".into()),
        "退款状态" => refund.map_or(String::new(), |f| f.status.clone()),
        "商品名称" => "Minipay".into(),
        "手续费" => format_yuan(row.fee_e5, 5),
        "费率" => "0.60%".into(),
        "订单金额" => format_yuan(row.order_fen, 2),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's example (§2.14), byte for byte.
    const EXAMPLE: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n`2026-11-27 11:43:09,`wxd930ea5d5a258f4f,`10000100,`0,`,`4200000000000220261127748710,`MP2026112711430948DJENM8EDVH,`o71a99f775b6bb03230735950400,`JSAPI,`SUCCESS,`OTHERS,`CNY,`90.00,`0.00,`0,`0,`0.00,`0.00,`,`,`Minipay-商品,`,`0.54000,`0.60%,`90.00,`0.00,`\r\n`2026-11-27 15:02:11,`wxd930ea5d5a258f4f,`10000100,`0,`,`4200000000000220261127748710,`MP2026112711430948DJENM8EDVH,`o71a99f775b6bb03230735950400,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50000000000000220261127000001,`RF2026112715021100000001,`30.00,`0.00,`ORIGINAL,`SUCCESS,`Minipay-商品,`,`-0.18000,`0.60%,`0.00,`30.00,`\r\n总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n`2,`90.00,`30.00,`0.00,`0.36000,`90.00,`30.00\r\n";

    #[test]
    fn the_reference_example_reads_and_adds_up() {
        let bill = parse_bill(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(bill.rows.len(), 2);
        let (paid, refunded) = (&bill.rows[0], &bill.rows[1]);
        assert_eq!(paid.kind, BillRowKind::Payment);
        assert_eq!(paid.out_trade_no, "MP2026112711430948DJENM8EDVH");
        assert_eq!(paid.transaction_id, "4200000000000220261127748710");
        assert_eq!(
            (paid.order_fen, paid.settlement_fen, paid.fee_e5),
            (9000, 9000, 54_000)
        );
        assert_eq!(refunded.kind, BillRowKind::Refund);
        let refund = refunded.refund.as_ref().unwrap();
        assert_eq!(refund.out_refund_no, "RF2026112715021100000001");
        assert_eq!(
            (refund.amount_fen, refund.status.as_str()),
            (3000, "SUCCESS")
        );
        assert_eq!(refunded.fee_e5, -18_000);
        assert_eq!(bill.summary.count, 2);
        assert_eq!(bill.summary.fee_e5, 36_000);
    }

    #[test]
    fn a_bom_and_bare_newlines_are_accepted() {
        let text = format!("\u{feff}{}", EXAMPLE.replace("\r\n", "\n"));
        assert_eq!(
            parse_bill(text.as_bytes()).unwrap(),
            parse_bill(EXAMPLE.as_bytes()).unwrap()
        );
    }

    #[test]
    fn columns_are_read_by_name_in_any_order() {
        // The same bill with its first two columns swapped everywhere.
        let swapped: String = EXAMPLE
            .split("\r\n")
            .map(|line| match line.split_once(',') {
                Some((first, rest))
                    if !line.starts_with("总交易单数") && !line.starts_with("`2,") =>
                {
                    let (second, tail) = rest.split_once(',').unwrap();
                    format!("{second},{first},{tail}")
                }
                _ => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        assert_eq!(
            parse_bill(swapped.as_bytes()).unwrap(),
            parse_bill(EXAMPLE.as_bytes()).unwrap()
        );
    }

    #[test]
    fn a_bill_that_does_not_add_up_is_refused() {
        let altered = EXAMPLE.replace("`2,`90.00,`30.00", "`2,`91.00,`30.00");
        assert!(matches!(
            parse_bill(altered.as_bytes()),
            Err(BillError::Mismatch(_))
        ));
        let miscounted = EXAMPLE.replace("`2,`90.00", "`3,`90.00");
        assert!(matches!(
            parse_bill(miscounted.as_bytes()),
            Err(BillError::Mismatch(_))
        ));
        let amount = EXAMPLE.replace("`90.00,`0.00,`0,`0", "`80.00,`0.00,`0,`0");
        assert!(matches!(
            parse_bill(amount.as_bytes()),
            Err(BillError::Mismatch(_))
        ));
        let truncated = &EXAMPLE[..EXAMPLE.find("总交易单数").unwrap()];
        assert_eq!(parse_bill(truncated.as_bytes()), Err(BillError::NoSummary));
        let extra_field = EXAMPLE.replacen("`0.60%,`90.00", "`0.60%,`1,`90.00", 1);
        assert!(matches!(
            parse_bill(extra_field.as_bytes()),
            Err(BillError::FieldCount { line: 2, .. })
        ));
        let trailing = format!("{EXAMPLE}`x\r\n");
        assert!(matches!(
            parse_bill(trailing.as_bytes()),
            Err(BillError::TrailingLine(_))
        ));
    }

    #[test]
    fn a_refund_line_that_settles_money_is_refused() {
        // The fuzzer's input: the example with 1.00 settled on its refund line.
        let settled = EXAMPLE.replace("`REFUND,`OTHERS,`CNY,`0.00", "`REFUND,`OTHERS,`CNY,`1.00");
        assert!(matches!(
            parse_bill(settled.as_bytes()),
            Err(BillError::Field {
                line: 3,
                column: "应结订单金额",
                ..
            })
        ));
        // An order amount on a refund line is kept and written back as it was.
        let ordered = EXAMPLE.replace("`0.60%,`0.00,`30.00", "`0.60%,`90.00,`30.00");
        let bill = parse_bill(ordered.as_bytes()).unwrap();
        assert_eq!(bill.rows[1].order_fen, 9000);
        assert_eq!(
            parse_bill(bill.render(BillType::All).as_bytes()).unwrap(),
            bill
        );
    }

    #[test]
    fn yuan_is_converted_with_decimal_arithmetic() {
        assert_eq!(parse_yuan("90.00", 2, false), Some(9000));
        assert_eq!(parse_yuan("0.1", 2, false), Some(10));
        assert_eq!(parse_yuan("12", 2, false), Some(1200));
        assert_eq!(parse_yuan("0.54000", 5, true), Some(54_000));
        assert_eq!(parse_yuan("-0.18000", 5, true), Some(-18_000));
        assert_eq!(parse_yuan("-1.00", 2, false), None);
        for bad in [
            "",
            ".5",
            "1.",
            "1.234",
            "1e3",
            "１.00",
            "+1.00",
            "1,00",
            "999999999999999999",
        ] {
            assert_eq!(parse_yuan(bad, 2, false), None, "{bad:?}");
        }
        assert_eq!(format_yuan(9000, 2), "90.00");
        assert_eq!(format_yuan(-18_000, 5), "-0.18000");
        assert_eq!(format_yuan(5, 2), "0.05");
    }

    #[test]
    fn xml_answers_are_told_apart() {
        let no_bill = b"<xml><return_code>FAIL</return_code><return_msg>No Bill Exist</return_msg><error_code>20002</error_code></xml>";
        assert!(is_xml_answer(no_bill));
        assert_eq!(read_xml_answer(no_bill).unwrap(), BillXmlAnswer::NoBill);
        let busy = b"  <xml><return_code>FAIL</return_code><return_msg>System Error</return_msg><error_code>100</error_code></xml>";
        assert!(is_xml_answer(busy));
        assert!(matches!(
            read_xml_answer(busy).unwrap(),
            BillXmlAnswer::TryLater(_)
        ));
        assert!(!is_xml_answer(EXAMPLE.as_bytes()));
    }

    #[test]
    fn rendered_bills_read_back_for_every_type_and_through_gzip() {
        let bill = parse_bill(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            parse_bill(bill.render(BillType::All).as_bytes()).unwrap(),
            bill
        );
        let zipped = gzip(bill.render(BillType::All).as_bytes());
        assert_eq!(parse_bill(&gunzip(&zipped).unwrap()).unwrap(), bill);
        let payments = Bill::of_rows(
            bill.rows
                .iter()
                .filter(|r| r.refund.is_none())
                .cloned()
                .collect(),
        );
        let read = parse_bill(payments.render(BillType::Success).as_bytes()).unwrap();
        assert_eq!(read.rows.len(), 1);
        assert_eq!(read.rows[0].order_fen, 9000);
        let refunds = Bill::of_rows(
            bill.rows
                .iter()
                .filter(|r| r.refund.is_some())
                .cloned()
                .collect(),
        );
        let read = parse_bill(refunds.render(BillType::Refund).as_bytes()).unwrap();
        assert_eq!(read.rows[0].refund.as_ref().unwrap().amount_fen, 3000);
        assert!(matches!(gunzip(b"not gzip"), Err(BillError::Gzip(_))));
    }
}
