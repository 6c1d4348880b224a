//! Mini Program login: `jscode2session` exchanges a `wx.login` code for the user's openid.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::http::{TransportError, build_client, read_limited};
use crate::retry::{RetryPolicy, Retryable, with_retries};

/// WeChat's host for Mini Program server APIs.
pub const PRODUCTION_LOGIN_BASE_URL: &str = "https://api.weixin.qq.com";

const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// The user's session key. Never sent to the client and never logged: `Debug` is redacted.
#[derive(Clone)]
pub struct SessionKey(SecretString);

impl SessionKey {
    /// The key's text, for decrypting data the Mini Program sends (never for logs).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey([REDACTED])")
    }
}

/// A logged-in Mini Program user.
#[derive(Debug, Clone)]
pub struct MiniSession {
    /// The user's id under this appid.
    pub openid: String,
    /// The session key (secret).
    pub session_key: SessionKey,
    /// The user's id across the Open Platform account, when bound.
    pub unionid: Option<String>,
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The code is malformed (refused before sending) or `40029`: the client must
    /// `wx.login()` again.
    #[error("invalid login code")]
    InvalidCode,
    /// `40163`: the code was already used.
    #[error("login code already used")]
    CodeUsed,
    /// `45011`: too many logins for this user. Never retried.
    #[error("login rate limit reached")]
    RateLimited,
    /// `40226`: WeChat blocks this high-risk user.
    #[error("login blocked for a high-risk user")]
    HighRiskUser,
    /// `-1`: WeChat is busy; retry shortly.
    #[error("WeChat login is busy")]
    Busy,
    /// `40125` / `40013`: the AppSecret or AppID is wrong: a configuration error.
    #[error("login credentials rejected (errcode {errcode})")]
    InvalidCredentials {
        /// The errcode.
        errcode: i64,
    },
    /// Any other errcode.
    #[error("login failed with errcode {errcode}: {errmsg}")]
    Other {
        /// The errcode.
        errcode: i64,
        /// WeChat's message.
        errmsg: String,
    },
    /// Network failure or timeout.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// A non-200 status.
    #[error("login API answered HTTP {status}")]
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// The answer is not the expected JSON.
    #[error("invalid login response")]
    InvalidResponse,
}

impl LoginError {
    /// Whether trying again later may succeed. `45011` is not: WeChat asks us to slow down,
    /// and another attempt would only count against the same quota.
    pub fn is_retryable(&self) -> bool {
        match self {
            LoginError::Busy | LoginError::Transport(_) => true,
            LoginError::HttpStatus { status } => *status >= 500,
            _ => false,
        }
    }

    /// Maps a non-zero errcode.
    fn from_errcode(errcode: i64, errmsg: String) -> Self {
        match errcode {
            -1 => LoginError::Busy,
            40029 => LoginError::InvalidCode,
            40163 => LoginError::CodeUsed,
            45011 => LoginError::RateLimited,
            40226 => LoginError::HighRiskUser,
            40125 | 40013 => LoginError::InvalidCredentials { errcode },
            _ => LoginError::Other { errcode, errmsg },
        }
    }
}

impl Retryable for LoginError {
    fn is_retryable(&self) -> bool {
        LoginError::is_retryable(self)
    }
}

#[derive(Deserialize)]
struct RawAnswer {
    #[serde(default)]
    openid: Option<String>,
    #[serde(default)]
    session_key: Option<String>,
    #[serde(default)]
    unionid: Option<String>,
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: Option<String>,
}

/// A `jscode2session` client for one Mini Program.
#[derive(Clone)]
pub struct LoginClient {
    http: reqwest::Client,
    base_url: Url,
    appid: String,
    secret: SecretString,
    timeout: Duration,
    retry: RetryPolicy,
}

impl fmt::Debug for LoginClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginClient")
            .field("base_url", &self.base_url.as_str())
            .field("appid", &self.appid)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

impl LoginClient {
    /// A client for `appid` with its AppSecret, against `base_url`
    /// ([`PRODUCTION_LOGIN_BASE_URL`] or a simulator).
    pub fn new(
        base_url: Url,
        appid: impl Into<String>,
        secret: SecretString,
        timeout: Duration,
    ) -> Result<Self, LoginError> {
        let http = build_client(timeout).map_err(|e| TransportError::Network(e.without_url()))?;
        Ok(LoginClient {
            http,
            base_url,
            appid: appid.into(),
            secret,
            timeout,
            retry: RetryPolicy::none(),
        })
    }

    /// Retries busy, transport and 5xx failures (never `45011`) under `policy` (default: a single attempt).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Exchanges a `wx.login` code for the user's session (retried per the policy).
    pub async fn code2session(&self, js_code: &str) -> Result<MiniSession, LoginError> {
        with_retries(&self.retry, "jscode2session", || {
            self.code2session_once(js_code)
        })
        .await
    }

    async fn code2session_once(&self, js_code: &str) -> Result<MiniSession, LoginError> {
        if js_code.is_empty()
            || js_code.len() > 128
            || !js_code.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(LoginError::InvalidCode);
        }
        let mut url = self.base_url.clone();
        url.set_path(&format!(
            "{}/sns/jscode2session",
            self.base_url.path().trim_end_matches('/')
        ));
        url.query_pairs_mut()
            .append_pair("appid", &self.appid)
            .append_pair("secret", self.secret.expose_secret())
            .append_pair("js_code", js_code)
            .append_pair("grant_type", "authorization_code");
        let response = self
            .http
            .get(url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| TransportError::from_reqwest(e, self.timeout))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(LoginError::HttpStatus { status });
        }
        let body = read_limited(response, MAX_RESPONSE_BYTES, self.timeout).await?;
        // WeChat may label the JSON text/plain: parse whatever the Content-Type says.
        let raw: RawAnswer =
            serde_json::from_slice(&body).map_err(|_| LoginError::InvalidResponse)?;
        match raw.errcode {
            Some(0) | None => {}
            Some(errcode) => {
                return Err(LoginError::from_errcode(
                    errcode,
                    raw.errmsg.unwrap_or_default(),
                ));
            }
        }
        let openid = raw
            .openid
            .filter(|o| !o.is_empty() && o.len() <= 128)
            .ok_or(LoginError::InvalidResponse)?;
        let session_key = raw
            .session_key
            .filter(|k| !k.is_empty())
            .ok_or(LoginError::InvalidResponse)?;
        Ok(MiniSession {
            openid,
            session_key: SessionKey(SecretString::from(session_key)),
            unionid: raw.unionid.filter(|u| !u.is_empty()),
        })
    }
}
