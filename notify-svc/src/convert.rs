//! A verified payment notification, or a decrypted refund notification, as the protobuf event
//! notify-svc publishes: the one place that knows both wechat-pay's notifications and
//! `proto::events::v1`.

use messaging::{PAYMENT_FAILED, PAYMENT_SUCCEEDED, REFUND_SETTLED};
use prost::Message as _;
use proto::events::v1::{PaymentFailed, PaymentSucceeded, RefundSettled};
use wechat_pay::WeChatTime;
use wechat_pay::v2::{
    PaidDetails, PaymentNotification, PaymentOutcome, RefundNotification, TradeState,
};
use wechat_pay::v3;

/// An event ready to publish.
#[derive(Debug)]
pub(crate) struct PaymentEvent {
    /// `payment.succeeded`, `payment.failed` or `refund.settled`; also the `event-type`
    /// header.
    pub(crate) routing_key: &'static str,
    /// The same for every repeat of one notification, so consumers can drop duplicates.
    pub(crate) id: String,
    /// The encoded `PaymentSucceeded` or `PaymentFailed`.
    pub(crate) body: Vec<u8>,
}

impl PaymentEvent {
    /// The event of `n`, received at `received_at_unix_ms` while handling `trace_id`.
    pub(crate) fn of(n: &PaymentNotification, trace_id: &str, received_at_unix_ms: i64) -> Self {
        match &n.outcome {
            PaymentOutcome::Paid(paid) => {
                let e = payment_succeeded(n, paid, trace_id, received_at_unix_ms);
                PaymentEvent {
                    routing_key: PAYMENT_SUCCEEDED,
                    body: e.encode_to_vec(),
                    id: e.event_id,
                }
            }
            PaymentOutcome::Failed {
                err_code,
                err_code_des,
            } => {
                // A failure has no transaction id; WeChat repeats a notification with the
                // same nonce, so the nonce tells repeats from a second failure.
                let nonce = n.fields.get("nonce_str").unwrap_or_default();
                let e = PaymentFailed {
                    event_id: format!("wxpay-failed:{}:{nonce}", n.out_trade_no),
                    out_trade_no: n.out_trade_no.to_string(),
                    appid: n.appid.clone(),
                    mch_id: n.mch_id.clone(),
                    err_code: err_code.clone().unwrap_or_default(),
                    err_code_des: err_code_des.clone().unwrap_or_default(),
                    received_at_unix_ms,
                    trace_id: trace_id.to_owned(),
                };
                PaymentEvent {
                    routing_key: PAYMENT_FAILED,
                    body: e.encode_to_vec(),
                    id: e.event_id,
                }
            }
        }
    }
}

impl PaymentEvent {
    /// The `refund.settled` event of `n`: one per refund and final state, whatever the
    /// number of repeats.
    pub(crate) fn refund(n: &RefundNotification, trace_id: &str, received_at_unix_ms: i64) -> Self {
        let info = &n.info;
        let e = RefundSettled {
            event_id: format!(
                "wxrefund:{}:{}",
                info.refund_id,
                info.refund_status.as_str()
            ),
            out_trade_no: info.out_trade_no.to_string(),
            transaction_id: info.transaction_id.to_string(),
            out_refund_no: info.out_refund_no.to_string(),
            refund_id: info.refund_id.to_string(),
            total_fen: info.total_fee.as_i64(),
            refund_fen: info.refund_fee.as_i64(),
            status: info.refund_status.as_str().to_owned(),
            success_time: info.success_time.clone().unwrap_or_default(),
            appid: n.appid.clone(),
            mch_id: n.mch_id.clone(),
            received_at_unix_ms,
            trace_id: trace_id.to_owned(),
        };
        PaymentEvent {
            routing_key: REFUND_SETTLED,
            body: e.encode_to_vec(),
            id: e.event_id,
        }
    }
}

/// Why a verified, decrypted v3 resource cannot become an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum V3FieldError {
    /// A field the event needs is missing or unreadable.
    #[error("field {0} is missing or invalid")]
    Field(&'static str),
    /// The amounts contradict each other.
    #[error("amount {0} contradicts the others")]
    Amount(&'static str),
}

impl PaymentEvent {
    /// The `payment.succeeded` event of a v3 `TRANSACTION.SUCCESS` resource (already checked
    /// for our merchant): the same event, and event id, as the payment's v2 notification
    /// would give.
    pub(crate) fn v3_payment(
        t: &v3::Transaction,
        trace_id: &str,
        received_at_unix_ms: i64,
    ) -> Result<Self, V3FieldError> {
        use V3FieldError::{Amount, Field};
        if t.trade_state != TradeState::Success {
            return Err(Field("trade_state"));
        }
        let transaction_id = t
            .transaction_id
            .as_deref()
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(Field("transaction_id"))?;
        let amount = t.amount.as_ref().ok_or(Field("amount"))?;
        let total = amount
            .total
            .filter(|f| !f.is_zero())
            .ok_or(Field("amount.total"))?;
        if amount.payer_total.is_some_and(|paid| paid > total) {
            return Err(Amount("amount.payer_total"));
        }
        let paid_at = t
            .success_time
            .as_deref()
            .and_then(|s| WeChatTime::parse_rfc3339(s).ok())
            .ok_or(Field("success_time"))?;
        let openid = t
            .payer
            .as_ref()
            .map(|p| p.openid.clone())
            .filter(|o| !o.is_empty())
            .ok_or(Field("payer.openid"))?;
        let e = PaymentSucceeded {
            event_id: format!("wxpay:{transaction_id}"),
            out_trade_no: t.out_trade_no.to_string(),
            transaction_id: transaction_id.to_owned(),
            amount_fen: total.as_i64(),
            appid: t.appid.clone().unwrap_or_default(),
            mch_id: t.mchid.clone(),
            openid,
            paid_at_unix: paid_at.unix_seconds(),
            received_at_unix_ms,
            trace_id: trace_id.to_owned(),
            currency: amount.currency.clone().unwrap_or_else(|| "CNY".into()),
        };
        Ok(PaymentEvent {
            routing_key: PAYMENT_SUCCEEDED,
            body: e.encode_to_vec(),
            id: e.event_id,
        })
    }

    /// The `refund.settled` event of a v3 `REFUND.*` resource (already checked for our
    /// merchant), with the refund's state named as v2 names it (`REFUNDCLOSE`, `CHANGE`), so
    /// that one refund gives one event whichever version reported it.
    pub(crate) fn v3_refund(
        r: &v3::RefundResource,
        appid: &str,
        trace_id: &str,
        received_at_unix_ms: i64,
    ) -> Result<Self, V3FieldError> {
        use V3FieldError::{Amount, Field};
        if r.refund_status == v3::RefundStatus::Processing {
            return Err(Field("refund_status"));
        }
        if r.amount.refund.is_zero() || r.amount.refund > r.amount.total {
            return Err(Amount("amount.refund"));
        }
        if r.refund_id.is_empty() || r.transaction_id.is_empty() {
            return Err(Field("refund_id"));
        }
        let status = r.refund_status.as_v2().as_str();
        let e = RefundSettled {
            event_id: format!("wxrefund:{}:{status}", r.refund_id),
            out_trade_no: r.out_trade_no.to_string(),
            transaction_id: r.transaction_id.clone(),
            out_refund_no: r.out_refund_no.to_string(),
            refund_id: r.refund_id.clone(),
            total_fen: r.amount.total.as_i64(),
            refund_fen: r.amount.refund.as_i64(),
            status: status.to_owned(),
            success_time: r
                .success_time
                .as_deref()
                .and_then(|s| WeChatTime::parse_rfc3339(s).ok())
                .map(WeChatTime::to_dashed)
                .unwrap_or_default(),
            appid: appid.to_owned(),
            mch_id: r.mchid.clone(),
            received_at_unix_ms,
            trace_id: trace_id.to_owned(),
        };
        Ok(PaymentEvent {
            routing_key: REFUND_SETTLED,
            body: e.encode_to_vec(),
            id: e.event_id,
        })
    }
}

fn payment_succeeded(
    n: &PaymentNotification,
    paid: &PaidDetails,
    trace_id: &str,
    received_at_unix_ms: i64,
) -> PaymentSucceeded {
    PaymentSucceeded {
        event_id: format!("wxpay:{}", paid.transaction_id),
        out_trade_no: n.out_trade_no.to_string(),
        transaction_id: paid.transaction_id.to_string(),
        amount_fen: paid.total_fee.as_i64(),
        appid: n.appid.clone(),
        mch_id: n.mch_id.clone(),
        openid: paid.openid.to_string(),
        paid_at_unix: paid.time_end.unix_seconds(),
        received_at_unix_ms,
        trace_id: trace_id.to_owned(),
        currency: paid.fee_type.clone(),
    }
}

#[cfg(test)]
mod tests {
    use wechat_pay::v2::SignType;
    use wechat_pay::{Fen, OpenId, OutTradeNo, TransactionId, WeChatTime};

    use super::*;

    fn notification(outcome: PaymentOutcome) -> PaymentNotification {
        PaymentNotification {
            appid: "wxd930ea5d5a258f4f".into(),
            mch_id: "10000100".into(),
            out_trade_no: OutTradeNo::parse("MP20261201000000ABCDEFGHIJKL").unwrap(),
            sign_type: SignType::Md5,
            outcome,
            attach: None,
            fields: [("nonce_str", "n0nce")].into_iter().collect(),
        }
    }

    #[test]
    fn a_payment_becomes_payment_succeeded_keyed_by_its_transaction() {
        let paid = PaidDetails {
            transaction_id: TransactionId::parse("4200000000000000000000000001").unwrap(),
            total_fee: Fen::new(1999).unwrap(),
            cash_fee: Fen::new(1999).unwrap(),
            fee_type: "CNY".into(),
            openid: OpenId::parse("oUser0000000000000000000000A").unwrap(),
            trade_type: "JSAPI".into(),
            bank_type: "OTHERS".into(),
            time_end: WeChatTime::from_unix(1_800_000_000).unwrap(),
        };
        let event = PaymentEvent::of(&notification(PaymentOutcome::Paid(paid)), "t1", 7);
        assert_eq!(event.routing_key, PAYMENT_SUCCEEDED);
        assert_eq!(event.id, "wxpay:4200000000000000000000000001");
        let e = PaymentSucceeded::decode(event.body.as_slice()).unwrap();
        assert_eq!(e.event_id, event.id);
        assert_eq!(e.out_trade_no, "MP20261201000000ABCDEFGHIJKL");
        assert_eq!(e.amount_fen, 1999);
        assert_eq!(e.openid, "oUser0000000000000000000000A");
        assert_eq!(e.paid_at_unix, 1_800_000_000);
        assert_eq!(e.currency, "CNY");
        assert_eq!((e.received_at_unix_ms, e.trace_id.as_str()), (7, "t1"));
    }

    #[test]
    fn the_currency_travels_with_the_payment() {
        let paid = PaidDetails {
            transaction_id: TransactionId::parse("4200000000000000000000000002").unwrap(),
            total_fee: Fen::new(1999).unwrap(),
            cash_fee: Fen::new(1999).unwrap(),
            fee_type: "USD".into(),
            openid: OpenId::parse("oUser0000000000000000000000A").unwrap(),
            trade_type: "JSAPI".into(),
            bank_type: "OTHERS".into(),
            time_end: WeChatTime::from_unix(1_800_000_000).unwrap(),
        };
        let event = PaymentEvent::of(&notification(PaymentOutcome::Paid(paid)), "t3", 9);
        let e = PaymentSucceeded::decode(event.body.as_slice()).unwrap();
        assert_eq!((e.amount_fen, e.currency.as_str()), (1999, "USD"));
    }

    #[test]
    fn a_failure_becomes_payment_failed_keyed_by_order_and_nonce() {
        let failed = PaymentOutcome::Failed {
            err_code: Some("NOTENOUGH".into()),
            err_code_des: None,
        };
        let event = PaymentEvent::of(&notification(failed), "t2", 8);
        assert_eq!(event.routing_key, PAYMENT_FAILED);
        assert_eq!(event.id, "wxpay-failed:MP20261201000000ABCDEFGHIJKL:n0nce");
        let e = PaymentFailed::decode(event.body.as_slice()).unwrap();
        assert_eq!(e.event_id, event.id);
        assert_eq!(
            (e.err_code.as_str(), e.err_code_des.as_str()),
            ("NOTENOUGH", "")
        );
    }
}
