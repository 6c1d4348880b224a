//! The daily bill (`/pay/downloadbill`), made from the simulator's own records: a payment line
//! for each order paid that Beijing-time day, a refund line for each refund requested that
//! day (with its status now), the fee at the configured rate; and the adjustments the control
//! API makes to a day's bill so that a reconciler meets every kind of difference.
//!
//! ⚠ WeChat generates day D's bill from 09:00 on D+1; tests cannot wait a day, so the
//! simulator also answers for the current day (what has happened so far). Which day a
//! refund line falls on is not stated by the reference; the simulator uses the day the
//! refund was requested.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wechat_pay::v2::bill::{self, BILL_DATE};
use wechat_pay::v2::{Bill, BillRefund, BillRow, BillRowKind, BillType, Params, RefundStatus, xml};

use crate::sim::{Sim, lock};

/// What an adjustment does to a day's bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The order's lines are left out.
    Drop,
    /// The order's payment line says `amount_fen` (its fee follows).
    AlterAmount,
    /// The order's payment line appears twice.
    Duplicate,
    /// The summary line's settled total is one fen off: a bill that does not add up.
    CorruptSummary,
}

/// One adjustment (`POST /sim/v1/bill-adjustments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    /// The day, `YYYY-MM-DD` (Beijing time).
    pub date: String,
    /// What to do.
    pub action: Action,
    /// The order concerned (not for `corrupt_summary`).
    #[serde(default)]
    pub out_trade_no: Option<String>,
    /// The new amount, for `alter_amount` only.
    #[serde(default)]
    pub amount_fen: Option<i64>,
}

const DAY: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl Adjustment {
    /// Refuses adjustments that make no sense.
    fn validate(&self) -> Result<(), String> {
        time::Date::parse(&self.date, DAY).map_err(|_| "date must be YYYY-MM-DD".to_owned())?;
        match (self.action, &self.out_trade_no, self.amount_fen) {
            (Action::CorruptSummary, None, None) => Ok(()),
            (Action::CorruptSummary, _, _) => {
                Err("corrupt_summary takes neither out_trade_no nor amount_fen".into())
            }
            (_, None, _) => Err("out_trade_no is required".into()),
            (Action::AlterAmount, Some(_), Some(fen)) if fen > 0 => Ok(()),
            (Action::AlterAmount, Some(_), _) => {
                Err("alter_amount needs amount_fen, a positive number of fen".into())
            }
            (_, Some(_), Some(_)) => Err("amount_fen is for alter_amount only".into()),
            (_, Some(_), None) => Ok(()),
        }
    }
}

/// The fee on `fen` at `rate_bp` basis points, in 0.00001 yuan, rounded half up.
pub(crate) fn fee_e5(fen: i64, rate_bp: u32) -> i64 {
    // fen × 1000 (0.00001 yuan per fen) × bp / 10 000.
    (fen.saturating_mul(i64::from(rate_bp)) + 5) / 10
}

fn refund_status(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Processing => "PROCESSING",
        RefundStatus::Success => "SUCCESS",
        RefundStatus::Refundclose => "FAIL",
        RefundStatus::Change => "CHANGE",
    }
}

impl Sim {
    /// Day `day`'s lines (`yyyyMMdd`, Beijing) for merchant `mch_id`, adjusted.
    fn bill_rows(&self, mch_id: &str, day: &str, iso_day: &str) -> (Vec<BillRow>, bool) {
        let rate = self.config.fee_rate_bp;
        let mut rows: Vec<BillRow> = Vec::new();
        for order in lock(&self.store).orders() {
            if order.key.sandbox || order.key.mch_id != mch_id {
                continue;
            }
            let line = |time: String, kind: BillRowKind| BillRow {
                time,
                appid: order.appid.clone(),
                mch_id: order.key.mch_id.clone(),
                transaction_id: order.transaction_id.clone().unwrap_or_default(),
                out_trade_no: order.key.out_trade_no.clone(),
                openid: order.openid.clone().unwrap_or_default(),
                kind,
                order_fen: 0,
                settlement_fen: 0,
                refund: None,
                fee_e5: 0,
            };
            if let Some(paid) = order.time_end
                && order.state.was_paid()
                && paid.to_string().starts_with(day)
            {
                let fen = order.total_fee.as_i64();
                rows.push(BillRow {
                    order_fen: fen,
                    settlement_fen: fen,
                    fee_e5: fee_e5(fen, rate),
                    ..line(paid.to_dashed(), BillRowKind::Payment)
                });
            }
            for refund in &order.refunds {
                if !refund.requested_at.to_string().starts_with(day) {
                    continue;
                }
                let fen = refund.refund_fee.as_i64();
                rows.push(BillRow {
                    refund: Some(BillRefund {
                        refund_id: refund.refund_id.clone(),
                        out_refund_no: refund.out_refund_no.clone(),
                        amount_fen: fen,
                        status: refund_status(refund.status).to_owned(),
                    }),
                    fee_e5: -fee_e5(fen, rate),
                    ..line(refund.requested_at.to_dashed(), BillRowKind::Refund)
                });
            }
        }
        rows.sort_by(|a, b| {
            a.time
                .cmp(&b.time)
                .then(a.out_trade_no.cmp(&b.out_trade_no))
        });
        let mut corrupt = false;
        for adjustment in lock(&self.adjustments).iter().filter(|a| a.date == iso_day) {
            let is_it = |r: &BillRow| Some(&r.out_trade_no) == adjustment.out_trade_no.as_ref();
            match adjustment.action {
                Action::Drop => rows.retain(|r| !is_it(r)),
                Action::AlterAmount => {
                    let fen = adjustment.amount_fen.unwrap_or_default();
                    for r in rows.iter_mut().filter(|r| is_it(r) && r.refund.is_none()) {
                        r.order_fen = fen;
                        r.settlement_fen = fen;
                        r.fee_e5 = fee_e5(fen, rate);
                    }
                }
                Action::Duplicate => {
                    let copies: Vec<BillRow> = rows
                        .iter()
                        .filter(|r| is_it(r) && r.refund.is_none())
                        .cloned()
                        .collect();
                    rows.extend(copies);
                }
                Action::CorruptSummary => corrupt = true,
            }
        }
        (rows, corrupt)
    }

    /// The answer to a verified bill download: the bill (text or gzip), or WeChat's XML
    /// refusal.
    pub(crate) fn download_bill(&self, mch_id: &str, params: &Params) -> Response {
        let Some(date) = params
            .get("bill_date")
            .and_then(|d| time::Date::parse(d, BILL_DATE).ok())
        else {
            return refusal("invalid bill_date", "20001");
        };
        let Some(bill_type) = BillType::parse(params.get("bill_type").unwrap_or("")) else {
            return refusal("invalid bill_type", "20001");
        };
        let gzip = match params.get("tar_type") {
            None | Some("") => false,
            Some("GZIP") => true,
            Some(_) => return refusal("invalid tar_type", "20001"),
        };
        let today = self.clock.wechat_now().to_string();
        let day = date.format(BILL_DATE).unwrap_or_default();
        if day.as_str() > &today[..8] {
            return refusal("invalid bill_date", "20001");
        }
        let iso_day = date.format(DAY).unwrap_or_default();
        let (rows, corrupt) = self.bill_rows(mch_id, &day, &iso_day);
        let rows: Vec<BillRow> = rows
            .into_iter()
            .filter(|r| match bill_type {
                BillType::All => true,
                BillType::Success => r.refund.is_none(),
                BillType::Refund => r.refund.is_some(),
            })
            .collect();
        if rows.is_empty() {
            return refusal("No Bill Exist", "20002");
        }
        let mut bill = Bill::of_rows(rows);
        if corrupt {
            bill.summary.settlement_fen += 1;
        }
        let text = bill.render(bill_type);
        if gzip {
            (
                [(header::CONTENT_TYPE, "application/x-gzip")],
                bill::gzip(text.as_bytes()),
            )
                .into_response()
        } else {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
    }
}

/// WeChat's XML refusal of a bill download (unsigned).
fn refusal(return_msg: &str, error_code: &str) -> Response {
    let p: Params = [
        ("return_code", "FAIL"),
        ("return_msg", return_msg),
        ("error_code", error_code),
    ]
    .into_iter()
    .collect();
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        xml::encode(&p).unwrap_or_default(),
    )
        .into_response()
}

/// `POST /sim/v1/bill-adjustments`.
pub(crate) async fn add_adjustment(
    State(sim): State<Arc<Sim>>,
    body: axum::body::Bytes,
) -> Response {
    let adjustment: Adjustment = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return invalid(format!(
                "body must be {{\"date\", \"action\", \"out_trade_no\", \"amount_fen\"}}: {e}"
            ));
        }
    };
    if let Err(e) = adjustment.validate() {
        return invalid(e);
    }
    let mut all = lock(&sim.adjustments);
    all.push(adjustment);
    (StatusCode::CREATED, Json(json!({ "adjustments": *all }))).into_response()
}

/// `GET /sim/v1/bill-adjustments`.
pub(crate) async fn list_adjustments(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!({ "adjustments": *lock(&sim.adjustments) })).into_response()
}

/// `DELETE /sim/v1/bill-adjustments`.
pub(crate) async fn clear_adjustments(State(sim): State<Arc<Sim>>) -> Response {
    lock(&sim.adjustments).clear();
    StatusCode::NO_CONTENT.into_response()
}

fn invalid(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "code": "invalid_request", "message": message })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_round_half_up_in_hundred_thousandths_of_a_yuan() {
        // 90.00 yuan at 0.60% is 0.54000 yuan.
        assert_eq!(fee_e5(9000, 60), 54_000);
        // 0.01 yuan at 0.60% is 0.00006 yuan.
        assert_eq!(fee_e5(1, 60), 6);
        assert_eq!(fee_e5(1, 55), 6);
        assert_eq!(fee_e5(1, 54), 5);
    }

    #[test]
    fn adjustments_are_checked() {
        let a = |json: serde_json::Value| serde_json::from_value::<Adjustment>(json).unwrap();
        assert!(
            a(json!({"date": "2026-11-27", "action": "drop", "out_trade_no": "MP1"}))
                .validate()
                .is_ok()
        );
        assert!(a(json!({"date": "2026-11-27", "action": "alter_amount", "out_trade_no": "MP1", "amount_fen": 5})).validate().is_ok());
        assert!(
            a(json!({"date": "2026-11-27", "action": "alter_amount", "out_trade_no": "MP1"}))
                .validate()
                .is_err()
        );
        assert!(a(json!({"date": "2026-11-27", "action": "drop", "out_trade_no": "MP1", "amount_fen": 5})).validate().is_err());
        assert!(
            a(json!({"date": "27/11/2026", "action": "drop", "out_trade_no": "MP1"}))
                .validate()
                .is_err()
        );
        assert!(
            a(json!({"date": "2026-11-27", "action": "corrupt_summary"}))
                .validate()
                .is_ok()
        );
        assert!(
            a(json!({"date": "2026-11-27", "action": "duplicate"}))
                .validate()
                .is_err()
        );
    }
}
