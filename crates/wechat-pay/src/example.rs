//! The reference's example merchant: the WeChat Pay simulator's default merchant, and what
//! every service expects when no merchant is configured. For tests and local runs only;
//! never a real merchant's credentials.

/// Mini Program AppID.
pub const APPID: &str = "wxd930ea5d5a258f4f";
/// Merchant number.
pub const MCH_ID: &str = "10000100";
/// v2 API key.
pub const API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
/// Mini Program AppSecret.
pub const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
