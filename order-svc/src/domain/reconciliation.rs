//! Reconciliation: WeChat's bill of a day against the books, as data and one pure
//! comparison. Healing (which needs WeChat's word, never the bill's) is the use case's.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use time::{Date, OffsetDateTime};

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// The bill has a payment the books do not have as paid.
    PaidAtWechatNotHere,
    /// The books have an order paid that day that the bill does not list.
    PaidHereNotOnBill,
    /// The same order, another amount.
    AmountDiffers,
    /// The bill has a refund the books do not know (made in the merchant portal, say).
    RefundUnknownHere,
    /// A refund of the books is not on the bill, or is there in another state or amount.
    RefundDiffers,
    /// The bill lists the same payment or refund more than once.
    DuplicateLine,
}

impl DifferenceKind {
    /// Every kind.
    pub const ALL: [DifferenceKind; 6] = [
        DifferenceKind::PaidAtWechatNotHere,
        DifferenceKind::PaidHereNotOnBill,
        DifferenceKind::AmountDiffers,
        DifferenceKind::RefundUnknownHere,
        DifferenceKind::RefundDiffers,
        DifferenceKind::DuplicateLine,
    ];

    /// Its name in the API, the database and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DifferenceKind::PaidAtWechatNotHere => "paid_at_wechat_not_here",
            DifferenceKind::PaidHereNotOnBill => "paid_here_not_on_bill",
            DifferenceKind::AmountDiffers => "amount_differs",
            DifferenceKind::RefundUnknownHere => "refund_unknown_here",
            DifferenceKind::RefundDiffers => "refund_differs",
            DifferenceKind::DuplicateLine => "duplicate_line",
        }
    }
}

impl fmt::Display for DifferenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored kind that is not one of ours.
#[derive(Debug, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(String);

impl FromStr for DifferenceKind {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DifferenceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

/// Where a day's reconciliation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Not run yet.
    Pending,
    /// A replica is running it.
    Running,
    /// Bill and books agree.
    Matched,
    /// Differences were found (some may have been healed).
    Differences,
    /// The last run failed (it is tried again).
    Failed,
}

impl RunStatus {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "PENDING",
            RunStatus::Running => "RUNNING",
            RunStatus::Matched => "MATCHED",
            RunStatus::Differences => "DIFFERENCES",
            RunStatus::Failed => "FAILED",
        }
    }
}

impl FromStr for RunStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            RunStatus::Pending,
            RunStatus::Running,
            RunStatus::Matched,
            RunStatus::Differences,
            RunStatus::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

/// One difference, and whether this run healed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Its kind.
    pub kind: DifferenceKind,
    /// The order concerned.
    pub out_trade_no: String,
    /// WeChat's transaction, when known.
    pub transaction_id: String,
    /// The refund concerned, for refund differences.
    pub out_refund_no: String,
    /// What each side says.
    pub detail: String,
    /// Settled by this run, after WeChat confirmed it with a query.
    pub healed: bool,
}

/// A day's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The Beijing-time day.
    pub day: Date,
    /// Where it stands.
    pub status: RunStatus,
    /// Runs so far.
    pub attempts: i32,
    /// Why the last run failed.
    pub error: Option<String>,
    /// `{"bill": {...}, "books": {...}}`.
    pub totals: serde_json::Value,
    /// When the last run started and ended.
    pub started_at: Option<OffsetDateTime>,
    /// When the last run ended.
    pub finished_at: Option<OffsetDateTime>,
    /// Its differences.
    pub differences: Vec<Difference>,
}

/// What a bill line says, as the comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillLine {
    /// A refund line (else a payment line).
    pub refund: bool,
    /// The order.
    pub out_trade_no: String,
    /// WeChat's transaction.
    pub transaction_id: String,
    /// The order's amount (payment lines).
    pub order_fen: i64,
    /// The refund (refund lines).
    pub out_refund_no: String,
    /// Its amount.
    pub refund_fen: i64,
    /// `SUCCESS`, `PROCESSING`, `FAIL` or `CHANGE`.
    pub refund_status: String,
}

/// An order of the books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookOrder {
    /// Its number.
    pub out_trade_no: String,
    /// Its status.
    pub status: String,
    /// Its amount.
    pub amount_fen: i64,
}

impl BookOrder {
    fn paid(&self) -> bool {
        matches!(
            self.status.as_str(),
            "PAID" | "REFUNDING" | "PARTIALLY_REFUNDED" | "REFUNDED"
        )
    }
}

/// A refund of the books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookRefund {
    /// Its number.
    pub out_refund_no: String,
    /// Its order.
    pub out_trade_no: String,
    /// Its status (ours: REQUESTED, PROCESSING, SUCCESS, CHANGE, REFUNDCLOSE, FAILED).
    pub status: String,
    /// Its amount.
    pub amount_fen: i64,
}

impl BookRefund {
    /// Our status as the bill writes it.
    fn as_billed(&self) -> &str {
        match self.status.as_str() {
            "REFUNDCLOSE" | "FAILED" => "FAIL",
            "REQUESTED" => "NOT ACCEPTED",
            other => other,
        }
    }
}

/// The books: the orders paid that day and the refunds requested that day, plus any other
/// order or refund a bill line names (looked up by number).
#[derive(Debug, Clone, Default)]
pub struct Books {
    /// Numbers of the orders paid that day.
    pub paid_that_day: Vec<String>,
    /// Numbers of the refunds requested that day (and accepted by WeChat).
    pub refunded_that_day: Vec<String>,
    /// Every order concerned, by number.
    pub orders: HashMap<String, BookOrder>,
    /// Every refund concerned, by number.
    pub refunds: HashMap<String, BookRefund>,
}

fn difference(
    kind: DifferenceKind,
    out_trade_no: &str,
    transaction_id: &str,
    out_refund_no: &str,
    detail: String,
) -> Difference {
    Difference {
        kind,
        out_trade_no: out_trade_no.to_owned(),
        transaction_id: transaction_id.to_owned(),
        out_refund_no: out_refund_no.to_owned(),
        detail,
        healed: false,
    }
}

/// Every difference between the bill's `lines` and `books`, none healed.
pub fn compare(lines: &[BillLine], books: &Books) -> Vec<Difference> {
    use DifferenceKind as K;
    let mut found = Vec::new();
    let mut payments: BTreeMap<&str, Vec<&BillLine>> = BTreeMap::new();
    let mut refunds: BTreeMap<&str, Vec<&BillLine>> = BTreeMap::new();
    for line in lines {
        if line.refund {
            refunds.entry(&line.out_refund_no).or_default().push(line);
        } else {
            payments.entry(&line.out_trade_no).or_default().push(line);
        }
    }
    for (number, same) in &payments {
        let line = same[0];
        let txn = line.transaction_id.as_str();
        if same.len() > 1 {
            found.push(difference(
                K::DuplicateLine,
                number,
                txn,
                "",
                format!("the bill lists this payment {} times", same.len()),
            ));
        }
        match books.orders.get(*number) {
            None => found.push(difference(
                K::PaidAtWechatNotHere,
                number,
                txn,
                "",
                format!(
                    "WeChat was paid {} fen; there is no such order here",
                    line.order_fen
                ),
            )),
            Some(order) if !order.paid() => found.push(difference(
                K::PaidAtWechatNotHere,
                number,
                txn,
                "",
                format!(
                    "WeChat was paid {} fen; the order is {} here",
                    line.order_fen, order.status
                ),
            )),
            Some(order) if order.amount_fen != line.order_fen => found.push(difference(
                K::AmountDiffers,
                number,
                txn,
                "",
                format!(
                    "the bill says {} fen, the order is for {} fen",
                    line.order_fen, order.amount_fen
                ),
            )),
            Some(_) => {}
        }
    }
    for number in &books.paid_that_day {
        if !payments.contains_key(number.as_str()) {
            let status = books.orders.get(number).map_or("", |o| o.status.as_str());
            found.push(difference(
                K::PaidHereNotOnBill,
                number,
                "",
                "",
                format!("the order is {status} here; the bill has no payment for it"),
            ));
        }
    }
    for (number, same) in &refunds {
        let line = same[0];
        let (order_no, txn) = (line.out_trade_no.as_str(), line.transaction_id.as_str());
        if same.len() > 1 {
            found.push(difference(
                K::DuplicateLine,
                order_no,
                txn,
                number,
                format!("the bill lists this refund {} times", same.len()),
            ));
        }
        match books.refunds.get(*number) {
            None => found.push(difference(
                K::RefundUnknownHere,
                order_no,
                txn,
                number,
                format!(
                    "WeChat refunded {} fen ({}); no such refund here",
                    line.refund_fen, line.refund_status
                ),
            )),
            Some(ours) if ours.amount_fen != line.refund_fen => found.push(difference(
                K::RefundDiffers,
                order_no,
                txn,
                number,
                format!(
                    "the bill says {} fen, the refund here is {} fen",
                    line.refund_fen, ours.amount_fen
                ),
            )),
            Some(ours) if ours.as_billed() != line.refund_status => found.push(difference(
                K::RefundDiffers,
                order_no,
                txn,
                number,
                format!(
                    "the bill says {}, the refund here is {}",
                    line.refund_status, ours.status
                ),
            )),
            Some(_) => {}
        }
    }
    let billed: HashSet<&str> = refunds.keys().copied().collect();
    for number in &books.refunded_that_day {
        if !billed.contains(number.as_str()) {
            let ours = books.refunds.get(number);
            found.push(difference(
                K::RefundDiffers,
                ours.map_or("", |r| r.out_trade_no.as_str()),
                "",
                number,
                format!(
                    "the refund is {} here; the bill does not list it",
                    ours.map_or("", |r| r.status.as_str())
                ),
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(number: &str, fen: i64) -> BillLine {
        BillLine {
            refund: false,
            out_trade_no: number.into(),
            transaction_id: format!("4200{number}"),
            order_fen: fen,
            out_refund_no: String::new(),
            refund_fen: 0,
            refund_status: String::new(),
        }
    }

    fn refund(number: &str, order: &str, fen: i64, status: &str) -> BillLine {
        BillLine {
            refund: true,
            out_refund_no: number.into(),
            refund_fen: fen,
            refund_status: status.into(),
            ..payment(order, 0)
        }
    }

    fn books(orders: &[(&str, &str, i64)], refunds: &[(&str, &str, &str, i64)]) -> Books {
        Books {
            paid_that_day: orders
                .iter()
                .filter(|(_, s, _)| *s == "PAID")
                .map(|(n, _, _)| (*n).to_owned())
                .collect(),
            refunded_that_day: refunds.iter().map(|(n, ..)| (*n).to_owned()).collect(),
            orders: orders
                .iter()
                .map(|(n, s, f)| {
                    let order = BookOrder {
                        out_trade_no: (*n).into(),
                        status: (*s).into(),
                        amount_fen: *f,
                    };
                    ((*n).to_owned(), order)
                })
                .collect(),
            refunds: refunds
                .iter()
                .map(|(n, o, s, f)| {
                    let refund = BookRefund {
                        out_refund_no: (*n).into(),
                        out_trade_no: (*o).into(),
                        status: (*s).into(),
                        amount_fen: *f,
                    };
                    ((*n).to_owned(), refund)
                })
                .collect(),
        }
    }

    fn kinds(found: &[Difference]) -> Vec<(DifferenceKind, String)> {
        found
            .iter()
            .map(|d| {
                let key = if d.out_refund_no.is_empty() {
                    d.out_trade_no.clone()
                } else {
                    d.out_refund_no.clone()
                };
                (d.kind, key)
            })
            .collect()
    }

    #[test]
    fn a_matching_day_has_no_difference() {
        let lines = [
            payment("A", 100),
            payment("B", 200),
            refund("R1", "A", 50, "SUCCESS"),
        ];
        let b = books(
            &[("A", "PARTIALLY_REFUNDED", 100), ("B", "PAID", 200)],
            &[("R1", "A", "SUCCESS", 50)],
        );
        assert!(compare(&lines, &b).is_empty());
        assert!(compare(&[], &Books::default()).is_empty());
    }

    #[test]
    fn each_kind_is_found() {
        use DifferenceKind as K;
        let lines = [
            payment("PENDING-HERE", 100),
            payment("UNKNOWN", 100),
            payment("OTHER-AMOUNT", 150),
            payment("TWICE", 100),
            payment("TWICE", 100),
            refund("PORTAL1", "TWICE", 30, "SUCCESS"),
            refund("OURS-PROCESSING", "OTHER-AMOUNT", 20, "SUCCESS"),
        ];
        let b = books(
            &[
                ("PENDING-HERE", "PENDING", 100),
                ("OTHER-AMOUNT", "PAID", 100),
                ("TWICE", "PAID", 100),
                ("NOT-BILLED", "PAID", 300),
            ],
            &[
                ("OURS-PROCESSING", "OTHER-AMOUNT", "PROCESSING", 20),
                ("LOST-REFUND", "NOT-BILLED", "SUCCESS", 10),
            ],
        );
        let mut found = kinds(&compare(&lines, &b));
        found.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        assert_eq!(
            found,
            vec![
                (K::AmountDiffers, "OTHER-AMOUNT".to_owned()),
                (K::DuplicateLine, "TWICE".to_owned()),
                (K::PaidAtWechatNotHere, "PENDING-HERE".to_owned()),
                (K::PaidAtWechatNotHere, "UNKNOWN".to_owned()),
                (K::PaidHereNotOnBill, "NOT-BILLED".to_owned()),
                (K::RefundDiffers, "LOST-REFUND".to_owned()),
                (K::RefundDiffers, "OURS-PROCESSING".to_owned()),
                (K::RefundUnknownHere, "PORTAL1".to_owned()),
            ]
        );
        assert!(compare(&lines, &b).iter().all(|d| !d.healed));
    }

    #[test]
    fn kinds_and_statuses_read_back() {
        for kind in DifferenceKind::ALL {
            assert_eq!(kind.as_str().parse::<DifferenceKind>().unwrap(), kind);
        }
        assert!("other".parse::<DifferenceKind>().is_err());
        assert_eq!("MATCHED".parse::<RunStatus>().unwrap(), RunStatus::Matched);
    }
}
