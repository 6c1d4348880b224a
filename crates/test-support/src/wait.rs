//! Waiting for a condition, never for a time: the condition is polled (a short pause between
//! tries, growing to 100 ms) until it holds or the deadline passes, and then the test fails
//! naming what it waited for and what it last saw.

use std::fmt::Debug;
use std::time::Duration;

use tokio::time::Instant;

/// What a condition answers: `true`, `Some(value)` or `Ok(value)` when it holds; `false`,
/// `None` or `Err(last seen)` when not yet.
pub trait Check {
    /// What the wait returns once the condition holds.
    type Output;
    /// The value when it holds, else a description of what was seen.
    fn outcome(self) -> Result<Self::Output, String>;
}

impl Check for bool {
    type Output = ();
    fn outcome(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

impl<T> Check for Option<T> {
    type Output = T;
    fn outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

impl<T, E: Debug> Check for Result<T, E> {
    type Output = T;
    fn outcome(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Polls `condition` until it holds, at most `within`; what it held with. Panics (failing the
/// test) with `what` and the last observation when the deadline passes.
///
/// ```text
/// wait_until(Duration::from_secs(15), "order.paid is published", || async {
///     events.count("order.paid") == 1
/// })
/// .await;
/// ```
pub async fn wait_until<F, Fut, C>(within: Duration, what: &str, mut condition: F) -> C::Output
where
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
    C: Check,
{
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(10);
    loop {
        let last = match condition().await.outcome() {
            Ok(value) => return value,
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            panic!("gave up after {within:?} waiting until {what}; last seen: {last}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_what_the_condition_held_with() {
        let tries = AtomicU32::new(0);
        let n = wait_until(Duration::from_secs(5), "the third try", || async {
            let n = tries.fetch_add(1, Ordering::SeqCst) + 1;
            (n == 3).then_some(n)
        })
        .await;
        assert_eq!(n, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting until it is never true; last seen: \"still 7\"")]
    async fn fails_naming_the_condition_and_the_last_observation() {
        wait_until(Duration::from_millis(50), "it is never true", || async {
            Err::<(), _>("still 7")
        })
        .await;
    }
}
