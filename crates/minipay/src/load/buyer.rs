//! One simulated Mini Program user: logs in once (again only when a call answers 401), then
//! buys again and again — create the order, fetch the payment object, pay in the simulator,
//! poll until PAID — timing each step and tallying each failure by step and code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use service_runtime::telemetry::error_chain;

use super::report::ErrorCount;
use super::stats::{Samples, Step};
use super::{Live, Until};
use crate::purchase::{PurchaseError, Shop};

/// How often the order is read while waiting for PAID: often enough that the `paid` step's
/// latency is the notification's, not the poll's (it adds at most this much), rarely enough
/// that N buyers' polls are not most of the load.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long after the simulator took the money the order may take to become PAID.
const PAID_WITHIN: Duration = Duration::from_secs(30);

/// A buyer's pause after a failed purchase, so that a stack refusing everything (down, rate
/// limiting) is not hammered in a tight loop and the error counts stay readable.
const AFTER_FAILURE: Duration = Duration::from_millis(100);

/// The code of a purchase that saw its order paid at WeChat but not PAID here in time.
pub(super) const NOT_PAID_IN_TIME: &str = "not_paid_in_time";

/// Why a purchase failed: the step and the error's code, and the message.
#[derive(Debug)]
struct Failure {
    step: Step,
    code: String,
    message: String,
}

impl Failure {
    fn of(step: Step, error: &PurchaseError) -> Failure {
        let code = match error {
            PurchaseError::Http { .. } => "transport".to_owned(),
            PurchaseError::Refused {
                code: Some(code), ..
            } => code.clone(),
            PurchaseError::Refused { status, .. } => format!("http_{}", status.as_u16()),
            PurchaseError::Incomplete { .. } => "incomplete_answer".to_owned(),
            PurchaseError::Timeout { .. } => NOT_PAID_IN_TIME.to_owned(),
        };
        Failure {
            step,
            code,
            message: error_chain(error),
        }
    }

    fn incomplete(step: Step, what: &str, body: &Value) -> Failure {
        Failure {
            step,
            code: "incomplete_answer".to_owned(),
            message: format!("the answer has no {what}: {body}"),
        }
    }
}

/// What buyers saw: their successful steps' durations and their failures.
#[derive(Debug, Default)]
pub(super) struct Record {
    pub(super) samples: Samples,
    pub(super) succeeded: u64,
    /// (step, code) → (count, first message).
    errors: BTreeMap<(Step, String), (u64, String)>,
}

impl Record {
    /// Counts a failed purchase.
    pub(super) fn fail(&mut self, step: Step, code: &str, message: String) {
        let tally = self
            .errors
            .entry((step, code.to_owned()))
            .or_insert((0, message));
        tally.0 += 1;
    }

    /// Adds another buyer's record.
    pub(super) fn merge(&mut self, other: Record) {
        self.samples.merge(other.samples);
        self.succeeded += other.succeeded;
        for (key, (count, example)) in other.errors {
            self.errors.entry(key).or_insert((0, example)).0 += count;
        }
    }

    /// Failed purchases.
    pub(super) fn failed(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }

    /// The failures, most frequent first.
    pub(super) fn errors(&self) -> Vec<ErrorCount> {
        let mut errors: Vec<ErrorCount> = self
            .errors
            .iter()
            .map(|((step, code), (count, example))| ErrorCount {
                step: *step,
                code: code.clone(),
                count: *count,
                example: example.clone(),
            })
            .collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.count));
        errors
    }
}

/// A call that needs the session token.
#[derive(Debug, Clone, Copy)]
enum Call<'a> {
    /// Create an order of these items.
    CreateOrder(&'a Value),
    /// Fetch the payment object of this order.
    Payment(&'a str),
    /// Read this order.
    ReadOrder(&'a str),
}

impl Call<'_> {
    async fn send(self, shop: &Shop, token: &str) -> Result<Value, PurchaseError> {
        match self {
            Call::CreateOrder(items) => shop.create_order(token, items.clone()).await,
            Call::Payment(id) => shop.payment(token, id).await,
            Call::ReadOrder(id) => shop.order(token, id).await,
        }
    }
}

/// One buyer.
#[derive(Debug)]
pub(super) struct Buyer {
    shop: Shop,
    /// Its user name (`test-<user>` login codes; the simulator makes an openid of it).
    user: String,
    /// What it buys, one at a time.
    sku: String,
    /// Its session, once logged in.
    token: Option<String>,
    record: Record,
}

impl Buyer {
    pub(super) fn new(shop: Shop, user: String, sku: String) -> Buyer {
        Buyer {
            shop,
            user,
            sku,
            token: None,
            record: Record::default(),
        }
    }

    /// Buys until `until` (counted from the run's start) or until [`Live::stop`]; what it
    /// saw.
    pub(super) async fn run(mut self, live: Arc<Live>, until: Until) -> Record {
        let mut stop = live.stop.subscribe();
        while live.claim(until) {
            let outcome = tokio::select! {
                outcome = self.purchase() => outcome,
                // Ctrl-C: the purchase in flight is abandoned, in no count.
                _ = stop.wait_for(|&stopped| stopped) => break,
            };
            match outcome {
                Ok(()) => {
                    self.record.succeeded += 1;
                    live.succeeded.fetch_add(1, Ordering::Relaxed);
                }
                Err(f) => {
                    self.record.fail(f.step, &f.code, f.message);
                    live.failed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(AFTER_FAILURE).await;
                }
            }
        }
        self.record
    }

    /// One purchase, each step timed.
    async fn purchase(&mut self) -> Result<(), Failure> {
        // Logged in before the clock starts: the login is its own step, not the purchase's.
        self.token().await?;
        let begun = Instant::now();
        let items = json!([{ "sku": self.sku, "quantity": 1 }]);
        let (order, took) = self
            .authed(Step::CreateOrder, Call::CreateOrder(&items))
            .await?;
        self.record.samples.record(Step::CreateOrder, took);
        let (Some(id), Some(out_trade_no)) = (order["id"].as_str(), order["out_trade_no"].as_str())
        else {
            return Err(Failure::incomplete(
                Step::CreateOrder,
                "id or out_trade_no",
                &order,
            ));
        };
        let (id, out_trade_no) = (id.to_owned(), out_trade_no.to_owned());
        let (_, took) = self.authed(Step::Prepay, Call::Payment(&id)).await?;
        self.record.samples.record(Step::Prepay, took);
        let paying = Instant::now();
        self.shop
            .user_pays(&out_trade_no)
            .await
            .map_err(|e| Failure::of(Step::Pay, &e))?;
        let paid_at_wechat = Instant::now();
        self.record
            .samples
            .record(Step::Pay, paid_at_wechat - paying);
        self.wait_paid(&id, paid_at_wechat).await?;
        self.record
            .samples
            .record(Step::Paid, paid_at_wechat.elapsed());
        self.record.samples.record(Step::Purchase, begun.elapsed());
        Ok(())
    }

    /// Polls the order until it is PAID, at most [`PAID_WITHIN`] after `since`.
    async fn wait_paid(&mut self, id: &str, since: Instant) -> Result<(), Failure> {
        let deadline = since + PAID_WITHIN;
        loop {
            let (order, _) = self.authed(Step::Paid, Call::ReadOrder(id)).await?;
            if order["status"] == "PAID" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure {
                    step: Step::Paid,
                    code: NOT_PAID_IN_TIME.to_owned(),
                    message: format!(
                        "order {id} is still {} {PAID_WITHIN:?} after the simulator took the payment",
                        order["status"]
                    ),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The session token, logging in first when there is none (timed as [`Step::Login`]).
    async fn token(&mut self) -> Result<String, Failure> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let begun = Instant::now();
        let token = self
            .shop
            .login(&self.user)
            .await
            .map_err(|e| Failure::of(Step::Login, &e))?;
        self.record.samples.record(Step::Login, begun.elapsed());
        self.token = Some(token.clone());
        Ok(token)
    }

    /// `call` with the session token: its answer, and how long it took. On a 401 the
    /// session is over (expired, or order-svc's secret changed): log in again and call once
    /// more, as the Mini Program does; the step's time is then the second call's.
    async fn authed(&mut self, step: Step, call: Call<'_>) -> Result<(Value, Duration), Failure> {
        let token = self.token().await?;
        let begun = Instant::now();
        match call.send(&self.shop, &token).await {
            Ok(value) => Ok((value, begun.elapsed())),
            Err(PurchaseError::Refused {
                status: StatusCode::UNAUTHORIZED,
                ..
            }) => {
                self.token = None;
                let token = self.token().await?;
                let begun = Instant::now();
                call.send(&self.shop, &token)
                    .await
                    .map(|value| (value, begun.elapsed()))
                    .map_err(|e| Failure::of(step, &e))
            }
            Err(e) => Err(Failure::of(step, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use reqwest::Method;

    use super::*;

    fn refused(code: Option<&str>, status: StatusCode) -> PurchaseError {
        PurchaseError::Refused {
            step: crate::purchase::step::CREATE_ORDER,
            method: Method::POST,
            url: "http://127.0.0.1:8080/api/v1/orders".into(),
            status,
            code: code.map(str::to_owned),
            message: "no".into(),
        }
    }

    #[test]
    fn a_failure_is_coded_by_the_servers_code_else_its_status() {
        let f = Failure::of(
            Step::CreateOrder,
            &refused(Some("rate_limited"), StatusCode::TOO_MANY_REQUESTS),
        );
        assert_eq!(
            (f.step, f.code.as_str()),
            (Step::CreateOrder, "rate_limited")
        );
        assert!(f.message.contains("HTTP 429"), "{}", f.message);
        let f = Failure::of(Step::Prepay, &refused(None, StatusCode::BAD_GATEWAY));
        assert_eq!(f.code, "http_502");
        let f = Failure::of(
            Step::Paid,
            &PurchaseError::Timeout {
                step: "x",
                wanted: "PAID".into(),
                last: json!("PENDING"),
                waited: Duration::ZERO,
            },
        );
        assert_eq!(f.code, NOT_PAID_IN_TIME);
    }

    #[test]
    fn records_merge_counts_and_keep_the_first_example() {
        let mut a = Record::default();
        a.fail(Step::Pay, "transport", "first".into());
        a.fail(Step::Pay, "transport", "second".into());
        a.succeeded = 3;
        let mut b = Record::default();
        b.fail(Step::Pay, "transport", "third".into());
        b.fail(Step::Login, "rate_limited", "slow down".into());
        b.succeeded = 4;
        a.merge(b);
        assert_eq!((a.succeeded, a.failed()), (7, 4));
        let errors = a.errors();
        assert_eq!(
            errors[0],
            ErrorCount {
                step: Step::Pay,
                code: "transport".into(),
                count: 3,
                example: "first".into()
            }
        );
        assert_eq!((errors[1].step, errors[1].count), (Step::Login, 1));
    }
}
