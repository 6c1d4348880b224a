//! Login rate limits. Each login costs an outbound `jscode2session` call, and WeChat answers
//! too many with 45011 for the whole Mini Program: logins are limited per client address and
//! per code prefix (many codes sharing a beginning are one caller guessing), in fixed
//! one-minute windows, in this process.
//!
//! Hand-written rather than `governor`: two counters per key in one map, cleared every
//! minute, is all we need, and it keeps that crate's dependencies out of a 2-core build.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::AppState;
use crate::domain::LoginCode;
use crate::error::AppError;

/// The length of a window.
const WINDOW: Duration = Duration::from_secs(60);

/// How many characters of a code make its prefix.
pub(crate) const CODE_PREFIX_CHARS: usize = 8;

/// Most keys one window tracks: beyond it, new keys are refused until the window ends, so an
/// attacker with endless addresses cannot grow the map without bound.
const MAX_KEYS: usize = 100_000;

/// The header a trusted proxy appends the client's address to.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Logins per client address and per code prefix.
#[derive(Debug)]
pub struct LoginLimits {
    per_window: u32,
    trusted_proxy: bool,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    counts: HashMap<Key, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Client(IpAddr),
    CodePrefix(String),
}

impl Key {
    fn label(&self) -> &'static str {
        match self {
            Key::Client(_) => "client_address",
            Key::CodePrefix(_) => "code_prefix",
        }
    }
}

impl LoginLimits {
    /// `per_minute` logins per client address and per code prefix; with `trusted_proxy`, the
    /// client address is the last hop of `X-Forwarded-For` (the address our proxy saw).
    pub fn new(per_minute: u32, trusted_proxy: bool) -> Self {
        LoginLimits {
            per_window: per_minute.max(1),
            trusted_proxy,
            window: Mutex::new(Window {
                started: Instant::now(),
                counts: HashMap::new(),
            }),
        }
    }

    /// Counts a login by `client` with `code`, or refuses it (`rate_limited`, with the
    /// seconds until the window ends).
    pub(crate) fn check(&self, client: IpAddr, code: &LoginCode) -> Result<(), AppError> {
        self.check_at(Instant::now(), client, code)
    }

    fn check_at(&self, now: Instant, client: IpAddr, code: &LoginCode) -> Result<(), AppError> {
        let prefix: String = code.as_str().chars().take(CODE_PREFIX_CHARS).collect();
        let keys = [Key::Client(network_of(client)), Key::CodePrefix(prefix)];
        // A poisoned lock only means another request panicked mid-count: the counts are
        // still numbers, keep using them.
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(window.started);
        if elapsed >= WINDOW {
            window.started = now;
            window.counts.clear();
        }
        let refused = keys.iter().find(|key| match window.counts.get(*key) {
            Some(&n) => n >= self.per_window,
            None => window.counts.len() >= MAX_KEYS,
        });
        if let Some(key) = refused {
            metrics::counter!("logins_rate_limited_total", "by" => key.label()).increment(1);
            let left = WINDOW.saturating_sub(now.saturating_duration_since(window.started));
            // Rounded up: a client that waits this long finds a new window.
            let retry_after_secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Err(AppError::TooManyLogins {
                retry_after_secs: retry_after_secs.max(1),
            });
        }
        for key in keys {
            *window.counts.entry(key).or_insert(0) += 1;
        }
        Ok(())
    }
}

/// The unit one client is counted by: its IPv4 address, or its IPv6 /64 (one subscriber's
/// network; rotating addresses inside it must not give fresh quotas). An IPv4-mapped IPv6
/// address counts as the IPv4 address it carries.
fn network_of(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// The client's address: the peer, or behind a trusted proxy the last hop of
/// `X-Forwarded-For`.
pub(crate) struct ClientAddr(pub(crate) IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if state.login_limits.trusted_proxy
            && let Some(ip) = last_forwarded_hop(parts)
        {
            return Ok(ClientAddr(ip));
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| ClientAddr(peer.ip()))
            .ok_or_else(|| {
                AppError::internal(
                    "reading the client address",
                    "the HTTP server does not record peer addresses (serve with connect info)",
                )
            })
    }
}

/// The last address in the last `X-Forwarded-For` header: the one our proxy appended. Earlier
/// entries are whatever the client claimed.
fn last_forwarded_hop(parts: &Parts) -> Option<IpAddr> {
    let header = parts.headers.get_all(X_FORWARDED_FOR).iter().next_back()?;
    let last = header.to_str().ok()?.rsplit(',').next()?.trim();
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> LoginCode {
        LoginCode::parse(s).unwrap()
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_client_address_gets_its_quota_per_window() {
        let limits = LoginLimits::new(2, false);
        let t0 = Instant::now();
        assert!(limits.check_at(t0, A, &code("aaaaaaaa1")).is_ok());
        assert!(limits.check_at(t0, A, &code("bbbbbbbb1")).is_ok());
        let refused = limits.check_at(t0 + Duration::from_secs(15), A, &code("cccccccc1"));
        assert!(matches!(
            refused,
            Err(AppError::TooManyLogins {
                retry_after_secs: 45
            })
        ));
        assert!(
            limits.check_at(t0, B, &code("dddddddd1")).is_ok(),
            "another client"
        );
        assert!(
            limits.check_at(t0 + WINDOW, A, &code("cccccccc1")).is_ok(),
            "a new window"
        );
    }

    #[test]
    fn a_code_prefix_gets_its_quota_whatever_the_address() {
        let limits = LoginLimits::new(2, false);
        let t0 = Instant::now();
        assert!(limits.check_at(t0, A, &code("samepfx-1")).is_ok());
        assert!(limits.check_at(t0, B, &code("samepfx-2")).is_ok());
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 3));
        assert!(matches!(
            limits.check_at(t0, other, &code("samepfx-3")),
            Err(AppError::TooManyLogins { .. })
        ));
    }

    #[test]
    fn a_refused_login_is_not_counted() {
        let limits = LoginLimits::new(1, false);
        let t0 = Instant::now();
        assert!(limits.check_at(t0, A, &code("aaaaaaaa")).is_ok());
        assert!(limits.check_at(t0, A, &code("bbbbbbbb")).is_err());
        // The refused attempt did not use up the prefix `bbbbbbbb` for another client.
        assert!(limits.check_at(t0, B, &code("bbbbbbbb")).is_ok());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network_of(a), network_of(b));
        assert_ne!(network_of(a), network_of(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(network_of(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
