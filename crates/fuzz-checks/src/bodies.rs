//! order-svc's JSON request bodies: any bytes, through the same parsing and checks as each
//! handler (`order_svc::http::bodies`), are refused with a client error (400) or become values
//! that keep the rules of their type.

use order_svc::domain::{LoginCode, MAX_LINES, MAX_QUANTITY, MAX_REFUND_REASON, OrderRequest};
use order_svc::error::AppError;
use order_svc::http::bodies;

/// The codes a body may be refused with, all answered 400.
const BODY_ERRORS: &[&str] = &[
    "invalid_json",
    "invalid_request",
    "amount_not_accepted",
    "unknown_sku",
];

/// Longest sku a request may name (the products table's CHECK).
const MAX_SKU_LEN: usize = 32;

/// Any bytes as each JSON body order-svc accepts (login, order, refund, review resolution,
/// dead-letter replay, reconciliation): refused as the client's error or accepted as a valid
/// value, never a panic.
pub fn order_json_bodies(data: &[u8]) {
    if let Some(code) = accepted(bodies::login(data)) {
        login_code(&code);
    }
    if let Some(order) = accepted(bodies::create_order(data)) {
        order_request(&order);
    }
    if let Some(refund) = accepted(bodies::refund(data)) {
        assert!(!refund.amount.is_zero(), "a refund of nothing");
        reason(&refund.reason);
    }
    if let Some((_action, why)) = accepted(bodies::resolve(data)) {
        reason(&why);
    }
    if let Some(why) = accepted(bodies::replay_dead_letter(data)) {
        reason(&why);
    }
    // Any `time::Date` is a day to reconcile.
    let _ = accepted(bodies::reconcile(data));
}

/// The value, or `None` after checking that the refusal is a client error.
fn accepted<T>(result: Result<T, AppError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            assert!(
                BODY_ERRORS.contains(&e.code()),
                "refused with {}: {e}",
                e.code()
            );
            assert_eq!(e.http_status().as_u16(), 400, "{e}");
            None
        }
    }
}

fn login_code(code: &LoginCode) {
    let code = code.as_str();
    assert!((1..=LoginCode::MAX_LEN).contains(&code.len()), "{code:?}");
    assert!(code.bytes().all(|b| b.is_ascii_graphic()), "{code:?}");
}

fn order_request(order: &OrderRequest) {
    let lines = order.lines();
    assert!((1..=MAX_LINES).contains(&lines.len()), "{lines:?}");
    for (i, line) in lines.iter().enumerate() {
        assert!((1..=MAX_SKU_LEN).contains(&line.sku.len()), "{line:?}");
        // Lines of one sku are merged: up to MAX_LINES of them, MAX_QUANTITY each.
        let most = u32::try_from(MAX_LINES).unwrap_or(u32::MAX) * MAX_QUANTITY;
        assert!((1..=most).contains(&line.quantity), "{line:?}");
        assert!(
            lines[..i].iter().all(|earlier| earlier.sku != line.sku),
            "sku {} on two lines",
            line.sku
        );
    }
    assert_eq!(order.fingerprint().len(), 64);
}

fn reason(reason: &str) {
    let chars = reason.chars().count();
    assert!((1..=MAX_REFUND_REASON).contains(&chars), "{reason:?}");
    assert!(!reason.chars().any(char::is_control), "{reason:?}");
    assert_eq!(reason, reason.trim(), "reasons are trimmed");
}
