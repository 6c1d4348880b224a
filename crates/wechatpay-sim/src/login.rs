//! `GET /sns/jscode2session`, the Mini Program login, with stable test users.
//!
//! Codes: `test-<name>` (optionally `test-<name>.<suffix>` for a fresh code of the same user)
//! logs in the user `<name>`: the same name always gives the same openid for an appid. Codes
//! issued by `POST /sim/v1/login-codes` expire after 5 minutes (times the time scale). Every
//! code is single use, as at WeChat.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::sim::{Sim, lock};

/// How long an issued code is valid (before scaling).
pub const CODE_TTL: Duration = Duration::from_secs(300);
/// WeChat's limit: logins per user per minute.
pub const LOGINS_PER_MINUTE: u32 = 100;

/// Codes, users and rate counters.
#[derive(Debug, Default)]
pub(crate) struct LoginBook {
    used: HashSet<(String, String)>,
    issued_codes: HashMap<String, IssuedCode>,
    openids: HashSet<(String, String)>,
    rate: HashMap<(String, String), (Instant, u32)>,
}

#[derive(Debug)]
struct IssuedCode {
    appid: String,
    name: String,
    expires: Instant,
}

impl LoginBook {
    /// Whether this simulator issued `openid` for `appid`.
    pub(crate) fn issued(&self, appid: &str, openid: &str) -> bool {
        self.openids
            .contains(&(appid.to_owned(), openid.to_owned()))
    }
}

/// The stable openid of test user `name` under `appid`: 28 characters, like WeChat's.
pub fn openid_for(appid: &str, name: &str) -> String {
    let digest = hex::encode(Sha256::digest(format!("{appid}:{name}").as_bytes()));
    format!("o{}", &digest[..27])
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The user a `test-` code names.
fn test_code_user(code: &str) -> Option<&str> {
    let rest = code.strip_prefix("test-")?;
    let (name, suffix) = rest.split_once('.').unwrap_or((rest, ""));
    (valid_name(name) && (suffix.is_empty() || valid_name(suffix))).then_some(name)
}

/// Query of `jscode2session`.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    appid: Option<String>,
    secret: Option<String>,
    js_code: Option<String>,
    grant_type: Option<String>,
}

fn error(errcode: i64, errmsg: &str) -> Json<Value> {
    Json(json!({ "errcode": errcode, "errmsg": errmsg }))
}

/// `GET /sns/jscode2session`: WeChat's checks in WeChat's order (appid, secret, grant type,
/// code), then single use, then the rate limit.
pub(crate) async fn jscode2session(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<LoginQuery>,
) -> Json<Value> {
    let Some(merchant) = q.appid.as_deref().and_then(|a| sim.merchant_by_appid(a)) else {
        return error(40013, "invalid appid");
    };
    if q.secret.as_deref() != Some(merchant.app_secret.as_str()) {
        return error(40125, "invalid appsecret");
    }
    if q.grant_type.as_deref() != Some("authorization_code") {
        return error(40002, "invalid grant_type");
    }
    let Some(code) = q.js_code.filter(|c| !c.is_empty()) else {
        return error(41008, "missing code");
    };
    let appid = merchant.appid.clone();
    let mut book = lock(&sim.logins);
    if book.used.contains(&(appid.clone(), code.clone())) {
        return error(40163, "code been used");
    }
    let name = if let Some(issued) = book.issued_codes.get(&code) {
        if issued.appid != appid || issued.expires < sim.clock.now() {
            return error(40029, "invalid code");
        }
        issued.name.clone()
    } else if let Some(name) = test_code_user(&code) {
        name.to_owned()
    } else {
        return error(40029, "invalid code");
    };
    if !book.used.insert((appid.clone(), code.clone())) {
        return error(40163, "code been used");
    }
    book.issued_codes.remove(&code);
    let openid = openid_for(&appid, &name);
    let now = sim.clock.now();
    let window = book
        .rate
        .entry((appid.clone(), openid.clone()))
        .or_insert((now, 0));
    if now.duration_since(window.0) >= Duration::from_secs(60) {
        *window = (now, 0);
    }
    window.1 += 1;
    if window.1 > LOGINS_PER_MINUTE {
        return error(
            45011,
            "api minute-quota reach limit  mustslower  retry next minute",
        );
    }
    book.openids.insert((appid, openid.clone()));
    let session_key: [u8; 16] = rand::rng().random();
    Json(json!({ "openid": openid, "session_key": hex::encode(session_key) }))
}

/// Body of `POST /sim/v1/login-codes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueCode {
    name: String,
    #[serde(default)]
    appid: Option<String>,
}

/// Issues a code for user `name`, as `wx.login()` would in the Mini Program.
pub(crate) fn issue_code(sim: &Sim, req: IssueCode) -> Result<Value, String> {
    if !valid_name(&req.name) {
        return Err("name must be 1-64 ASCII letters, digits, '_' or '-'".into());
    }
    let appid = match req.appid {
        Some(a) => sim
            .merchant_by_appid(&a)
            .map(|m| m.appid.clone())
            .ok_or("unknown appid")?,
        None => sim
            .config
            .merchants
            .first()
            .map(|m| m.appid.clone())
            .ok_or("no merchant")?,
    };
    let random: u128 = rand::rng().random();
    let code = format!("sim{random:032x}");
    let ttl = sim.scaled(CODE_TTL);
    let expires = sim
        .clock
        .now()
        .checked_add(ttl)
        .ok_or("code lifetime out of range")?;
    lock(&sim.logins).issued_codes.insert(
        code.clone(),
        IssuedCode {
            appid,
            name: req.name,
            expires,
        },
    );
    Ok(json!({ "code": code, "expires_in_ms": u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_codes() {
        assert_eq!(test_code_user("test-alice"), Some("alice"));
        assert_eq!(test_code_user("test-alice.2"), Some("alice"));
        assert_eq!(test_code_user("test-"), None);
        assert_eq!(test_code_user("test-a b"), None);
        assert_eq!(test_code_user("alice"), None);
        assert_eq!(openid_for("wx1", "alice"), openid_for("wx1", "alice"));
        assert_ne!(openid_for("wx1", "alice"), openid_for("wx2", "alice"));
        assert_eq!(openid_for("wx1", "alice").len(), 28);
    }
}
