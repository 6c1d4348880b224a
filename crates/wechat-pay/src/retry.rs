//! The crate's one retry mechanism: exponential backoff with jitter, a bounded number of
//! attempts and a deadline, for any error that knows whether it is retryable. The v2 client
//! and the login client both use it.

use std::fmt::Display;
use std::time::{Duration, Instant};

use rand::Rng;
use tracing::{debug, warn};

/// How often and how patiently to retry retryable failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 means no retry).
    pub max_attempts: u32,
    /// Pause before the first retry; doubled each time.
    pub initial_backoff: Duration,
    /// Longest pause between attempts.
    pub max_backoff: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            deadline: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (0-based): exponential, capped, with up to 25%
    /// random jitter so that many clients do not retry in step.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let base = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_backoff);
        let jitter_ms = u64::try_from(base.as_millis() / 4).unwrap_or(0);
        base + Duration::from_millis(if jitter_ms == 0 {
            0
        } else {
            rand::rng().random_range(0..=jitter_ms)
        })
    }
}

impl RetryPolicy {
    /// A single attempt: no retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }
}

/// An error that says whether trying again may succeed. Each error type implements it beside
/// its own definition, where its inherent `is_retryable` decides.
pub(crate) trait Retryable: Display {
    fn is_retryable(&self) -> bool;
}

/// Runs `attempt` until it succeeds, fails for good, runs out of attempts, or would start a
/// retry past the deadline. `call` names it in logs.
pub(crate) async fn with_retries<T, E, F, Fut>(
    policy: &RetryPolicy,
    call: &str,
    mut attempt: F,
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut retry = 0;
    loop {
        match attempt().await {
            Ok(value) => {
                debug!(call, attempts = retry + 1, "wechat call succeeded");
                return Ok(value);
            }
            Err(error) => {
                let pause = policy.backoff(retry);
                let may_retry = error.is_retryable()
                    && retry + 1 < policy.max_attempts
                    && started.elapsed() + pause < policy.deadline;
                if !may_retry {
                    debug!(call, attempts = retry + 1, %error, "wechat call failed");
                    return Err(error);
                }
                warn!(call, attempt = retry + 1, %error, ?pause, "retrying wechat call");
                tokio::time::sleep(pause).await;
                retry += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            deadline: Duration::from_secs(1),
        };
        assert!((100..=125).contains(&p.backoff(0).as_millis()));
        assert!((200..=250).contains(&p.backoff(1).as_millis()));
        assert!((300..=375).contains(&p.backoff(7).as_millis()));
    }
}
