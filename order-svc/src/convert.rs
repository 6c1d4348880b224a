//! Every conversion between `proto` messages and order-svc's domain types, in one place:
//! the gRPC API's orders, the payment events consumed, the order events written to the
//! outbox, and pay-gateway-svc's requests and answers.

use proto::events::v1::{OrderClosed, OrderPaid, PaymentSucceeded};
use proto::order::v1 as order_pb;
use proto::paygateway::v1::{self as gateway_pb, TradeState};
use time::OffsetDateTime;
use wechat_pay::{Fen, IdError, MoneyError, OpenId, OutTradeNo, TransactionId};

use crate::domain::{CloseReason, Currency, Order, OrderStatus, PaymentFacts, Source, unix_ms};

/// A message whose field does not hold a valid value of its domain type.
#[derive(Debug, thiserror::Error)]
#[error("invalid `{field}` in a {message} message")]
pub struct InvalidMessage {
    /// The message type.
    pub message: &'static str,
    /// The field.
    pub field: &'static str,
    /// Why it is invalid.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

fn invalid<E: std::error::Error + Send + Sync + 'static>(
    message: &'static str,
    field: &'static str,
) -> impl FnOnce(E) -> InvalidMessage {
    move |e| InvalidMessage {
        message,
        field,
        source: Some(Box::new(e)),
    }
}

fn paid_at(unix: i64) -> Option<OffsetDateTime> {
    (unix > 0)
        .then(|| OffsetDateTime::from_unix_timestamp(unix).ok())
        .flatten()
}

/// The payment fields a payment event and an order-query answer both carry, as they
/// arrive; [`WirePayment::facts`] is their one conversion.
struct WirePayment {
    message: &'static str,
    out_trade_no: String,
    transaction_id: String,
    amount_fen: i64,
    currency: String,
    appid: String,
    mch_id: String,
    paid_at_unix: i64,
}

impl WirePayment {
    fn facts(
        self,
        event_id: Option<String>,
        source: Source,
    ) -> Result<PaymentFacts, InvalidMessage> {
        let m = self.message;
        Ok(PaymentFacts {
            out_trade_no: OutTradeNo::parse(self.out_trade_no)
                .map_err(invalid::<IdError>(m, "out_trade_no"))?,
            transaction_id: TransactionId::parse(self.transaction_id)
                .map_err(invalid::<IdError>(m, "transaction_id"))?,
            amount: Fen::from_i64(self.amount_fen)
                .map_err(invalid::<MoneyError>(m, "amount_fen"))?,
            currency: Currency::from_fee_type(&self.currency),
            appid: self.appid,
            mch_id: self.mch_id,
            paid_at: paid_at(self.paid_at_unix),
            event_id,
            source,
        })
    }
}

impl TryFrom<PaymentSucceeded> for PaymentFacts {
    type Error = InvalidMessage;
    fn try_from(e: PaymentSucceeded) -> Result<Self, InvalidMessage> {
        let wire = WirePayment {
            message: "PaymentSucceeded",
            out_trade_no: e.out_trade_no,
            transaction_id: e.transaction_id,
            amount_fen: e.amount_fen,
            currency: e.currency,
            appid: e.appid,
            mch_id: e.mch_id,
            paid_at_unix: e.paid_at_unix,
        };
        wire.facts(Some(e.event_id), Source::Notification)
    }
}

impl TryFrom<proto::events::v1::RefundSettled> for crate::domain::RefundResult {
    type Error = InvalidMessage;
    fn try_from(e: proto::events::v1::RefundSettled) -> Result<Self, InvalidMessage> {
        const M: &str = "RefundSettled";
        let status = match e.status.as_str() {
            "SUCCESS" => crate::domain::RefundStatus::Success,
            "CHANGE" => crate::domain::RefundStatus::Change,
            "REFUNDCLOSE" => crate::domain::RefundStatus::Refundclose,
            _ => {
                return Err(InvalidMessage {
                    message: M,
                    field: "status",
                    source: None,
                });
            }
        };
        Ok(crate::domain::RefundResult {
            out_refund_no: wechat_pay::OutRefundNo::parse(e.out_refund_no).map_err(invalid::<
                IdError,
            >(
                M,
                "out_refund_no",
            ))?,
            out_trade_no: OutTradeNo::parse(e.out_trade_no)
                .map_err(invalid::<IdError>(M, "out_trade_no"))?,
            refund_id: e.refund_id,
            amount: Fen::from_i64(e.refund_fen).map_err(invalid::<MoneyError>(M, "refund_fen"))?,
            status,
        })
    }
}

/// The payment an order query found: `None` unless WeChat says the order was paid.
pub fn paid_facts(
    q: gateway_pb::QueryPaymentResponse,
) -> Result<Option<PaymentFacts>, InvalidMessage> {
    if !matches!(q.state(), TradeState::Success | TradeState::Refund) {
        return Ok(None);
    }
    let wire = WirePayment {
        message: "QueryPaymentResponse",
        out_trade_no: q.out_trade_no,
        transaction_id: q.transaction_id,
        amount_fen: q.amount_fen,
        currency: q.currency,
        appid: q.appid,
        mch_id: q.mch_id,
        paid_at_unix: q.paid_at_unix,
    };
    wire.facts(None, Source::Query).map(Some)
}

/// The openid a login answer carries.
pub fn openid(answer: gateway_pb::Code2SessionResponse) -> Result<OpenId, InvalidMessage> {
    OpenId::parse(answer.openid).map_err(invalid::<IdError>("Code2SessionResponse", "openid"))
}

/// The prepay request for `order`; `reuse` is a prepay_id still valid for it.
pub fn prepay_request(
    order: &Order,
    description: &str,
    reuse: Option<&str>,
) -> gateway_pb::CreatePrepayRequest {
    gateway_pb::CreatePrepayRequest {
        out_trade_no: order.out_trade_no.to_string(),
        amount_fen: order.amount.as_i64(),
        description: description.to_owned(),
        openid: order.openid.to_string(),
        client_ip: String::new(),
        time_start_unix: order.created_at.unix_timestamp(),
        time_expire_unix: order.expires_at.unix_timestamp(),
        reuse_prepay_id: reuse.unwrap_or_default().to_owned(),
    }
}

/// The `order.paid` event of a paid order.
pub fn order_paid(order: &Order, event_id: &uuid::Uuid) -> OrderPaid {
    OrderPaid {
        event_id: event_id.to_string(),
        order_id: order.id.to_string(),
        out_trade_no: order.out_trade_no.to_string(),
        transaction_id: order
            .transaction_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        amount_fen: order.amount.as_i64(),
        openid: order.openid.to_string(),
        paid_at_unix_ms: order.paid_at.map_or(0, unix_ms),
    }
}

/// The `order.refunded` event of `refund`, which succeeded, of `order` (as it is after it).
pub fn order_refunded(
    order: &Order,
    refund: &crate::domain::Refund,
    event_id: &uuid::Uuid,
) -> proto::events::v1::OrderRefunded {
    proto::events::v1::OrderRefunded {
        event_id: event_id.to_string(),
        order_id: order.id.to_string(),
        out_trade_no: order.out_trade_no.to_string(),
        out_refund_no: refund.out_refund_no.to_string(),
        refund_fen: refund.amount.as_i64(),
        refunded_fen: order.refunded.as_i64(),
        amount_fen: order.amount.as_i64(),
        refunded_at_unix_ms: refund.settled_at.map_or(0, unix_ms),
    }
}

/// The `order.closed` event of a closed order.
pub fn order_closed(order: &Order, reason: CloseReason, event_id: &uuid::Uuid) -> OrderClosed {
    OrderClosed {
        event_id: event_id.to_string(),
        order_id: order.id.to_string(),
        out_trade_no: order.out_trade_no.to_string(),
        reason: reason.as_str().to_owned(),
        closed_at_unix_ms: unix_ms(OffsetDateTime::now_utc()),
    }
}

impl From<OrderStatus> for order_pb::OrderStatus {
    fn from(status: OrderStatus) -> Self {
        use order_pb::OrderStatus as P;
        match status {
            OrderStatus::Pending => P::Pending,
            OrderStatus::Paid => P::Paid,
            OrderStatus::Closed => P::Closed,
            OrderStatus::Refunding => P::Refunding,
            OrderStatus::PartiallyRefunded => P::PartiallyRefunded,
            OrderStatus::Refunded => P::Refunded,
            OrderStatus::Review => P::Review,
        }
    }
}

impl From<&Order> for order_pb::Order {
    fn from(o: &Order) -> Self {
        order_pb::Order {
            id: o.id.to_string(),
            out_trade_no: o.out_trade_no.to_string(),
            status: order_pb::OrderStatus::from(o.status).into(),
            amount_fen: o.amount.as_i64(),
            items: o
                .items
                .iter()
                .map(|i| order_pb::OrderItem {
                    sku: i.sku.clone(),
                    name: i.name.clone(),
                    quantity: i.quantity,
                    unit_price_fen: i.unit_price_fen.as_i64(),
                })
                .collect(),
            openid: o.openid.to_string(),
            created_at_unix_ms: unix_ms(o.created_at),
            expires_at_unix_ms: unix_ms(o.expires_at),
            paid_at_unix_ms: o.paid_at.map_or(0, unix_ms),
            transaction_id: o
                .transaction_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            refunded_fen: o.refunded.as_i64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> PaymentSucceeded {
        PaymentSucceeded {
            event_id: "wxpay:4200000000000000000000000001".into(),
            out_trade_no: "MP20261201000000ABCDEFGHIJKL".into(),
            transaction_id: "4200000000000000000000000001".into(),
            amount_fen: 1999,
            appid: "wxd930ea5d5a258f4f".into(),
            mch_id: "10000100".into(),
            paid_at_unix: 1_800_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn a_payment_event_becomes_typed_facts() {
        let facts = PaymentFacts::try_from(event()).unwrap();
        assert_eq!(facts.amount, Fen::new(1999).unwrap());
        assert_eq!(facts.source, Source::Notification);
        assert_eq!(
            facts.paid_at.map(|t| t.unix_timestamp()),
            Some(1_800_000_000)
        );
    }

    #[test]
    fn a_payment_event_carries_its_currency_and_none_means_cny() {
        assert!(PaymentFacts::try_from(event()).unwrap().currency.is_cny());
        let mut usd = event();
        usd.currency = "USD".into();
        let facts = PaymentFacts::try_from(usd).unwrap();
        assert_eq!(
            (facts.currency.as_str(), facts.currency.is_cny()),
            ("USD", false)
        );
    }

    #[test]
    fn an_event_with_an_invalid_field_is_refused_by_name() {
        let mut bad = event();
        bad.transaction_id = "x".repeat(2700);
        assert_eq!(
            PaymentFacts::try_from(bad).unwrap_err().field,
            "transaction_id"
        );
        let mut bad = event();
        bad.amount_fen = -1;
        assert_eq!(PaymentFacts::try_from(bad).unwrap_err().field, "amount_fen");
        let mut bad = event();
        bad.out_trade_no = "no".into();
        assert_eq!(
            PaymentFacts::try_from(bad).unwrap_err().field,
            "out_trade_no"
        );
    }

    #[test]
    fn a_query_answer_gives_facts_only_when_paid() {
        let mut q = gateway_pb::QueryPaymentResponse {
            out_trade_no: "MP20261201000000ABCDEFGHIJKL".into(),
            transaction_id: "4200000000000000000000000001".into(),
            amount_fen: 1,
            ..Default::default()
        };
        q.set_state(TradeState::Notpay);
        assert_eq!(paid_facts(q.clone()).unwrap(), None);
        q.set_state(TradeState::Success);
        assert_eq!(paid_facts(q).unwrap().unwrap().source, Source::Query);
    }
}
