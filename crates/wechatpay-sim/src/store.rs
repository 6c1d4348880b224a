//! The simulator's memory: orders, indexed by merchant and number and by transaction id.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::Serialize;
use wechat_pay::v2::{RefundStatus, SignType, TradeState};
use wechat_pay::{Fen, WeChatTime};

/// Orders are unique per merchant, and the sandbox keeps its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderKey {
    /// Placed through `/sandboxnew/...`.
    pub sandbox: bool,
    /// Merchant number.
    pub mch_id: String,
    /// Merchant order number.
    pub out_trade_no: String,
}

/// One order as WeChat sees it.
#[derive(Debug, Clone)]
pub struct Order {
    /// Merchant, sandbox or not, and number: where it is kept.
    pub key: OrderKey,
    /// The appid it was placed under.
    pub appid: String,
    /// The business parameters of unified order (all but `nonce_str` and `sign`): re-entry
    /// with different ones is `OUT_TRADE_NO_USED`.
    pub fingerprint: BTreeMap<String, String>,
    /// Amount in fen.
    pub total_fee: Fen,
    /// Echoed in queries and notifications.
    pub attach: Option<String>,
    /// The payer.
    pub openid: Option<String>,
    /// `JSAPI`, ...
    pub trade_type: String,
    /// Where notifications go.
    pub notify_url: String,
    /// How the order was signed: notifications are signed the same way.
    pub sign_type: SignType,
    /// Placed through API v3: its notifications (and its refunds') are v3's.
    pub v3: bool,
    /// When the order number stops being payable.
    pub time_expire: Option<WeChatTime>,
    /// The current prepay session.
    pub prepay_id: String,
    /// When it was issued.
    pub prepay_issued: Instant,
    /// NOTPAY, SUCCESS, CLOSED, ...
    pub state: TradeState,
    /// WeChat's number, once paid.
    pub transaction_id: Option<String>,
    /// When payment completed.
    pub time_end: Option<WeChatTime>,
    /// What happened to its notifications.
    pub notifications: NotificationLog,
    /// Its refunds, oldest first.
    pub refunds: Vec<Refund>,
}

impl Order {
    /// The refund numbered `out_refund_no`.
    pub(crate) fn refund(&self, out_refund_no: &str) -> Option<&Refund> {
        self.refunds
            .iter()
            .find(|r| r.out_refund_no == out_refund_no)
    }

    /// What was refunded or is being refunded (closed refunds gave nothing back).
    pub(crate) fn refunded(&self) -> u64 {
        self.refunds
            .iter()
            .filter(|r| r.status != RefundStatus::Refundclose)
            .map(|r| r.refund_fee.get())
            .fold(0, u64::saturating_add)
    }
}

/// One refund as WeChat sees it.
#[derive(Debug, Clone)]
pub struct Refund {
    /// The merchant's number for it.
    pub out_refund_no: String,
    /// WeChat's number for it.
    pub refund_id: String,
    /// Its amount.
    pub refund_fee: Fen,
    /// PROCESSING until settled.
    pub status: RefundStatus,
    /// When it succeeded (`yyyy-MM-dd HH:mm:ss`, Beijing time).
    pub success_time: Option<String>,
    /// When it was requested (the day its bill line falls on).
    pub requested_at: WeChatTime,
    /// Where its notification goes (the request's, else the simulator's), if anywhere.
    pub notify_url: Option<String>,
    /// What happened to its notifications.
    pub notifications: NotificationLog,
}

/// The record of an order's notifications.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NotificationLog {
    /// The drop fault swallowed them.
    pub dropped: bool,
    /// Held by the reorder fault, not yet sent.
    pub held: bool,
    /// Deliveries under way or scheduled. While 0 and not `held`, no further attempt will
    /// be made (until the order is paid again or held notifications are released).
    pub deliveries_running: u32,
    /// Every copy of every attempt, in the order they finished.
    pub attempts: Vec<Attempt>,
}

/// One copy of one delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// 1 for the first delivery, 2 for the first retry, ...
    pub attempt: u32,
    /// Which concurrent copy (1-based; more than 1 under the duplicate fault).
    pub copy: u32,
    /// When it was sent, Unix milliseconds.
    pub at_ms: u64,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// The receiver's body (first 1 KiB), if it answered.
    pub ack_body: Option<String>,
    /// `acked`, `failure_ack`, `http_error`, `timeout` or `connection_error`.
    pub outcome: &'static str,
    /// The `Wechatpay-Serial` a v3 copy was signed under (public key id or certificate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

/// All orders.
#[derive(Debug, Default)]
pub(crate) struct Store {
    orders: HashMap<OrderKey, Order>,
    by_transaction: HashMap<(bool, String, String), OrderKey>,
    by_number: HashMap<String, Vec<OrderKey>>,
    /// `out_refund_no` and `refund_id` (with sandbox and merchant) to the refunded order.
    by_refund: HashMap<(bool, String, String), OrderKey>,
}

impl Store {
    /// Every order.
    pub(crate) fn orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    /// The order under `key`.
    pub(crate) fn get(&self, key: &OrderKey) -> Option<&Order> {
        self.orders.get(key)
    }

    /// The order under `key`, to change it.
    pub(crate) fn get_mut(&mut self, key: &OrderKey) -> Option<&mut Order> {
        self.orders.get_mut(key)
    }

    /// Adds or replaces an order.
    pub(crate) fn insert(&mut self, order: Order) {
        let key = order.key.clone();
        if self.orders.insert(key.clone(), order).is_none() {
            self.by_number
                .entry(key.out_trade_no.clone())
                .or_default()
                .push(key);
        }
    }

    /// Records a transaction id for lookups.
    pub(crate) fn index_transaction(&mut self, key: &OrderKey, transaction_id: &str) {
        self.by_transaction.insert(
            (key.sandbox, key.mch_id.clone(), transaction_id.to_owned()),
            key.clone(),
        );
    }

    /// The key of the order paid under `transaction_id`.
    pub(crate) fn by_transaction(
        &self,
        sandbox: bool,
        mch_id: &str,
        transaction_id: &str,
    ) -> Option<&OrderKey> {
        self.by_transaction
            .get(&(sandbox, mch_id.to_owned(), transaction_id.to_owned()))
    }

    /// Records a refund's numbers for lookups.
    pub(crate) fn index_refund(&mut self, key: &OrderKey, out_refund_no: &str, refund_id: &str) {
        for number in [out_refund_no, refund_id] {
            self.by_refund.insert(
                (key.sandbox, key.mch_id.clone(), number.to_owned()),
                key.clone(),
            );
        }
    }

    /// The key of the order with the refund numbered `number` (ours or WeChat's).
    pub(crate) fn by_refund(&self, sandbox: bool, mch_id: &str, number: &str) -> Option<&OrderKey> {
        self.by_refund
            .get(&(sandbox, mch_id.to_owned(), number.to_owned()))
    }

    /// Keys of every order with a refund numbered `number`, across merchants and the sandbox.
    pub(crate) fn find_by_refund(&self, number: &str) -> Vec<OrderKey> {
        self.by_refund
            .iter()
            .filter(|((_, _, n), _)| n == number)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// Keys of every order with this number, across merchants and the sandbox.
    pub(crate) fn find_by_number(&self, out_trade_no: &str) -> Vec<OrderKey> {
        self.by_number
            .get(out_trade_no)
            .cloned()
            .unwrap_or_default()
    }

    /// How many orders are kept (the health answer).
    pub(crate) fn len(&self) -> usize {
        self.orders.len()
    }
}
