//! What is checked once a fault is over, for every order: WeChat's view (the simulator's
//! control API), the database (straight, not through the proxy), the status API of both
//! replicas (the cache included), the `order.paid` events as a subscriber receives them (a
//! durable queue of the audit's own, bound before the stack starts), the transitions the
//! outbox recorded, the dead letters, and whether WeChat's notifications were acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use futures_util::StreamExt;
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use messaging::Topology;
use prost::Message as _;
use proto::events::v1::OrderPaid;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::drive::Purchase;
use super::{Row, Scenario};
use crate::purchase::{PurchaseError, Shop};

/// Why a check could not read what it checks (the round is tried again).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// RabbitMQ.
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    /// PostgreSQL.
    #[error("PostgreSQL: {0}")]
    Sql(#[from] sqlx::Error),
    /// The simulator or the status API.
    #[error("HTTP: {0}")]
    Http(#[from] PurchaseError),
    /// An event that is not an `OrderPaid`.
    #[error("an order.paid event does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// The audit's subscriber and its view of the database.
#[derive(Debug)]
pub struct Audit {
    amqp_url: String,
    queue: String,
    dlq: String,
    db: PgPool,
    /// Distinct event ids of every `order.paid` received, by order id.
    events: Mutex<HashMap<String, HashSet<String>>>,
}

/// One order as everyone sees it.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// The database's status and transaction.
    status: String,
    transaction_id: Option<String>,
    /// WeChat's state and transaction (`None`: WeChat never heard of it).
    wechat: Option<String>,
    wechat_transaction_id: Option<String>,
    /// Every notification sent was acknowledged (or none was sent).
    acked: bool,
    /// Its number, and WeChat's record of its notifications in brief.
    number: String,
    deliveries: String,
    /// The status API's answer, when the buyer is known.
    api: Option<String>,
    /// `order.paid` rows in the outbox (PAID transitions) and distinct events received.
    transitions: usize,
    events: usize,
}

/// One round of checks.
#[derive(Debug, Clone, Default)]
pub struct Assessment {
    orders: Vec<Seen>,
    dead_letters: usize,
}

impl Seen {
    fn paid_at_wechat(&self) -> bool {
        self.wechat.as_deref() == Some("SUCCESS")
    }

    fn doubled(&self) -> bool {
        let other_transaction = matches!(
            (&self.transaction_id, &self.wechat_transaction_id),
            (Some(ours), Some(theirs)) if ours != theirs
        );
        self.transitions > 1 || self.events > 1 || other_transaction
    }

    fn api_agrees(&self) -> bool {
        self.api.as_ref().is_none_or(|api| *api == self.status)
    }

    fn paid_everywhere(&self) -> bool {
        self.status == "PAID" && self.api_agrees() && self.transitions == 1 && self.events == 1
    }

    fn lost(&self) -> bool {
        self.paid_at_wechat() && self.status != "REVIEW" && !self.paid_everywhere()
    }

    fn wrong(&self) -> bool {
        let invented = !self.paid_at_wechat()
            && (self.status == "PAID" || self.transitions > 0 || self.events > 0);
        let unpaid_state =
            self.paid_at_wechat() || matches!(self.status.as_str(), "PENDING" | "CLOSED");
        invented || !unpaid_state || !self.api_agrees()
    }
}

impl Assessment {
    fn count(&self, f: impl Fn(&Seen) -> bool) -> usize {
        self.orders.iter().filter(|o| f(o)).count()
    }

    /// Everything agrees: nothing lost, doubled, wrong, in review, unacknowledged or
    /// dead-lettered.
    pub fn converged(&self) -> bool {
        self.count(|o| {
            o.lost()
                || o.doubled()
                || o.wrong()
                || o.status == "REVIEW"
                || (o.paid_at_wechat() && !o.acked)
        }) == 0
            && self.dead_letters == 0
    }

    /// The orders that keep it from converging, described (at most `n`).
    pub fn problems(&self, n: usize) -> Vec<String> {
        self.orders
            .iter()
            .filter(|o| {
                o.lost() || o.doubled() || o.wrong() || o.status == "REVIEW"
                    || (o.paid_at_wechat() && !o.acked)
            })
            .take(n)
            .map(|o| {
                format!(
                    "{}: WeChat {:?} (transaction {:?}); here {} (transaction {:?}), status API {:?}, \
                     {} PAID transition(s), {} order.paid event(s); notifications: {}",
                    o.number,
                    o.wechat,
                    o.wechat_transaction_id,
                    o.status,
                    o.transaction_id,
                    o.api,
                    o.transitions,
                    o.events,
                    o.deliveries
                )
            })
            .collect()
    }

    /// The table's row.
    pub fn row(
        &self,
        scenario: Scenario,
        purchases: &[Purchase],
        converged_ms: Option<u64>,
    ) -> Row {
        Row {
            scenario,
            orders: self.orders.len(),
            payments: self.count(Seen::paid_at_wechat),
            paid: self.count(|o| o.paid_at_wechat() && o.paid_everywhere() && !o.doubled()),
            doubled: self.count(Seen::doubled),
            lost: self.count(Seen::lost),
            wrong: self.count(Seen::wrong),
            in_review: self.count(|o| o.status == "REVIEW"),
            dead_lettered: self.dead_letters,
            unacked: self.count(|o| o.paid_at_wechat() && !o.acked),
            converged_ms,
            retries: purchases.iter().map(|p| p.retries).sum(),
            gave_up: purchases.iter().filter_map(|p| p.gave_up.clone()).collect(),
            problems: self.problems(10),
        }
    }
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    args
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// WeChat's record of an order's notifications in brief: each attempt's outcomes (and HTTP
/// statuses), whether more are under way or held.
fn deliveries(view: &Value) -> String {
    let log = &view["notifications"];
    let attempts: Vec<String> = log["attempts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    format!(
                        "#{} {} {}",
                        t["attempt"],
                        t["outcome"].as_str().unwrap_or("?"),
                        t["status"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "dropped {}, held {}, running {}, attempts [{}]",
        log["dropped"],
        log["held"],
        log["deliveries_running"],
        attempts.join("; ")
    )
}

/// Whether WeChat's notifications of an order were all acknowledged (none were sent under
/// the drop fault): none held, none under way, one acknowledged.
fn acked(view: &Value) -> bool {
    let log = &view["notifications"];
    if log["dropped"] == true {
        return true;
    }
    let settled = log["held"] == false && log["deliveries_running"] == 0;
    let any_ack = log["attempts"]
        .as_array()
        .is_some_and(|a| a.iter().any(|t| t["outcome"] == "acked"));
    settled && any_ack
}

impl Audit {
    /// Declares the orders exchange and the audit's durable queue on it (straight to
    /// RabbitMQ at `amqp_url`), and a pool on the scenario's database (straight).
    pub async fn prepare(
        amqp_url: &str,
        database_url: &str,
        prefix: &str,
    ) -> Result<Audit, CheckError> {
        let topology = Topology::new(prefix);
        let queue = format!("{prefix}chaos.audit");
        let conn = messaging::connect(amqp_url, "chaos-audit").await?;
        let ch = conn.create_channel().await?;
        topology.declare_orders_exchange(&ch).await?;
        ch.queue_declare(&queue, durable(), quorum()).await?;
        ch.queue_bind(
            &queue,
            &topology.orders_exchange(),
            messaging::ORDER_PAID,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let _ = conn.close(200, "prepared").await;
        let db = PgPoolOptions::new()
            .max_connections(2)
            .connect_lazy(database_url)?;
        Ok(Audit {
            amqp_url: amqp_url.to_owned(),
            queue,
            dlq: topology.order_payments_dlq(),
            db,
            events: Mutex::default(),
        })
    }

    /// Closes the pool.
    pub async fn close(self) {
        self.db.close().await;
    }

    /// Takes what reached the audit queue since the last round; the payments dead-letter
    /// queue's depth.
    async fn drain(&self) -> Result<usize, CheckError> {
        let conn = messaging::connect(&self.amqp_url, "chaos-audit").await?;
        let ch = conn.create_channel().await?;
        loop {
            let got = ch
                .basic_get(&self.queue, BasicGetOptions { no_ack: true })
                .await?;
            let Some(message) = got else { break };
            let paid = OrderPaid::decode(message.delivery.data.as_slice())?;
            self.events
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(paid.order_id)
                .or_default()
                .insert(paid.event_id);
        }
        let passive = QueueDeclareOptions {
            passive: true,
            ..durable()
        };
        let dlq = ch.queue_declare(&self.dlq, passive, quorum()).await?;
        let _ = conn.close(200, "drained").await;
        Ok(usize::try_from(dlq.message_count()).unwrap_or(usize::MAX))
    }

    /// One round of checks over every order in the database.
    pub async fn assess(
        &self,
        purchases: &[Purchase],
        shops: &[Shop],
    ) -> Result<Assessment, CheckError> {
        let dlq = self.drain().await?;
        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id::text, out_trade_no, status, transaction_id FROM orders ORDER BY created_at",
        )
        .fetch_all(&self.db)
        .await?;
        let payloads: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT payload FROM outbox WHERE routing_key = 'order.paid'")
                .fetch_all(&self.db)
                .await?;
        let mut transitions: HashMap<String, usize> = HashMap::new();
        for (payload,) in payloads {
            *transitions
                .entry(OrderPaid::decode(payload.as_slice())?.order_id)
                .or_default() += 1;
        }
        let (dead_letter_rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM dead_letters")
            .fetch_one(&self.db)
            .await?;
        let buyers: HashMap<&str, &Purchase> = purchases
            .iter()
            .filter_map(|p| Some((p.id.as_deref()?, p)))
            .collect();
        let events = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect::<HashMap<_, _>>();

        let seen: Vec<Result<Seen, CheckError>> = futures_util::stream::iter(rows)
            .map(|(id, number, status, transaction_id)| {
                let buyer = buyers.get(id.as_str()).copied();
                let (transitions, events) = (
                    transitions.get(&id).copied().unwrap_or(0),
                    events.get(&id).copied().unwrap_or(0),
                );
                async move {
                    let wechat = match shops[0].at_wechat(&number).await {
                        Ok(view) => Some(view),
                        Err(PurchaseError::Refused { status, .. })
                            if status == StatusCode::NOT_FOUND =>
                        {
                            None
                        }
                        Err(e) => return Err(CheckError::Http(e)),
                    };
                    let api = match buyer {
                        Some(p) => {
                            let shop = &shops[p.index % shops.len()];
                            let order = shop.order(&p.token, &id).await?;
                            order["status"].as_str().map(str::to_owned)
                        }
                        None => None,
                    };
                    let text = |v: &Value, k: &str| v[k].as_str().map(str::to_owned);
                    Ok(Seen {
                        status,
                        transaction_id,
                        wechat: wechat.as_ref().and_then(|w| text(w, "state")),
                        wechat_transaction_id: wechat
                            .as_ref()
                            .and_then(|w| text(w, "transaction_id")),
                        acked: wechat.as_ref().is_none_or(acked),
                        deliveries: wechat.as_ref().map(deliveries).unwrap_or_default(),
                        number,
                        api,
                        transitions,
                        events,
                    })
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        Ok(Assessment {
            orders: seen.into_iter().collect::<Result<_, _>>()?,
            dead_letters: dlq + usize::try_from(dead_letter_rows).unwrap_or(usize::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid() -> Seen {
        Seen {
            status: "PAID".into(),
            transaction_id: Some("4200".into()),
            wechat: Some("SUCCESS".into()),
            wechat_transaction_id: Some("4200".into()),
            acked: true,
            api: Some("PAID".into()),
            transitions: 1,
            events: 1,
            ..Seen::default()
        }
    }

    fn unpaid(status: &str) -> Seen {
        Seen {
            status: status.into(),
            wechat: Some("NOTPAY".into()),
            api: Some(status.into()),
            acked: true,
            ..Seen::default()
        }
    }

    fn assessment(orders: Vec<Seen>) -> Assessment {
        Assessment {
            orders,
            dead_letters: 0,
        }
    }

    #[test]
    fn agreeing_orders_converge_and_count_as_paid() {
        let a = assessment(vec![paid(), unpaid("PENDING"), unpaid("CLOSED")]);
        assert!(a.converged());
        let row = a.row(Scenario::Baseline, &[], Some(1));
        assert_eq!((row.orders, row.payments, row.paid), (3, 1, 1));
        assert_eq!(
            (row.doubled, row.lost, row.wrong, row.unacked),
            (0, 0, 0, 0)
        );
        assert!(row.clean());
    }

    #[test]
    fn each_way_of_losing_a_payment_is_lost() {
        let pending = Seen {
            status: "PENDING".into(),
            api: Some("PENDING".into()),
            transitions: 0,
            events: 0,
            ..paid()
        };
        let stale_cache = Seen {
            api: Some("PENDING".into()),
            ..paid()
        };
        let unannounced = Seen {
            events: 0,
            ..paid()
        };
        for seen in [pending, stale_cache, unannounced] {
            assert!(seen.lost(), "{seen:?}");
            assert!(!assessment(vec![seen]).converged());
        }
    }

    #[test]
    fn each_way_of_doubling_a_payment_is_doubled() {
        let twice_paid = Seen {
            transitions: 2,
            ..paid()
        };
        let twice_announced = Seen {
            events: 2,
            ..paid()
        };
        let other_transaction = Seen {
            transaction_id: Some("4201".into()),
            ..paid()
        };
        for seen in [twice_paid, twice_announced, other_transaction] {
            assert!(seen.doubled(), "{seen:?}");
            let row = assessment(vec![seen]).row(Scenario::Baseline, &[], None);
            assert_eq!(row.doubled, 1);
            assert!(!row.clean());
        }
    }

    #[test]
    fn paid_here_but_not_at_wechat_or_a_disagreeing_api_is_wrong() {
        let invented = Seen {
            status: "PAID".into(),
            ..unpaid("PAID")
        };
        let api_disagrees = Seen {
            api: Some("PAID".into()),
            ..unpaid("PENDING")
        };
        let reviewed = Seen {
            status: "REVIEW".into(),
            api: Some("REVIEW".into()),
            ..unpaid("PENDING")
        };
        for seen in [invented, api_disagrees, reviewed] {
            assert!(seen.wrong(), "{seen:?}");
        }
    }

    #[test]
    fn unacknowledged_notifications_and_dead_letters_keep_it_unconverged() {
        let unacked = Seen {
            acked: false,
            ..paid()
        };
        assert!(!assessment(vec![unacked]).converged());
        let mut a = assessment(vec![paid()]);
        a.dead_letters = 1;
        assert!(!a.converged());
        assert!(!a.row(Scenario::Baseline, &[], Some(1)).clean());
    }

    #[test]
    fn a_notification_record_is_acked_once_one_copy_was_and_nothing_is_pending() {
        let acked_log = serde_json::json!({ "notifications": {
            "dropped": false, "held": false, "deliveries_running": 0,
            "attempts": [{ "outcome": "connection_error" }, { "outcome": "acked" }] } });
        assert!(acked(&acked_log));
        let retrying = serde_json::json!({ "notifications": {
            "dropped": false, "held": false, "deliveries_running": 1,
            "attempts": [{ "outcome": "connection_error" }] } });
        assert!(!acked(&retrying));
        let held = serde_json::json!({ "notifications": {
            "dropped": false, "held": true, "deliveries_running": 0, "attempts": [] } });
        assert!(!acked(&held));
        let dropped = serde_json::json!({ "notifications": {
            "dropped": true, "held": false, "deliveries_running": 0, "attempts": [] } });
        assert!(acked(&dropped));
    }
}
