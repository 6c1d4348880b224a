//! Reconciliation against the real services: the simulator's bill of today (it bills the
//! current day, as tests cannot wait one), pay-gateway-svc's DownloadBill, order-svc's
//! books in PostgreSQL. A matching day; each kind of difference, made through the simulator's
//! control API, reported with its kind, the healable ones healed after WeChat's query and
//! matched on the next run; an empty day; a bill that does not add up; two replicas.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use order_svc::domain::reconciliation::{DifferenceKind, Report, RunStatus};
use order_svc::reconcile::Reconciler;
use reqwest::Method;
use serde_json::json;
use support::*;
use wechatpay_sim::Faults;

/// No active query or refund query while a test looks: only the reconciliation heals.
fn quiet() -> Options {
    Options {
        payment_query_after: "10m",
        order_env: vec![("REFUND_QUERY_AFTER", "10m")],
        ..Options::default()
    }
}

fn reconciler(s: &Stack) -> Reconciler {
    s.workers.as_ref().unwrap().reconciler().clone()
}

fn today() -> time::Date {
    order_svc::reconcile::beijing_day(time::OffsetDateTime::now_utc())
}

async fn run(s: &Stack) -> Report {
    reconciler(s).run(today()).await.unwrap().unwrap()
}

/// A paid order: (token, id, number).
async fn paid(s: &Stack, user: &str) -> (String, String, String) {
    let (token, id, number) = s.prepaid_order(user).await;
    s.user_pays(&number);
    s.wait_status(&token, &id, "PAID").await;
    (token, id, number)
}

async fn adjust(s: &Stack, body: serde_json::Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/sim/v1/bill-adjustments", s.sim.base_url()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
}

fn kinds(report: &Report) -> Vec<(DifferenceKind, String, bool)> {
    let mut k: Vec<_> = report
        .differences
        .iter()
        .map(|d| {
            let key = if d.out_refund_no.is_empty() {
                &d.out_trade_no
            } else {
                &d.out_refund_no
            };
            (d.kind, key.clone(), d.healed)
        })
        .collect();
    k.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    k
}

async fn refund(s: &Stack, id: &str, fen: i64) -> String {
    let body = json!({"amount_fen": fen, "reason": "reconciliation test"}).to_string();
    let answer = s
        .api
        .call(
            Method::POST,
            &format!("/admin/v1/orders/{id}/refunds"),
            Some(ADMIN_TOKEN),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.body["out_refund_no"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_matching_day_has_no_difference_and_its_totals_are_the_books() {
    let s = stack_with(quiet()).await;
    let (_, a, _) = paid(&s, "mia").await;
    paid(&s, "max").await;
    let refunded = refund(&s, &a, 500).await;
    let sim = s.sim.sim();
    sim.settle_refund(
        &sim.find_refund(&refunded, None).unwrap(),
        &refunded,
        wechat_pay::v2::RefundStatus::Success,
    )
    .unwrap();
    wait_until(PATIENCE, "the refund is applied", || async {
        let r = run(&s).await;
        if r.status == RunStatus::Matched {
            Ok(r)
        } else {
            Err(r)
        }
    })
    .await;
    let report = run(&s).await;
    assert_eq!(report.status, RunStatus::Matched, "{report:?}");
    assert!(report.differences.is_empty());
    let (bill, books) = (&report.totals["bill"], &report.totals["books"]);
    assert_eq!(bill["payments"], 2);
    assert_eq!(bill["refunds"], 1);
    assert_eq!(books["paid_orders"], 2);
    assert_eq!(bill["settlement_fen"], books["paid_fen"]);
    assert_eq!(books["paid_fen"], 2 * 1999);
    assert_eq!(bill["refund_fen"], books["refunded_fen"]);
    assert_eq!(bill["refund_fen"], 500);
}

#[tokio::test]
async fn every_kind_of_difference_is_reported_and_the_safe_ones_are_healed() {
    let s = stack_with(quiet()).await;
    let sim = s.sim.sim();
    let day = today().to_string();
    // Paid at WeChat, never notified: PENDING here.
    let (unnotified_token, unnotified_id, unnotified) = s.prepaid_order("nia").await;
    sim.set_faults(Faults {
        drop_notifications: true,
        ..Faults::default()
    })
    .unwrap();
    s.user_pays(&unnotified);
    sim.set_faults(Faults::default()).unwrap();
    // Paid here, left off the bill; another amount on the bill; listed twice.
    let (_, _, dropped) = paid(&s, "oli").await;
    let (_, _, altered) = paid(&s, "pat").await;
    let (_, _, doubled) = paid(&s, "quin").await;
    adjust(
        &s,
        json!({ "date": day, "action": "drop", "out_trade_no": dropped }),
    )
    .await;
    adjust(
        &s,
        json!({ "date": day, "action": "alter_amount", "out_trade_no": altered, "amount_fen": 1 }),
    )
    .await;
    adjust(
        &s,
        json!({ "date": day, "action": "duplicate", "out_trade_no": doubled }),
    )
    .await;
    // A refund made in the merchant portal.
    let (_, portal_id, portal_order) = paid(&s, "rae").await;
    let portal = sim
        .portal_refund(
            &sim.find(&portal_order, None).unwrap(),
            wechat_pay::Fen::new(300).unwrap(),
        )
        .unwrap();
    // A refund WeChat finished whose notification never came: PROCESSING here.
    let (_, settled_id, _) = paid(&s, "sol").await;
    let unsettled = refund(&s, &settled_id, 700).await;
    sim.set_faults(Faults {
        drop_notifications: true,
        ..Faults::default()
    })
    .unwrap();
    sim.settle_refund(
        &sim.find_refund(&unsettled, None).unwrap(),
        &unsettled,
        wechat_pay::v2::RefundStatus::Success,
    )
    .unwrap();

    let report = run(&s).await;
    assert_eq!(report.status, RunStatus::Differences, "{report:?}");
    use DifferenceKind as K;
    assert_eq!(
        kinds(&report),
        vec![
            (K::AmountDiffers, altered.clone(), false),
            (K::DuplicateLine, doubled.clone(), false),
            (K::PaidAtWechatNotHere, unnotified.clone(), true),
            (K::PaidHereNotOnBill, dropped.clone(), false),
            (K::RefundDiffers, unsettled.clone(), true),
            (K::RefundUnknownHere, portal.out_refund_no.clone(), true),
        ],
        "{report:#?}"
    );
    // Healed through the normal transitions, after WeChat's queries.
    s.wait_status(&unnotified_token, &unnotified_id, "PAID")
        .await;
    let order = s
        .api
        .call(
            Method::GET,
            &format!("/admin/v1/orders/{portal_id}"),
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await;
    assert_eq!(order.body["refunded_fen"], 300, "{}", order.body);
    assert_eq!(order.body["status"], "PARTIALLY_REFUNDED", "{}", order.body);
    let order = s
        .api
        .call(
            Method::GET,
            &format!("/admin/v1/orders/{settled_id}"),
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await;
    assert_eq!(order.body["refunded_fen"], 700, "{}", order.body);

    // The next run: what was healed matches; the rest still waits for an operator.
    let again = run(&s).await;
    assert_eq!(
        kinds(&again),
        vec![
            (K::AmountDiffers, altered, false),
            (K::DuplicateLine, doubled, false),
            (K::PaidHereNotOnBill, dropped, false),
        ],
        "{again:#?}"
    );
}

#[tokio::test]
async fn an_empty_day_matches_and_a_bill_that_does_not_add_up_fails_and_is_retried() {
    let s = stack_with(quiet()).await;
    let empty = reconciler(&s)
        .run(time::macros::date!(2020 - 01 - 01))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(empty.status, RunStatus::Matched, "{empty:?}");
    assert!(empty.totals["bill"].is_null());
    assert_eq!(empty.totals["books"]["paid_orders"], 0);

    paid(&s, "tia").await;
    adjust(
        &s,
        json!({ "date": today().to_string(), "action": "corrupt_summary" }),
    )
    .await;
    let failed = run(&s).await;
    assert_eq!(failed.status, RunStatus::Failed, "{failed:?}");
    assert!(
        failed.error.as_deref().unwrap().contains("BILL_INVALID")
            || failed.error.as_deref().unwrap().contains("bill"),
        "{failed:?}"
    );
    assert!(failed.differences.is_empty());
}

#[tokio::test]
async fn with_two_replicas_the_daily_run_happens_once() {
    let s = stack_with(quiet()).await;
    paid(&s, "uma").await;
    // Tomorrow after 10:00 Beijing time: today is due.
    let tomorrow_morning =
        time::PrimitiveDateTime::new(today().next_day().unwrap(), time::macros::time!(11:00))
            .assume_offset(time::macros::offset!(+8));
    let (one, two) = (reconciler(&s), reconciler(&s).replica());
    let (a, b) = tokio::join!(
        one.run_due_once(tomorrow_morning),
        two.run_due_once(tomorrow_morning)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "exactly one replica ran it");
    let report = one.report(today()).await.unwrap().unwrap();
    assert_eq!(
        (report.status, report.attempts),
        (RunStatus::Matched, 1),
        "{report:?}"
    );
    // Done: neither runs it again; before 10:00, nothing is due.
    assert_eq!(two.run_due_once(tomorrow_morning).await.unwrap(), 0);
    let too_early = tomorrow_morning - time::Duration::hours(2);
    assert_eq!(one.run_due_once(too_early).await.unwrap(), 0);
}

/// `POST /admin/v1/reconciliations` with `body`, as the operator.
async fn run_via_api(s: &Stack, body: &str) -> test_support::Answer {
    s.api
        .call(
            Method::POST,
            "/admin/v1/reconciliations",
            Some(ADMIN_TOKEN),
            Some(body),
            &[],
        )
        .await
}

#[tokio::test]
async fn operators_run_and_read_a_day_through_the_admin_api() {
    let s = stack_with(quiet()).await;
    let (_, _, number) = paid(&s, "vic").await;
    let day = today().to_string();
    let body = json!({ "date": day }).to_string();
    let ran = run_via_api(&s, &body).await;
    assert_eq!(ran.status, 200, "{}", ran.body);
    assert_eq!(ran.body["date"], day.as_str());
    assert_eq!(ran.body["status"], "MATCHED", "{}", ran.body);
    assert_eq!(ran.body["totals"]["books"]["paid_fen"], 1999);
    assert_eq!(ran.body["differences"], json!([]));

    adjust(
        &s,
        json!({ "date": day, "action": "drop", "out_trade_no": number }),
    )
    .await;
    let ran = run_via_api(&s, &body).await;
    assert_eq!(ran.body["status"], "DIFFERENCES", "{}", ran.body);
    let read = s
        .api
        .call(
            Method::GET,
            &format!("/admin/v1/reconciliations?date={day}"),
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body, ran.body);
    let difference = &read.body["differences"][0];
    assert_eq!(difference["kind"], "paid_here_not_on_bill");
    assert_eq!(difference["out_trade_no"], number.as_str());
    assert_eq!(difference["healed"], false);

    // Audited.
    let db = sqlx::PgPool::connect(&s.database_url).await.unwrap();
    let (audited,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM admin_actions WHERE action = 'reconcile' AND operator = $1 AND target = $2",
    )
    .bind(ADMIN_OPERATOR)
    .bind(&day)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(audited, 2);

    // Refusals.
    let never = s
        .api
        .call(
            Method::GET,
            "/admin/v1/reconciliations?date=2001-02-03",
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (never.status.as_u16(), never.body["code"].as_str()),
        (404, Some("reconciliation_not_found"))
    );
    let bad = json!({ "date": "yesterday" }).to_string();
    let refused = s
        .api
        .call(
            Method::POST,
            "/admin/v1/reconciliations",
            Some(ADMIN_TOKEN),
            Some(&bad),
            &[],
        )
        .await;
    assert_eq!(
        (refused.status.as_u16(), refused.body["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let anonymous = s
        .api
        .call(
            Method::POST,
            "/admin/v1/reconciliations",
            None,
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(anonymous.status, 401);
}
