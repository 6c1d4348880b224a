//! Domain values with WeChat's rules built in: money, order numbers, nonces, timestamps.

mod ids;
mod money;
mod time;

pub use self::ids::{IdError, NonceStr, OpenId, OutRefundNo, OutTradeNo, RefundId, TransactionId};
pub use self::money::{Fen, MoneyError};
pub use self::time::{MIN_EXPIRE_WINDOW_SECONDS, TimeError, WeChatTime, time_expire};
