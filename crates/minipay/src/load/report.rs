//! What a load run found, as one value: printed as a table for people, serialized as one JSON
//! object for machines (`--json`), the same content either way.

use std::fmt::Write as _;

use serde::Serialize;

use super::procs::ServiceUsage;
use super::stats::{Step, StepSummary};

/// A finished (or interrupted) load run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The API's base URL.
    pub api: String,
    /// The simulator's base URL.
    pub sim: String,
    /// Concurrent buyers.
    pub buyers: u32,
    /// The run's length asked for, in seconds (`None` with a count).
    pub duration_s: Option<f64>,
    /// The purchases asked for (`None` with a duration).
    pub count: Option<u64>,
    /// Whether Ctrl-C ended the run early (purchases in flight then are in no count).
    pub interrupted: bool,
    /// From the first buyer's start to the last buyer's end, in seconds.
    pub elapsed_s: f64,
    /// Purchases begun (a buyer that cannot log in counts one failed purchase per attempt).
    pub attempted: u64,
    /// Purchases that reached PAID.
    pub succeeded: u64,
    /// Purchases that failed at some step (see `errors`).
    pub failed: u64,
    /// Succeeded purchases per second of `elapsed_s`.
    pub purchases_per_s: f64,
    /// Each step's latency (successful steps only).
    pub steps: Vec<StepSummary>,
    /// Failed purchases by the step that failed and the error's code, most frequent first.
    pub errors: Vec<ErrorCount>,
    /// The stack's processes found on this machine, each replica on its own line.
    pub services: Vec<ServiceUsage>,
    /// The watched process names found nowhere on this machine (a remote stack, no gateway).
    pub not_found: Vec<String>,
    /// This process: it competes with the stack for the cores when both run on one machine.
    pub load_generator: Option<ServiceUsage>,
}

/// Failures that share a step and a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    /// The step that failed.
    pub step: Step,
    /// The server's error code (`rate_limited`, `payment_unavailable`, ...), `http_<status>`
    /// for an answer without one, `transport` when no answer came, `incomplete_answer`, or
    /// `not_paid_in_time`.
    pub code: String,
    /// How many purchases failed so.
    pub count: u64,
    /// The first such failure's message, for a start at finding why.
    pub example: String,
}

impl LoadReport {
    /// Whether every purchase begun reached PAID.
    pub fn all_succeeded(&self) -> bool {
        self.failed == 0
    }

    /// The report as a table (what `minipay load` prints without `--json`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail: the results are ignored.
        let _ = writeln!(
            out,
            "{} purchases in {:.1} s: {:.1} purchases/s with {} buyers; {} failed{}",
            self.succeeded,
            self.elapsed_s,
            self.purchases_per_s,
            self.buyers,
            self.failed,
            if self.interrupted {
                " (interrupted: purchases in flight are not counted)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "\n{:<26} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "step", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for s in &self.steps {
            let _ = writeln!(
                out,
                "{:<26} {:>7} {:>9} {:>9} {:>9} {:>9}",
                s.step.label(),
                s.count,
                ms(s.p50_ms),
                ms(s.p90_ms),
                ms(s.p99_ms),
                ms(s.max_ms)
            );
        }
        self.render_errors(&mut out);
        self.render_services(&mut out);
        out
    }

    fn render_errors(&self, out: &mut String) {
        if self.errors.is_empty() {
            let _ = writeln!(out, "\nerrors: none");
            return;
        }
        let _ = writeln!(out, "\nerrors by step and code:");
        for e in &self.errors {
            let _ = writeln!(
                out,
                "  {:<26} {:<22} {:>7}  e.g. {}",
                e.step.label(),
                e.code,
                e.count,
                e.example
            );
        }
        // order-svc answers `rate_limited`; Envoy's local limit answers a bare 429.
        if self
            .errors
            .iter()
            .any(|e| e.code == "rate_limited" || e.code == "http_429")
        {
            let _ = writeln!(
                out,
                "  (429: order-svc allows 60 logins a minute per client address; the API \
                 gateway 10 logins and 30 orders a minute per address. This load generator \
                 is one address.)"
            );
        }
    }

    fn render_services(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\nprocesses on this machine (CPU: cores used over the run; RSS: now / peak since it started):"
        );
        for u in &self.services {
            let _ = writeln!(out, "  {}", usage_line(u));
        }
        for name in &self.not_found {
            let _ = writeln!(
                out,
                "  {name:<16} not found on this machine (not running, or the stack runs elsewhere)"
            );
        }
        if let Some(me) = &self.load_generator {
            let _ = writeln!(
                out,
                "  {}   (this load generator, sharing the cores)",
                usage_line(&ServiceUsage {
                    name: "minipay load".into(),
                    ..me.clone()
                })
            );
        }
    }
}

fn usage_line(u: &ServiceUsage) -> String {
    let cpu = match u.cpu_cores {
        Some(c) => format!("{c:.2} cores"),
        None => "started or exited during the run".into(),
    };
    let rss = match u.rss_kib {
        Some(now) => format!(
            "RSS {} / {}",
            mib(now),
            u.peak_rss_kib.map_or("-".into(), mib)
        ),
        None => "exited".into(),
    };
    format!("{:<16} pid {:<8} {cpu:<12} {rss}", u.name, u.pid)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn ms(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.1}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    fn report() -> LoadReport {
        LoadReport {
            api: "http://127.0.0.1:8080".into(),
            sim: "http://127.0.0.1:8090".into(),
            buyers: 4,
            duration_s: None,
            count: Some(20),
            interrupted: false,
            elapsed_s: 2.0,
            attempted: 20,
            succeeded: 19,
            failed: 1,
            purchases_per_s: 9.5,
            steps: vec![StepSummary {
                step: Step::CreateOrder,
                count: 20,
                p50_ms: Some(4.31),
                p90_ms: Some(9.0),
                p99_ms: Some(12.0),
                max_ms: Some(12.0),
            }],
            errors: vec![ErrorCount {
                step: Step::CreateOrder,
                code: "rate_limited".into(),
                count: 1,
                example: "step \"create order\": ... HTTP 429".into(),
            }],
            services: vec![ServiceUsage {
                name: "order-svc".into(),
                pid: 4242,
                cpu_cores: Some(0.34),
                rss_kib: Some(31 * 1024),
                peak_rss_kib: Some(33 * 1024),
            }],
            not_found: vec!["envoy".into()],
            load_generator: None,
        }
    }

    #[test]
    fn the_table_has_throughput_percentiles_errors_and_processes() {
        let text = report().render();
        for expected in [
            "19 purchases in 2.0 s: 9.5 purchases/s with 4 buyers; 1 failed",
            "create order",
            "4.3", // p50, one decimal
            "rate_limited",
            "This load generator is one address",
            "order-svc        pid 4242     0.34 cores   RSS 31.0 MiB / 33.0 MiB",
            "envoy            not found on this machine",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        assert!(!report().all_succeeded());
    }

    #[test]
    fn json_has_the_same_content_with_snake_case_steps() {
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["succeeded"], 19);
        assert_eq!(json["count"], 20);
        assert!(json["duration_s"].is_null());
        assert_eq!(json["steps"][0]["step"], "create_order");
        assert_eq!(json["steps"][0]["p50_ms"], 4.31);
        assert_eq!(json["errors"][0]["code"], "rate_limited");
        assert_eq!(json["errors"][0]["step"], "create_order");
        assert_eq!(json["services"][0]["pid"], 4242);
        assert_eq!(json["services"][0]["rss_kib"], 31 * 1024);
        assert_eq!(json["not_found"][0], "envoy");
    }

    #[test]
    fn a_step_without_samples_shows_dashes() {
        let mut r = report();
        r.steps[0] = StepSummary {
            step: Step::Paid,
            count: 0,
            p50_ms: None,
            p90_ms: None,
            p99_ms: None,
            max_ms: None,
        };
        let text = r.render();
        let line = text.lines().find(|l| l.starts_with("paid")).unwrap();
        assert_eq!(
            line.split_whitespace().filter(|w| *w == "-").count(),
            4,
            "{line}"
        );
    }
}
