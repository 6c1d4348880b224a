//! Payment and refund notifications: built like WeChat's (payments signed, refunds with
//! their content encrypted in `req_info`), POSTed to their `notify_url`, repeated on
//! WeChat's retry schedule until acknowledged.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use wechat_pay::Fen;
use wechat_pay::NonceStr;
use wechat_pay::v2::{self, ApiKey, Params, SignType, TradeState, xml};

use crate::config::SimMerchant;
use crate::faults::Faults;
use crate::sim::{Sim, lock, now_ms};
use crate::store::{Attempt, NotificationLog, Order, OrderKey, Refund};
use crate::v3_api;

/// WeChat's gaps between notification attempts, in seconds (§2.9 of the reference): the
/// first delivery is at t=0, then one retry after each gap — 16 attempts over 24 h 4 min.
///
/// ⚠ The reference says the docs do not state whether the first delivery is one of the 15
/// entries; as it says to, the simulator treats the table as "first delivery at t=0, then a
/// retry after each gap".
pub const RETRY_GAPS_SECS: [u64; 15] = [
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
];

/// Largest part of an ack body kept in the record.
const MAX_RECORDED_ACK: usize = 1024;

/// What a notification is about, and so where its record is kept.
#[derive(Debug, Clone)]
pub(crate) enum Subject {
    /// An order's payment, in the state the notification reports (delivery stops if the
    /// order leaves it).
    Payment { key: OrderKey, state: TradeState },
    /// One refund of an order (its final state never changes).
    Refund {
        key: OrderKey,
        out_refund_no: String,
    },
}

impl Subject {
    fn key(&self) -> &OrderKey {
        match self {
            Subject::Payment { key, .. } | Subject::Refund { key, .. } => key,
        }
    }

    /// The number logs name it by.
    fn number(&self) -> &str {
        match self {
            Subject::Payment { key, .. } => &key.out_trade_no,
            Subject::Refund { out_refund_no, .. } => out_refund_no,
        }
    }
}

/// One notification, ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    subject: Subject,
    url: String,
    body: String,
    /// A v3 notification (JSON), signed as each copy is sent.
    v3: Option<V3Signing>,
}

/// How a v3 notification is signed: by the key its merchant's notifications are signed
/// with at the moment of sending (the migration switches it), or forged.
#[derive(Debug, Clone)]
struct V3Signing {
    mch_id: String,
    forge: bool,
}

impl Delivery {
    /// A v3 notification of `order` (signed when sent).
    fn v3(order: &Order, subject: Subject, url: String, body: String, faults: &Faults) -> Self {
        Delivery {
            subject,
            url,
            body,
            v3: Some(V3Signing {
                mch_id: order.key.mch_id.clone(),
                forge: faults.forge_signature,
            }),
        }
    }

    /// Builds and signs the notification for `order`'s current state, applying the
    /// wrong-amount and forged-signature faults. `None`: a v3 order's failed payment, which
    /// v3 does not notify.
    pub(crate) fn build(
        sim: &Sim,
        order: &Order,
        merchant: &SimMerchant,
        faults: &Faults,
    ) -> Option<Delivery> {
        let subject = Subject::Payment {
            key: order.key.clone(),
            state: order.state,
        };
        if order.v3 {
            let body = v3_api::payment_notification(sim, order, u64::from(faults.wrong_amount))?;
            return Some(Delivery::v3(
                order,
                subject,
                order.notify_url.clone(),
                body,
                faults,
            ));
        }
        let mut p = Params::new();
        p.insert("return_code", "SUCCESS");
        p.insert("appid", order.appid.clone());
        p.insert("mch_id", order.key.mch_id.clone());
        p.insert("nonce_str", NonceStr::generate().to_string());
        p.insert("out_trade_no", order.key.out_trade_no.clone());
        p.insert("trade_type", order.trade_type.clone());
        p.insert("is_subscribe", "N");
        p.insert("bank_type", "OTHERS");
        p.insert("fee_type", "CNY");
        let amount = if faults.wrong_amount {
            order.total_fee.get().saturating_add(1)
        } else {
            order.total_fee.get()
        };
        p.insert("total_fee", amount.to_string());
        p.insert("cash_fee", amount.to_string());
        if let Some(openid) = &order.openid {
            p.insert("openid", openid.clone());
        }
        if let Some(attach) = &order.attach {
            p.insert("attach", attach.clone());
        }
        if order.state == TradeState::Success {
            p.insert("result_code", "SUCCESS");
        } else {
            p.insert("result_code", "FAIL");
            p.insert("err_code", "PAYERROR");
            p.insert("err_code_des", "支付失败");
        }
        if let Some(txn) = &order.transaction_id {
            p.insert("transaction_id", txn.clone());
        }
        if let Some(t) = order.time_end {
            p.insert("time_end", t.to_string());
        }
        // Signed with the order's sign_type, as issue #3 fixes it. The reference (§6) would
        // default to MD5 and notes that WeChat sometimes sends MD5 for HMAC orders; receivers
        // must therefore read `sign_type` from the notification, which ours do.
        if order.sign_type != SignType::Md5 {
            p.insert("sign_type", order.sign_type.as_str());
        }
        let key = merchant_key(order, merchant);
        v2::sign_params(&mut p, &key, order.sign_type);
        if faults.forge_signature {
            let forger = ApiKey::new("f0rgedf0rgedf0rgedf0rgedf0rged00").unwrap_or(key);
            v2::sign_params(&mut p, &forger, order.sign_type);
        }
        // Every value here is ours and XML-safe; an encoding failure would be a bug, and an
        // empty body is what the receiver would then see and refuse.
        let body = xml::encode(&p).unwrap_or_default();
        Some(Delivery {
            subject,
            url: order.notify_url.clone(),
            body,
            v3: None,
        })
    }

    /// Builds the notification of `refund`'s final state: the envelope in the clear, the
    /// refund's fields encrypted into `req_info` with the merchant's key (the forged-signature
    /// fault encrypts with another key, the wrong-amount fault adds one fen). `None` when the
    /// refund has nowhere to be notified.
    pub(crate) fn refund(
        sim: &Sim,
        order: &Order,
        refund: &Refund,
        merchant: &SimMerchant,
        faults: &Faults,
    ) -> Option<Delivery> {
        let url = refund.notify_url.clone()?;
        let subject = Subject::Refund {
            key: order.key.clone(),
            out_refund_no: refund.out_refund_no.clone(),
        };
        if order.v3 {
            let body =
                v3_api::refund_notification(sim, order, refund, u64::from(faults.wrong_amount))?;
            return Some(Delivery::v3(order, subject, url, body, faults));
        }
        let mut info = Params::new();
        if let Some(txn) = &order.transaction_id {
            info.insert("transaction_id", txn.clone());
        }
        info.insert("out_trade_no", order.key.out_trade_no.clone());
        info.insert("refund_id", refund.refund_id.clone());
        info.insert("out_refund_no", refund.out_refund_no.clone());
        info.insert("total_fee", order.total_fee.to_string());
        info.insert("settlement_total_fee", order.total_fee.to_string());
        let amount = if faults.wrong_amount {
            refund.refund_fee.get().saturating_add(1)
        } else {
            refund.refund_fee.get()
        };
        let amount = Fen::new(amount).unwrap_or(refund.refund_fee).to_string();
        info.insert("refund_fee", amount.clone());
        info.insert("settlement_refund_fee", amount);
        info.insert("refund_status", refund.status.as_str());
        if let Some(t) = &refund.success_time {
            info.insert("success_time", t.clone());
        }
        info.insert("refund_recv_accout", "支付用户零钱");
        info.insert("refund_account", "REFUND_SOURCE_UNSETTLED_FUNDS");
        info.insert("refund_request_source", "API");
        let key = merchant_key(order, merchant);
        let key = if faults.forge_signature {
            ApiKey::new("f0rgedf0rgedf0rgedf0rgedf0rged00").unwrap_or(key)
        } else {
            key
        };
        let plain = xml::encode_with_root(&info, "root").unwrap_or_default();
        let mut p = Params::new();
        p.insert("return_code", "SUCCESS");
        p.insert("appid", order.appid.clone());
        p.insert("mch_id", order.key.mch_id.clone());
        p.insert("nonce_str", NonceStr::generate().to_string());
        p.insert("req_info", v2::encrypt_req_info(plain.as_bytes(), &key));
        Some(Delivery {
            subject,
            url,
            body: xml::encode(&p).unwrap_or_default(),
            v3: None,
        })
    }
}

/// The key of `order`'s notifications: the merchant's, or its sandbox key for a sandbox
/// order.
fn merchant_key(order: &Order, merchant: &SimMerchant) -> ApiKey {
    if order.key.sandbox {
        merchant.sandbox_key()
    } else {
        merchant.key.clone()
    }
}

/// Attempts in all: the first delivery, then one retry after each gap.
const ATTEMPTS: u32 = 16;
const _: () = assert!(RETRY_GAPS_SECS.len() + 1 == ATTEMPTS as usize);

/// The pause before attempt number `attempt` (1 = the first delivery, sent at once), scaled.
pub(crate) fn gap_before(sim: &Sim, attempt: u32) -> Duration {
    let gap = attempt
        .checked_sub(2)
        .and_then(|i| RETRY_GAPS_SECS.get(usize::try_from(i).ok()?));
    gap.map_or(Duration::ZERO, |secs| {
        sim.scaled(Duration::from_secs(*secs))
    })
}

/// A delivery counted in its order's record (`deliveries_running`) from before it is
/// scheduled until its task ends, however it ends: while the count is 0 and nothing is held,
/// no attempt for the order is under way or to come.
struct Running {
    sim: Arc<Sim>,
    subject: Subject,
}

impl Running {
    /// Counts a delivery for `subject`, applying `also` to the record under the same lock.
    fn start(sim: &Arc<Sim>, subject: &Subject, also: impl FnOnce(&mut NotificationLog)) -> Self {
        mark(sim, subject, |log| {
            also(log);
            log.deliveries_running += 1;
        });
        Running {
            sim: Arc::clone(sim),
            subject: subject.clone(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        mark(&self.sim, &self.subject, |log| {
            log.deliveries_running = log.deliveries_running.saturating_sub(1);
        });
    }
}

/// Sends `delivery` now, or drops or holds it as the faults say.
pub(crate) fn dispatch(sim: &Arc<Sim>, delivery: Delivery) {
    // The held list is locked before the faults are read, and `Sim::set_faults` locks it
    // before changing them: a notification can never be held after the fault is switched off.
    let mut held = lock(&sim.held);
    let faults = sim.faults();
    if faults.drop_notifications {
        drop(held);
        mark(sim, &delivery.subject, |log| log.dropped = true);
        tracing::info!(
            number = delivery.subject.number(),
            "notification dropped (fault)"
        );
        return;
    }
    if faults.reorder_notifications > 1 {
        mark(sim, &delivery.subject, |log| log.held = true);
        held.push(delivery);
        let due = if held.len() >= faults.reorder_notifications as usize {
            std::mem::take(&mut *held)
        } else {
            Vec::new()
        };
        drop(held);
        release(sim, due);
        return;
    }
    drop(held);
    let running = Running::start(sim, &delivery.subject, |_| {});
    let (sim, delay) = (
        Arc::clone(sim),
        Duration::from_millis(faults.delay_notifications_ms),
    );
    tokio::spawn(async move {
        // The late-notification fault: the first delivery waits (counted as running).
        tokio::time::sleep(delay).await;
        deliver(sim, Arc::new(delivery), 1, running).await;
    });
}

/// Sends held notifications newest first: each first attempt is finished before the next one
/// starts, so they arrive in that order; each then follows its own retry schedule.
pub(crate) fn release(sim: &Arc<Sim>, held: Vec<Delivery>) {
    if held.is_empty() {
        return;
    }
    let batch: Vec<(Arc<Delivery>, Running)> = held
        .into_iter()
        .rev()
        .map(|delivery| {
            let running = Running::start(sim, &delivery.subject, |log| log.held = false);
            (Arc::new(delivery), running)
        })
        .collect();
    let sim = Arc::clone(sim);
    tokio::spawn(async move {
        for (delivery, running) in batch {
            if attempt(&sim, &delivery, 1).await == Next::Retry {
                tokio::spawn(deliver(Arc::clone(&sim), delivery, 2, running));
            }
        }
    });
}

fn mark(sim: &Sim, subject: &Subject, f: impl FnOnce(&mut NotificationLog)) {
    let mut store = lock(&sim.store);
    let Some(order) = store.get_mut(subject.key()) else {
        return;
    };
    let log = match subject {
        Subject::Payment { .. } => Some(&mut order.notifications),
        Subject::Refund { out_refund_no, .. } => order
            .refunds
            .iter_mut()
            .find(|r| &r.out_refund_no == out_refund_no)
            .map(|r| &mut r.notifications),
    };
    if let Some(log) = log {
        f(log);
    }
}

/// What follows an attempt.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Acknowledged, or the order has left the state the notification reports.
    Stop,
    /// Not acknowledged: try again after the next gap.
    Retry,
}

/// Attempts delivery from attempt `first` on the schedule until a copy is acknowledged or
/// the schedule ends; `_running` counts this delivery until it returns.
async fn deliver(sim: Arc<Sim>, delivery: Arc<Delivery>, first: u32, _running: Running) {
    for number in first..=ATTEMPTS {
        tokio::time::sleep(gap_before(&sim, number)).await;
        if attempt(&sim, &delivery, number).await == Next::Stop {
            return;
        }
    }
    tracing::warn!(
        number = delivery.subject.number(),
        "notification schedule exhausted"
    );
}

/// One attempt: every copy the duplicate fault asks for, concurrently, each recorded before
/// this returns.
async fn attempt(sim: &Arc<Sim>, delivery: &Arc<Delivery>, number: u32) -> Next {
    if let Subject::Payment { key, state } = &delivery.subject {
        let current = lock(&sim.store).get(key).map(|o| o.state);
        if current != Some(*state) {
            tracing::info!(out_trade_no = %key.out_trade_no, "order state changed; older notification stopped");
            return Next::Stop;
        }
    }
    let copies = sim.faults().copies();
    let mut set = JoinSet::new();
    for copy in 1..=copies {
        let (sim, delivery) = (Arc::clone(sim), Arc::clone(delivery));
        set.spawn(async move { send_copy(&sim, &delivery, number, copy).await });
    }
    let mut acked = false;
    while let Some(result) = set.join_next().await {
        acked |= result.unwrap_or(false);
    }
    if acked {
        tracing::info!(
            number = delivery.subject.number(),
            attempt = number,
            "notification acknowledged"
        );
        Next::Stop
    } else {
        tracing::info!(
            number = delivery.subject.number(),
            attempt = number,
            "notification not acknowledged"
        );
        Next::Retry
    }
}

/// Largest ack body read; a bigger one is cut here and cannot be a valid ack.
const MAX_ACK_READ: usize = 64 * 1024;

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_ACK_READ.saturating_sub(body.len()))]);
        if body.len() >= MAX_ACK_READ {
            break;
        }
    }
    Ok(body)
}

/// Sends one copy and records it; true when the receiver acknowledged success.
async fn send_copy(sim: &Sim, delivery: &Delivery, attempt: u32, copy: u32) -> bool {
    let at_ms = now_ms();
    let mut request = sim.http.post(&delivery.url).body(delivery.body.clone());
    let mut serial = None;
    request = match &delivery.v3 {
        None => request.header(reqwest::header::CONTENT_TYPE, "text/xml"),
        Some(signing) => {
            let signer = sim.notify_signer(&signing.mch_id);
            let headers =
                v3_api::signature_headers(sim, signer, delivery.body.as_bytes(), signing.forge);
            serial = Some(sim.config.v3.serial(signer).to_owned());
            headers.into_iter().fold(
                request.header(reqwest::header::CONTENT_TYPE, "application/json"),
                |r, (name, value)| r.header(name, value),
            )
        }
    };
    let sent = request.send().await;
    let (status, ack_body, outcome) = match sent {
        Err(e) if e.is_timeout() => (None, None, "timeout"),
        Err(_) => (None, None, "connection_error"),
        Ok(response) => {
            let status = response.status().as_u16();
            match read_capped(response).await {
                Err(e) if e.is_timeout() => (Some(status), None, "timeout"),
                Err(_) => (Some(status), None, "connection_error"),
                Ok(bytes) => {
                    let acked = match delivery.v3 {
                        // v3 (§3.4): 200 or 204 is success, whatever the body says.
                        Some(_) => status == 200 || status == 204,
                        // WeChat: "a non-200 status counts as failure".
                        None => {
                            status == 200
                                && xml::decode(&bytes)
                                    .is_ok_and(|ack| ack.get("return_code") == Some("SUCCESS"))
                        }
                    };
                    let outcome = if acked {
                        "acked"
                    } else if (200..300).contains(&status) {
                        "failure_ack"
                    } else {
                        "http_error"
                    };
                    let kept = &bytes[..bytes.len().min(MAX_RECORDED_ACK)];
                    (
                        Some(status),
                        Some(String::from_utf8_lossy(kept).into_owned()),
                        outcome,
                    )
                }
            }
        }
    };
    mark(sim, &delivery.subject, |log| {
        log.attempts.push(Attempt {
            attempt,
            copy,
            at_ms,
            status,
            ack_body,
            outcome,
            serial,
        })
    });
    outcome == "acked"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;

    #[test]
    fn the_schedule_is_scaled_and_starts_at_once() {
        let sim = Sim::new(SimConfig {
            time_scale: 0.01,
            ..SimConfig::default()
        });
        let gaps: Vec<Duration> = (1..=5).map(|n| gap_before(&sim, n)).collect();
        let ms = Duration::from_millis;
        assert_eq!(gaps, [Duration::ZERO, ms(150), ms(150), ms(300), ms(1800)]);
        assert_eq!(gap_before(&sim, ATTEMPTS), ms(216_000));
        assert_eq!(gap_before(&sim, ATTEMPTS + 1), Duration::ZERO);
    }
}
