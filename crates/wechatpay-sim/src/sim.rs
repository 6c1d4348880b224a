//! The simulator's shared state and the operations both APIs use: ids, payment, views.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::Serialize;
use wechat_pay::v2::{RefundStatus, TradeState};
use wechat_pay::{Fen, WeChatTime};

use crate::config::{NotifySigner, SimConfig, SimMerchant};
use crate::faults::Faults;
use crate::login::LoginBook;
use crate::notify;
use crate::store::{NotificationLog, Order, OrderKey, Refund, Store};

/// The simulator: configuration, merchants, orders, faults, logins.
#[derive(Debug)]
pub struct Sim {
    pub(crate) config: SimConfig,
    merchants: HashMap<String, SimMerchant>,
    pub(crate) store: Mutex<Store>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) logins: Mutex<LoginBook>,
    pub(crate) held: Mutex<Vec<notify::Delivery>>,
    /// Changes to days' bills (`/sim/v1/bill-adjustments`).
    pub(crate) adjustments: Mutex<Vec<crate::bill::Adjustment>>,
    pub(crate) http: reqwest::Client,
    pub(crate) clock: Clock,
    /// Who signs each merchant's v3 notifications, where switched from the configured one.
    notify_signers: Mutex<HashMap<String, NotifySigner>>,
    seq: AtomicU64,
}

/// The simulator's clock: real time plus an offset that only grows. Tests move it forward to
/// expire login codes, prepay sessions and `time_expire` windows without waiting.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    ahead_ms: AtomicU64,
}

impl Clock {
    fn ahead(&self) -> Duration {
        Duration::from_millis(self.ahead_ms.load(Ordering::Relaxed))
    }

    /// Now, on the monotonic clock (lifetimes, rate windows).
    pub(crate) fn now(&self) -> Instant {
        let real = Instant::now();
        real.checked_add(self.ahead()).unwrap_or(real)
    }

    /// Now, as WeChat writes it (`time_expire`, `time_end`).
    pub(crate) fn wechat_now(&self) -> WeChatTime {
        let real = WeChatTime::now();
        let ahead = i64::try_from(self.ahead().as_secs()).unwrap_or(i64::MAX);
        real.plus_seconds(ahead).unwrap_or(real)
    }

    fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .ahead_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                Some(a.saturating_add(ms))
            });
    }
}

/// Locks a mutex, recovering the data if a holder panicked (the simulator keeps serving).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What the user does in WeChat's payment sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PayResult {
    /// The payment goes through.
    Success,
    /// The payment fails (e.g. the bank declines).
    Payerror,
    /// The user is still entering the password: the order shows USERPAYING, nothing is sent.
    Userpaying,
}

/// Why a control request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No such order, refund or merchant.
    #[error("no order, refund or merchant numbered {0}")]
    NotFound(String),
    /// Several merchants have that number.
    #[error("several merchants have out_trade_no {0}; add ?mch_id=")]
    Ambiguous(String),
    /// The order cannot be paid in its state.
    #[error("{0}")]
    Conflict(String),
    /// The request is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// The one order among `keys` (found by `number`): of merchant `mch_id` when given, the
/// production order before a sandbox one with the same number.
fn pick(
    mut keys: Vec<OrderKey>,
    number: &str,
    mch_id: Option<&str>,
) -> Result<OrderKey, ControlError> {
    if let Some(mch) = mch_id {
        keys.retain(|k| k.mch_id == mch);
    }
    if keys.len() > 1 {
        keys.retain(|k| !k.sandbox);
    }
    match keys.len() {
        0 => Err(ControlError::NotFound(number.to_owned())),
        1 => Ok(keys.remove(0)),
        _ => Err(ControlError::Ambiguous(number.to_owned())),
    }
}

/// The simulator's view of an order (`GET /sim/v1/orders/{out_trade_no}`).
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    /// Our number.
    pub out_trade_no: String,
    /// Merchant number.
    pub mch_id: String,
    /// The Mini Program it was placed under.
    pub appid: String,
    /// Placed through the sandbox.
    pub sandbox: bool,
    /// NOTPAY, SUCCESS, CLOSED, PAYERROR, ...
    pub state: &'static str,
    /// Amount in fen.
    pub total_fee: Fen,
    /// Current prepay session.
    pub prepay_id: String,
    /// WeChat's number, once paid.
    pub transaction_id: Option<String>,
    /// When paid (`yyyyMMddHHmmss`).
    pub time_end: Option<String>,
    /// Where notifications go.
    pub notify_url: String,
    /// What happened to its notifications.
    pub notifications: NotificationLog,
    /// Its refunds, oldest first.
    pub refunds: Vec<RefundView>,
}

/// The simulator's view of a refund.
#[derive(Debug, Clone, Serialize)]
pub struct RefundView {
    /// The merchant's number.
    pub out_refund_no: String,
    /// WeChat's number.
    pub refund_id: String,
    /// Its amount.
    pub refund_fee: Fen,
    /// PROCESSING, SUCCESS, CHANGE or REFUNDCLOSE.
    pub status: &'static str,
    /// When it succeeded.
    pub success_time: Option<String>,
    /// Where its notification goes.
    pub notify_url: Option<String>,
    /// What happened to its notifications.
    pub notifications: NotificationLog,
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> Self {
        RefundView {
            out_refund_no: r.out_refund_no.clone(),
            refund_id: r.refund_id.clone(),
            refund_fee: r.refund_fee,
            status: r.status.as_str(),
            success_time: r.success_time.clone(),
            notify_url: r.notify_url.clone(),
            notifications: r.notifications.clone(),
        }
    }
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            out_trade_no: o.key.out_trade_no.clone(),
            mch_id: o.key.mch_id.clone(),
            appid: o.appid.clone(),
            sandbox: o.key.sandbox,
            state: o.state.as_str(),
            total_fee: o.total_fee,
            prepay_id: o.prepay_id.clone(),
            transaction_id: o.transaction_id.clone(),
            time_end: o.time_end.map(|t| t.to_string()),
            notify_url: o.notify_url.clone(),
            notifications: o.notifications.clone(),
            refunds: o.refunds.iter().map(RefundView::from).collect(),
        }
    }
}

impl Sim {
    /// A simulator with `config`.
    pub fn new(config: SimConfig) -> Arc<Self> {
        let merchants = config
            .merchants
            .iter()
            .map(|m| (m.mch_id.clone(), m.clone()))
            .collect();
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.notify_timeout);
        for ca in &config.notify_ca {
            http = http.add_root_certificate(ca.clone());
        }
        let http = http.build().unwrap_or_default();
        Arc::new(Sim {
            faults: Mutex::new(config.faults.clone()),
            config,
            merchants,
            store: Mutex::default(),
            logins: Mutex::default(),
            held: Mutex::default(),
            adjustments: Mutex::default(),
            http,
            clock: Clock::default(),
            notify_signers: Mutex::default(),
            seq: AtomicU64::new(1),
        })
    }

    /// The merchant with this number.
    pub(crate) fn merchant(&self, mch_id: &str) -> Option<&SimMerchant> {
        self.merchants.get(mch_id)
    }

    /// Which key signs merchant `mch_id`'s v3 notifications now.
    pub fn notify_signer(&self, mch_id: &str) -> NotifySigner {
        lock(&self.notify_signers)
            .get(mch_id)
            .copied()
            .unwrap_or(self.config.v3.notify_signer)
    }

    /// Switches merchant `mch_id`'s v3 notifications to `signer` (the migration from platform
    /// certificate to public key, or back): every notification sent from now on, retries
    /// included, is signed with it.
    pub fn set_notify_signer(
        &self,
        mch_id: &str,
        signer: NotifySigner,
    ) -> Result<(), ControlError> {
        if self.merchant(mch_id).is_none() {
            return Err(ControlError::NotFound(mch_id.to_owned()));
        }
        lock(&self.notify_signers).insert(mch_id.to_owned(), signer);
        tracing::info!(mch_id, ?signer, "v3 notification signer switched");
        Ok(())
    }

    /// The merchant for this Mini Program.
    pub(crate) fn merchant_by_appid(&self, appid: &str) -> Option<&SimMerchant> {
        self.config.merchants.iter().find(|m| m.appid == appid)
    }

    /// The current fault settings.
    pub fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// Replaces the fault settings. Lowering the reorder batch releases held notifications.
    pub fn set_faults(self: &Arc<Self>, faults: Faults) -> Result<(), ControlError> {
        faults.validate().map_err(ControlError::Invalid)?;
        // Lock order: held notifications, then faults (as in `notify::dispatch`).
        let mut held = lock(&self.held);
        let release = faults.reorder_notifications <= 1;
        *lock(&self.faults) = faults;
        let due = if release {
            std::mem::take(&mut *held)
        } else {
            Vec::new()
        };
        drop(held);
        notify::release(self, due);
        Ok(())
    }

    /// Moves the simulator's clock forward: login codes, prepay sessions, `time_expire` and
    /// the login rate window then see the later time. Notifications and auto-pay keep real
    /// (scaled) time.
    pub fn advance_clock(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Number of orders held.
    pub fn order_count(&self) -> usize {
        lock(&self.store).len()
    }

    /// A scaled duration (the notification schedule, code lifetimes).
    pub(crate) fn scaled(&self, d: Duration) -> Duration {
        Duration::try_from_secs_f64(d.as_secs_f64() * self.config.time_scale)
            .unwrap_or(Duration::ZERO)
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh prepay id: `wx` + time + random hex (36 characters).
    pub(crate) fn new_prepay_id(&self) -> String {
        let tail: u64 = rand::rng().random();
        format!(
            "wx{}{:04x}{:016x}",
            WeChatTime::now(),
            self.next_seq() % 0x10000,
            tail
        )
    }

    /// A fresh transaction id: 28 digits, like WeChat's.
    fn new_transaction_id(&self) -> String {
        let now = WeChatTime::now().to_string();
        let r: u32 = rand::rng().random_range(0..1_000_000);
        format!(
            "4200{:010}{}{:06}",
            self.next_seq() % 10_000_000_000,
            &now[..8],
            r
        )
    }

    /// A fresh refund id: 29 digits, like WeChat's.
    pub(crate) fn new_refund_id(&self) -> String {
        let now = WeChatTime::now().to_string();
        let r: u32 = rand::rng().random_range(0..1_000_000);
        format!(
            "5030{:011}{}{:06}",
            self.next_seq() % 100_000_000_000,
            &now[..8],
            r
        )
    }

    /// Finds the order with the refund numbered `out_refund_no` (of merchant `mch_id` when
    /// given; the production order before a sandbox one).
    pub fn find_refund(
        &self,
        out_refund_no: &str,
        mch_id: Option<&str>,
    ) -> Result<OrderKey, ControlError> {
        let keys = lock(&self.store).find_by_refund(out_refund_no);
        pick(keys, out_refund_no, mch_id)
    }

    /// The simulator's view of a refund.
    pub fn refund_view(&self, key: &OrderKey, out_refund_no: &str) -> Option<RefundView> {
        lock(&self.store)
            .get(key)?
            .refund(out_refund_no)
            .map(RefundView::from)
    }

    /// WeChat finishes a refund (`SUCCESS`, `CHANGE` or `REFUNDCLOSE`) and notifies it, when it
    /// has a notification URL. Only a PROCESSING refund can be finished.
    pub fn settle_refund(
        self: &Arc<Self>,
        key: &OrderKey,
        out_refund_no: &str,
        status: RefundStatus,
    ) -> Result<RefundView, ControlError> {
        if !status.is_final() {
            return Err(ControlError::Invalid(
                "a refund settles as SUCCESS, CHANGE or REFUNDCLOSE".into(),
            ));
        }
        let delivery = {
            let mut store = lock(&self.store);
            let now = self.clock.wechat_now();
            let order = store
                .get_mut(key)
                .ok_or_else(|| ControlError::NotFound(key.out_trade_no.clone()))?;
            let refund = order
                .refunds
                .iter_mut()
                .find(|r| r.out_refund_no == out_refund_no)
                .ok_or_else(|| ControlError::NotFound(out_refund_no.to_owned()))?;
            if refund.status != RefundStatus::Processing {
                return Err(ControlError::Conflict(format!(
                    "the refund is {}",
                    refund.status
                )));
            }
            refund.status = status;
            if status == RefundStatus::Success {
                refund.success_time = Some(now.to_dashed());
            }
            let order = store
                .get(key)
                .ok_or_else(|| ControlError::NotFound(key.out_trade_no.clone()))?;
            let refund = order
                .refund(out_refund_no)
                .ok_or_else(|| ControlError::NotFound(out_refund_no.to_owned()))?;
            let merchant = self
                .merchant(&key.mch_id)
                .ok_or_else(|| ControlError::NotFound(key.mch_id.clone()))?;
            notify::Delivery::refund(self, order, refund, merchant, &lock(&self.faults))
        };
        if let Some(delivery) = delivery {
            notify::dispatch(self, delivery);
        }
        self.refund_view(key, out_refund_no)
            .ok_or_else(|| ControlError::NotFound(out_refund_no.to_owned()))
    }

    /// A refund made in the merchant portal, outside the API: SUCCESS at once, numbered by
    /// WeChat (`PORTAL…`), no notification. The merchant learns of it from the bill or a
    /// refund query.
    pub fn portal_refund(&self, key: &OrderKey, amount: Fen) -> Result<RefundView, ControlError> {
        let now = self.clock.wechat_now();
        let mut store = lock(&self.store);
        let order = store
            .get_mut(key)
            .ok_or_else(|| ControlError::NotFound(key.out_trade_no.clone()))?;
        if !order.state.was_paid() {
            return Err(ControlError::Conflict(format!(
                "the order is {:?}",
                order.state
            )));
        }
        if amount.is_zero() || order.refunded().saturating_add(amount.get()) > order.total_fee.get()
        {
            return Err(ControlError::Invalid(
                "amount_fen must be more than 0 and at most what is left to refund".into(),
            ));
        }
        let refund = Refund {
            out_refund_no: format!("PORTAL{}{:06}", now, self.next_seq() % 1_000_000),
            refund_id: self.new_refund_id(),
            refund_fee: amount,
            status: RefundStatus::Success,
            success_time: Some(now.to_dashed()),
            requested_at: now,
            notify_url: None,
            notifications: NotificationLog::default(),
        };
        let view = RefundView::from(&refund);
        let (number, id) = (refund.out_refund_no.clone(), refund.refund_id.clone());
        order.state = TradeState::Refund;
        order.refunds.push(refund);
        store.index_refund(key, &number, &id);
        Ok(view)
    }

    /// Schedules the automatic success of a new refund, when configured.
    pub(crate) fn schedule_auto_refund(self: &Arc<Self>, key: OrderKey, out_refund_no: String) {
        let Some(after) = self.config.auto_refund_after else {
            return;
        };
        let sim = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            match sim.settle_refund(&key, &out_refund_no, RefundStatus::Success) {
                Ok(_) => tracing::info!(%out_refund_no, "auto-refunded"),
                Err(e) => tracing::info!(%out_refund_no, reason = %e, "auto-refund skipped"),
            }
        });
    }

    /// Finds the order numbered `out_trade_no` (of merchant `mch_id` when given).
    pub fn find(&self, out_trade_no: &str, mch_id: Option<&str>) -> Result<OrderKey, ControlError> {
        let keys = lock(&self.store).find_by_number(out_trade_no);
        pick(keys, out_trade_no, mch_id)
    }

    /// The simulator's view of an order.
    pub fn view(&self, key: &OrderKey) -> Option<OrderView> {
        lock(&self.store).get(key).map(OrderView::from)
    }

    /// The user pays (or fails to pay) the order in WeChat; the notification follows.
    pub fn pay(
        self: &Arc<Self>,
        key: &OrderKey,
        result: PayResult,
    ) -> Result<OrderView, ControlError> {
        let delivery = {
            let mut store = lock(&self.store);
            let prepay_ttl = self.config.prepay_ttl;
            let order = store
                .get_mut(key)
                .ok_or_else(|| ControlError::NotFound(key.out_trade_no.clone()))?;
            match order.state {
                TradeState::Notpay | TradeState::Userpaying | TradeState::Payerror => {}
                other => {
                    return Err(ControlError::Conflict(format!(
                        "order is {}, it cannot be paid",
                        other.as_str()
                    )));
                }
            }
            let now = self.clock.now();
            if now.saturating_duration_since(order.prepay_issued) > prepay_ttl {
                return Err(ControlError::Conflict("the prepay_id has expired".into()));
            }
            if order
                .time_expire
                .is_some_and(|t| t.unix_seconds() < self.clock.wechat_now().unix_seconds())
            {
                return Err(ControlError::Conflict(
                    "the order is past its time_expire".into(),
                ));
            }
            match result {
                PayResult::Success => {
                    let txn = self.new_transaction_id();
                    order.state = TradeState::Success;
                    order.transaction_id = Some(txn.clone());
                    order.time_end = Some(self.clock.wechat_now());
                    store.index_transaction(key, &txn);
                }
                PayResult::Payerror => order.state = TradeState::Payerror,
                PayResult::Userpaying => {
                    order.state = TradeState::Userpaying;
                    return Ok(OrderView::from(&*order));
                }
            }
            let order = store
                .get(key)
                .ok_or_else(|| ControlError::NotFound(key.out_trade_no.clone()))?;
            let merchant = self
                .merchant(&key.mch_id)
                .ok_or_else(|| ControlError::NotFound(key.mch_id.clone()))?;
            let faults = lock(&self.faults).clone();
            notify::Delivery::build(self, order, merchant, &faults)
        };
        // The view after dispatch shows whether the notification was dropped or held.
        if let Some(delivery) = delivery {
            notify::dispatch(self, delivery);
        }
        self.view(key)
            .ok_or_else(|| ControlError::NotFound(key.out_trade_no.clone()))
    }

    /// Schedules the auto-pay of a freshly prepaid order, when configured.
    pub(crate) fn schedule_auto_pay(self: &Arc<Self>, key: OrderKey) {
        let Some(after) = self.config.auto_pay_after else {
            return;
        };
        let sim = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            match sim.pay(&key, PayResult::Success) {
                Ok(_) => tracing::info!(out_trade_no = %key.out_trade_no, "auto-paid"),
                Err(e) => {
                    tracing::info!(out_trade_no = %key.out_trade_no, reason = %e, "auto-pay skipped")
                }
            }
        });
    }
}
