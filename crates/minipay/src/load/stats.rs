//! Latency samples per step and their percentiles. Every sample is kept (a run of a few
//! minutes is some hundred thousand durations per step, a few MB): sorting them once at the
//! end gives exact percentiles without a histogram crate.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// What a buyer times, in the order a purchase goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// `wx.login`'s code exchanged for a session token (once per buyer, again after a 401).
    Login,
    /// `POST /api/v1/orders` with an Idempotency-Key.
    CreateOrder,
    /// `POST /api/v1/orders/{id}/payment`: the `wx.requestPayment` object (WeChat's prepay).
    Prepay,
    /// The simulator's control API: the user pays in WeChat.
    Pay,
    /// From the simulator's answer to the first poll that sees PAID (the notification's way
    /// through notify-svc, RabbitMQ and order-svc, plus up to one poll interval).
    Paid,
    /// A whole purchase: from creating the order to seeing it PAID (the login excluded: a
    /// buyer logs in once and buys many times).
    Purchase,
}

impl Step {
    /// Every step, in report order.
    pub const ALL: [Step; 6] = [
        Step::Login,
        Step::CreateOrder,
        Step::Prepay,
        Step::Pay,
        Step::Paid,
        Step::Purchase,
    ];

    /// The step as the text report names it.
    pub fn label(self) -> &'static str {
        match self {
            Step::Login => "login",
            Step::CreateOrder => "create order",
            Step::Prepay => "prepay",
            Step::Pay => "pay (simulator)",
            Step::Paid => "paid (pay -> PAID seen)",
            Step::Purchase => "purchase (create -> PAID)",
        }
    }
}

/// The durations of one buyer's (or, merged, every buyer's) successful steps.
#[derive(Debug, Default)]
pub struct Samples {
    by_step: BTreeMap<Step, Vec<Duration>>,
}

impl Samples {
    /// Records that `step` took `took`.
    pub fn record(&mut self, step: Step, took: Duration) {
        self.by_step.entry(step).or_default().push(took);
    }

    /// Adds another buyer's samples.
    pub fn merge(&mut self, other: Samples) {
        for (step, mut durations) in other.by_step {
            self.by_step.entry(step).or_default().append(&mut durations);
        }
    }

    /// How many times `step` succeeded.
    pub fn count(&self, step: Step) -> usize {
        self.by_step.get(&step).map_or(0, Vec::len)
    }

    /// Each step's count and percentiles, every step listed (a step that never succeeded has
    /// count 0 and no percentiles).
    pub fn summarize(mut self) -> Vec<StepSummary> {
        Step::ALL
            .iter()
            .map(|&step| {
                let mut durations = self.by_step.remove(&step).unwrap_or_default();
                durations.sort_unstable();
                StepSummary::of(step, &durations)
            })
            .collect()
    }
}

/// One step's latency over the run, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepSummary {
    /// Which step.
    pub step: Step,
    /// How many times it succeeded (the percentiles are over these).
    pub count: usize,
    /// Half of the samples took at most this long.
    pub p50_ms: Option<f64>,
    /// 90 % took at most this long.
    pub p90_ms: Option<f64>,
    /// 99 % took at most this long.
    pub p99_ms: Option<f64>,
    /// The slowest.
    pub max_ms: Option<f64>,
}

impl StepSummary {
    /// The summary of `sorted` (ascending).
    fn of(step: Step, sorted: &[Duration]) -> StepSummary {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        StepSummary {
            step,
            count: sorted.len(),
            p50_ms: ms(percentile(sorted, 50)),
            p90_ms: ms(percentile(sorted, 90)),
            p99_ms: ms(percentile(sorted, 99)),
            max_ms: ms(sorted.last().copied()),
        }
    }
}

/// The `p`th percentile of `sorted` (ascending) by the nearest-rank method: the smallest
/// sample with at least `p` % of the samples at or below it. Always one of the samples (no
/// interpolation), so p50 ≤ p90 ≤ p99 ≤ max holds by construction; `None` without samples.
pub fn percentile(sorted: &[Duration], p: u8) -> Option<Duration> {
    let p = usize::from(p.min(100));
    // rank = ceil(p/100 × n), at least 1; integer arithmetic, so no float rounding.
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn no_samples_no_percentile() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[], 100), None);
    }

    #[test]
    fn one_sample_is_every_percentile() {
        for p in [0, 1, 50, 99, 100] {
            assert_eq!(percentile(&[ms(7)], p), Some(ms(7)));
        }
    }

    #[test]
    fn nearest_rank_on_one_to_a_hundred() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50), Some(ms(50)));
        assert_eq!(percentile(&sorted, 90), Some(ms(90)));
        assert_eq!(percentile(&sorted, 99), Some(ms(99)));
        assert_eq!(percentile(&sorted, 100), Some(ms(100)));
        assert_eq!(percentile(&sorted, 0), Some(ms(1)));
    }

    #[test]
    fn nearest_rank_rounds_up_between_samples() {
        // 10 samples: p50 is the 5th, p90 the 9th, p99 the 10th (ceil(9.9)).
        let sorted: Vec<Duration> = (1..=10).map(|n| ms(n * 10)).collect();
        assert_eq!(percentile(&sorted, 50), Some(ms(50)));
        assert_eq!(percentile(&sorted, 90), Some(ms(90)));
        assert_eq!(percentile(&sorted, 99), Some(ms(100)));
        // 3 samples: p50 is the 2nd (ceil(1.5)).
        assert_eq!(percentile(&[ms(1), ms(2), ms(3)], 50), Some(ms(2)));
    }

    #[test]
    fn a_percentile_above_a_hundred_is_the_maximum() {
        assert_eq!(percentile(&[ms(1), ms(9)], 250), Some(ms(9)));
    }

    #[test]
    fn summaries_list_every_step_in_order_with_ordered_percentiles() {
        let mut a = Samples::default();
        let mut b = Samples::default();
        // Unsorted, from two buyers, with a long tail.
        for n in [30, 10, 20, 500, 40] {
            a.record(Step::Prepay, ms(n));
        }
        for n in [15, 25, 35, 45, 5] {
            b.record(Step::Prepay, ms(n));
        }
        b.record(Step::Login, ms(3));
        a.merge(b);
        assert_eq!(a.count(Step::Prepay), 10);
        let summary = a.summarize();
        let steps: Vec<Step> = summary.iter().map(|s| s.step).collect();
        assert_eq!(steps, Step::ALL);
        let prepay = summary.iter().find(|s| s.step == Step::Prepay).unwrap();
        assert_eq!(prepay.count, 10);
        assert_eq!(prepay.p50_ms, Some(25.0));
        assert_eq!(prepay.p90_ms, Some(45.0));
        assert_eq!(prepay.p99_ms, Some(500.0));
        assert_eq!(prepay.max_ms, Some(500.0));
        let login = summary.iter().find(|s| s.step == Step::Login).unwrap();
        assert_eq!(
            (login.count, login.p50_ms, login.max_ms),
            (1, Some(3.0), Some(3.0))
        );
        let pay = summary.iter().find(|s| s.step == Step::Pay).unwrap();
        assert_eq!((pay.count, pay.p50_ms, pay.max_ms), (0, None, None));
    }

    #[test]
    fn percentiles_are_ordered_for_any_samples() {
        // A deterministic spread of shapes: constant, increasing, a few outliers.
        for n in 1..200u64 {
            let sorted = {
                let mut v: Vec<Duration> = (0..n).map(|i| ms((i * 7919) % 97 + n % 5)).collect();
                v.sort_unstable();
                v
            };
            let [p50, p90, p99, max] = [50, 90, 99, 100].map(|p| percentile(&sorted, p).unwrap());
            assert!(p50 <= p90 && p90 <= p99 && p99 <= max, "{n}: {sorted:?}");
            assert_eq!(max, *sorted.last().unwrap());
        }
    }
}
