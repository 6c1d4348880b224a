//! The JSON shapes of the Mini Program's API: request bodies as they arrive, answers as they
//! leave. Each converts to or from the domain in one place here; the OpenAPI document is
//! generated from these same types.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::domain::{
    LoginCode, MAX_LINES, MAX_QUANTITY, Order, OrderItem, OrderLine, OrderRequest, OrderStatus,
    Product,
};
use crate::error::AppError;
use crate::orders::{Page, Session};

/// Fields that would carry an amount: refused by name, the server computes amounts.
const AMOUNT_FIELDS: &[&str] = &[
    "amount",
    "amount_fen",
    "price",
    "price_fen",
    "unit_price_fen",
    "total",
    "total_fee",
    "total_fen",
];

/// `POST /api/v1/sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    /// The code `wx.login()` returned (visible ASCII).
    #[schema(min_length = 1, max_length = 128, pattern = "^[!-~]+$")]
    code: String,
}

impl TryFrom<LoginBody> for LoginCode {
    type Error = AppError;
    fn try_from(body: LoginBody) -> Result<Self, AppError> {
        LoginCode::parse(&body.code)
    }
}

/// `POST /api/v1/orders`. Amounts are never accepted: the server prices every order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrderBody {
    /// 1 to 20 lines, each sku at most once.
    #[schema(min_items = 1, max_items = 20)]
    items: Vec<ItemBody>,
}

/// One line of `POST /api/v1/orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemBody {
    /// A sku of the price list (the served document lists the current ones).
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = "^[A-Za-z0-9_-]+$",
        example = "TEA-JASMINE"
    )]
    sku: String,
    /// How many units.
    #[schema(minimum = 1, maximum = 99)]
    #[serde(deserialize_with = "whole_number")]
    quantity: u32,
}

/// A JSON integer, which JSON Schema says `2.0` also is; a fraction or a number out of
/// range is refused.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    use serde::de::Error;
    let number = serde_json::Number::deserialize(d)?;
    let whole = match (number.as_u64(), number.as_f64()) {
        (Some(n), _) => u32::try_from(n).ok(),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) => {
            // In range and whole: the conversion is exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(f as u32)
        }
        _ => None,
    };
    whole.ok_or_else(|| D::Error::custom(format!("quantity must be a whole number, got {number}")))
}

impl CreateOrderBody {
    /// Refuses amounts by name (before the shape is checked, so the error says why), then
    /// the shape.
    pub(crate) fn from_value(value: Value) -> Result<Self, AppError> {
        let mut objects = vec![&value];
        if let Some(items) = value.get("items").and_then(Value::as_array) {
            objects.extend(items.iter());
        }
        for object in objects {
            if let Some(map) = object.as_object()
                && let Some(field) = map.keys().find(|k| AMOUNT_FIELDS.contains(&k.as_str()))
            {
                return Err(AppError::AmountNotAccepted(field.clone()));
            }
        }
        serde_json::from_value(value)
            .map_err(|e| AppError::InvalidRequest(format!("invalid order: {e}")))
    }
}

impl TryFrom<CreateOrderBody> for OrderRequest {
    type Error = AppError;
    fn try_from(body: CreateOrderBody) -> Result<Self, AppError> {
        const _: () = assert!(
            MAX_LINES == 20 && MAX_QUANTITY == 99,
            "keep the schema in step"
        );
        OrderRequest::new(
            body.items
                .into_iter()
                .map(|i| OrderLine {
                    sku: i.sku,
                    quantity: i.quantity,
                })
                .collect(),
        )
    }
}

/// `GET /api/v1/orders` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Orders per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,19}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub(crate) cursor: Option<String>,
}

/// A session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionView {
    /// The bearer token for `Authorization: Bearer <token>`.
    token: String,
    /// Seconds until it expires.
    expires_in: u64,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> Self {
        SessionView {
            token: s.token,
            expires_in: s.expires_in,
        }
    }
}

/// The price list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProductsView {
    /// Every product on sale, by sku.
    products: Vec<Product>,
}

impl From<Vec<Product>> for ProductsView {
    fn from(products: Vec<Product>) -> Self {
        ProductsView { products }
    }
}

/// An order as the Mini Program sees it (fixed shape; fields may be added, never renamed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct OrderView {
    /// Our id.
    #[schema(value_type = uuid::Uuid)]
    id: String,
    /// The merchant order number WeChat knows.
    out_trade_no: String,
    /// Where the order stands.
    status: OrderStatus,
    /// Total in fen.
    #[schema(minimum = 1)]
    amount_fen: u64,
    /// What was bought.
    items: Vec<OrderItem>,
    /// When it was created (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// When it stops being payable (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: OffsetDateTime,
    /// When it was paid (RFC 3339), once paid.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    paid_at: Option<OffsetDateTime>,
    /// WeChat's number, once paid.
    transaction_id: Option<String>,
    /// Given back to the payer so far (WeChat confirmed), in fen.
    refunded_fen: u64,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            id: o.id.to_string(),
            out_trade_no: o.out_trade_no.to_string(),
            status: o.status,
            amount_fen: o.amount.get(),
            items: o.items.clone(),
            created_at: o.created_at,
            expires_at: o.expires_at,
            paid_at: o.paid_at,
            transaction_id: o.transaction_id.as_ref().map(ToString::to_string),
            refunded_fen: o.refunded.get(),
        }
    }
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrdersPage {
    /// Newest first.
    orders: Vec<OrderView>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

impl From<Page> for OrdersPage {
    fn from(page: Page) -> Self {
        OrdersPage {
            orders: page.orders.iter().map(OrderView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }
    }
}

/// Exactly the object the Mini Program passes to `wx.requestPayment`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PaymentView {
    /// The Mini Program's AppID.
    #[serde(rename = "appId")]
    app_id: String,
    /// Unix seconds, as text.
    #[serde(rename = "timeStamp")]
    time_stamp: String,
    /// A random string.
    #[serde(rename = "nonceStr")]
    nonce_str: String,
    /// `prepay_id=...`.
    package: String,
    /// `MD5` or `HMAC-SHA256` (WeChat Pay API v2), `RSA` (API v3).
    #[serde(rename = "signType")]
    sign_type: String,
    /// The signature: over every other field under v2; over appId, timeStamp, nonceStr and
    /// package with the merchant's RSA key under v3.
    #[serde(rename = "paySign")]
    pay_sign: String,
}

impl From<proto::paygateway::v1::RequestPayment> for PaymentView {
    fn from(p: proto::paygateway::v1::RequestPayment) -> Self {
        PaymentView {
            app_id: p.app_id,
            time_stamp: p.time_stamp,
            nonce_str: p.nonce_str,
            package: p.package,
            sign_type: p.sign_type,
            pay_sign: p.pay_sign,
        }
    }
}

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// A stable machine-readable code, e.g. `order_not_found`.
    code: String,
    /// What went wrong, for a person.
    message: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn code(value: Value) -> Option<&'static str> {
        CreateOrderBody::from_value(value)
            .and_then(OrderRequest::try_from)
            .err()
            .map(|e| e.code())
    }

    #[test]
    fn amounts_are_refused_by_name_anywhere_in_the_body() {
        assert_eq!(
            code(json!({"items": [{"sku": "TEA", "quantity": 1}], "amount_fen": 1})),
            Some("amount_not_accepted")
        );
        assert_eq!(
            code(json!({"items": [{"sku": "TEA", "quantity": 1, "price_fen": 1}]})),
            Some("amount_not_accepted")
        );
    }

    #[test]
    fn a_wrong_shape_is_an_invalid_request() {
        for body in [
            json!({"items": [{"sku": "TEA", "quantity": -1}]}),
            json!({"items": [{"sku": "TEA", "quantity": 1e30}]}),
            json!({"items": [{"sku": "TEA", "quantity": 1.5}]}),
            json!({"items": [{"sku": "TEA", "quantity": 1, "note": "x"}]}),
            json!([]),
        ] {
            assert_eq!(code(body.clone()), Some("invalid_request"), "{body}");
        }
        assert_eq!(
            code(json!({"items": [{"sku": "TEA", "quantity": 2}]})),
            None
        );
        assert_eq!(
            code(json!({"items": [{"sku": "TEA", "quantity": 2.0}]})),
            None,
            "2.0 is an integer to JSON Schema"
        );
    }
}
