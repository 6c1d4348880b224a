//! Orders as the service understands them: identifiers, statuses and the rules for moving
//! between them, what a buyer may ask for, and the facts of a payment. No I/O here.

mod cursor;
mod order;
mod payment;
pub mod reconciliation;
mod refund;
mod request;
mod status;

pub use self::cursor::{Cursor, InvalidCursor, PageSize};
pub use self::order::{Order, OrderId, OrderItem, Product, new_out_trade_no, time_span, unix_ms};
pub use self::payment::{CloseReason, Currency, ExpectedMerchant, PaymentFacts, Source};
pub use self::refund::{
    MAX_REFUND_REASON, Refund, RefundRequest, RefundResult, RefundStatus, UnknownRefundStatus,
    checked_reason, new_out_refund_no, status_after_refunds,
};
pub use self::request::{
    IdempotencyKey, LoginCode, MAX_LINES, MAX_QUANTITY, OrderLine, OrderRequest,
};
pub use self::status::{IllegalTransition, OrderStatus, UnknownStatus};
