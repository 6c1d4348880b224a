//! WeChat Pay for Minipay: the only crate in the workspace that knows WeChat's wire formats.
//!
//! - [`v2`]: merchant API v2 — signing ([`v2::sign`]), the safe XML codec ([`v2::xml`]),
//!   typed requests and responses, the async [`v2::Client`], payment notifications and the
//!   `wx.requestPayment` object.
//! - [`login`]: the Mini Program `jscode2session` call.
//! - Domain values with WeChat's rules built in: [`Fen`], [`OutTradeNo`], [`NonceStr`],
//!   [`WeChatTime`].
//!
//! Nothing here panics on input from outside, and no secret (API key, AppSecret,
//! session key) reaches a `Debug` output, an error message or a log line.
//!
//! ```
//! use wechat_pay::v2::{self, ApiKey, Params, SignType};
//! let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap();
//! let mut params: Params = [("appid", "wxd930ea5d5a258f4f"), ("mch_id", "10000100")].into_iter().collect();
//! v2::sign_params(&mut params, &key, SignType::HmacSha256);
//! assert!(v2::verify(&params, &key, SignType::HmacSha256).is_ok());
//! ```

#![deny(missing_docs)]

mod domain;
pub mod example;
mod http;
pub mod login;
mod retry;
pub mod v2;
pub mod v3;

pub use self::domain::{
    Fen, IdError, MIN_EXPIRE_WINDOW_SECONDS, MoneyError, NonceStr, OpenId, OutRefundNo, OutTradeNo,
    RefundId, TimeError, TransactionId, WeChatTime, time_expire,
};
pub use self::http::TransportError;
pub use self::retry::RetryPolicy;
