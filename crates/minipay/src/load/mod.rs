//! `minipay load`'s engine, for sizing pods: N concurrent Mini Program buyers drive a running
//! stack through its public API and the simulator's control API (login once, then order →
//! prepay → the simulator pays → poll until PAID, again and again) for a duration or a count
//! of purchases; the report has the throughput, each step's latency percentiles, the failures
//! by step and code, and the CPU and memory of the stack's processes on this machine.
//!
//! A library function ([`run`]) rather than code in the CLI, so the integration test drives
//! exactly what `minipay load` runs against a stack it started.

mod buyer;
pub mod procs;
pub mod report;
pub mod stats;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use service_runtime::telemetry::error_chain;
use tokio::sync::watch;
use tokio::task::JoinSet;

use self::buyer::{Buyer, Record};
pub use self::procs::ServiceUsage;
use self::procs::{Snapshot, WATCHED};
pub use self::report::{ErrorCount, LoadReport};
pub use self::stats::{Step, StepSummary};
use crate::purchase::{PurchaseError, Shop};

/// Where the processes are read from.
const PROC: &str = "/proc";

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// No purchase begins after this long (those in flight finish and count).
    Elapsed(Duration),
    /// This many purchases are begun, in all.
    Count(u64),
}

/// What to drive, how hard and for how long.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The API's base URL (order-svc, or the API gateway).
    pub api: String,
    /// The simulator's base URL (its control API pays).
    pub sim: String,
    /// The HTTP client every buyer shares (see [`client`]).
    pub http: reqwest::Client,
    /// Concurrent buyers.
    pub buyers: u32,
    /// When to stop.
    pub until: Until,
    /// The counters and the stop switch, for a progress line and Ctrl-C.
    pub live: Arc<Live>,
}

impl LoadOptions {
    /// `buyers` buyers against `api` and `sim` until `until`, with fresh counters.
    pub fn new(api: String, sim: String, http: reqwest::Client, buyers: u32, until: Until) -> Self {
        LoadOptions {
            api,
            sim,
            http,
            buyers,
            until,
            live: Arc::default(),
        }
    }
}

/// Why a run could not begin (once it has begun, failures are counted in the report).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The API or the simulator did not answer the first call.
    #[error("{}", unreachable_message(.0))]
    Unreachable(Vec<Unreachable>),
    /// The price list had nothing to buy.
    #[error("the API's price list has no product to buy: {0}")]
    NoProducts(serde_json::Value),
    /// `--ca` could not be read.
    #[error("cannot read the CA certificate {path}")]
    CaRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--ca` is not a PEM certificate.
    #[error("{path} is not a PEM certificate")]
    CaParse {
        /// The file.
        path: PathBuf,
        /// What reqwest saw.
        #[source]
        source: reqwest::Error,
    },
    /// `--ca` has no certificate in it.
    #[error("{path} holds no PEM certificate")]
    CaEmpty {
        /// The file.
        path: PathBuf,
    },
    /// The HTTP client could not be built (its TLS backend did not start).
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// One endpoint that did not answer as it should at the start.
#[derive(Debug, thiserror::Error)]
#[error("{what} is not reachable")]
pub struct Unreachable {
    /// Which endpoint (its URL is in the source's message).
    pub what: &'static str,
    /// The failed call.
    #[source]
    pub source: PurchaseError,
}

fn unreachable_message(all: &[Unreachable]) -> String {
    all.iter()
        .map(|u| error_chain(u))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The HTTP client for a run: trusts the system's roots, plus `ca` when given (the API
/// gateway's test CA).
pub fn client(ca: Option<&Path>) -> Result<reqwest::Client, LoadError> {
    let roots = match ca {
        None => Vec::new(),
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| LoadError::CaRead {
                path: path.to_owned(),
                source,
            })?;
            // The bundle reader parses now; `from_pem` would defer a bad file to the first
            // handshake, where it would look like an unreachable gateway.
            let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                LoadError::CaParse {
                    path: path.to_owned(),
                    source,
                }
            })?;
            if roots.is_empty() {
                return Err(LoadError::CaEmpty {
                    path: path.to_owned(),
                });
            }
            roots
        }
    };
    crate::purchase::client(roots).map_err(LoadError::Client)
}

/// The counters a progress line reads while a run goes on, and the switch that ends it early.
#[derive(Debug)]
pub struct Live {
    started: OnceLock<Instant>,
    /// Claims under [`Until::Count`]: a claim that finds it at the count is refused (and
    /// still adds one, so it may pass the count; only the comparison matters).
    begun: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    stop: watch::Sender<bool>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            started: OnceLock::new(),
            begun: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            stop: watch::Sender::new(false),
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Since the buyers started (zero before).
    pub elapsed: Duration,
    /// Purchases that reached PAID.
    pub succeeded: u64,
    /// Purchases that failed.
    pub failed: u64,
}

impl Progress {
    /// One line for a terminal: elapsed, purchases (of the count), rate, errors.
    pub fn line(&self, until: Until) -> String {
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            self.succeeded as f64 / seconds
        } else {
            0.0
        };
        let (of, done) = match until {
            Until::Elapsed(d) => (
                format!(" of {}", humantime::format_duration(d)),
                format!("{} purchases", self.succeeded),
            ),
            Until::Count(n) => (
                String::new(),
                format!("{}/{n} purchases", self.succeeded + self.failed),
            ),
        };
        format!(
            "{seconds:6.1} s{of}  {done}  {rate:.1}/s  {} errors",
            self.failed
        )
    }
}

impl Live {
    /// The counters now.
    pub fn progress(&self) -> Progress {
        Progress {
            elapsed: self.started.get().map_or(Duration::ZERO, Instant::elapsed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// Ends the run early: no purchase begins, those in flight are abandoned (and not
    /// counted), and [`run`] returns the report of what finished.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Whether a buyer may begin another purchase (a duration counts from the run's start).
    fn claim(&self, until: Until) -> bool {
        if self.stopped() {
            return false;
        }
        match until {
            Until::Elapsed(d) => self.started.get().is_some_and(|s| s.elapsed() < d),
            Until::Count(n) => self.begun.fetch_add(1, Ordering::Relaxed) < n,
        }
    }
}

/// Drives the stack as [`LoadOptions`] says and reports. Checks first that the API's price
/// list and the simulator's health answer (naming each that does not); from then on every
/// failure is counted in the report, never returned.
pub async fn run(options: LoadOptions) -> Result<LoadReport, LoadError> {
    let api = options.api.trim_end_matches('/').to_owned();
    let sim = options.sim.trim_end_matches('/').to_owned();
    let shop = Shop::with_client(options.http.clone(), api.clone(), sim.clone());
    let sku = first_sku(&shop).await?;
    let live = options.live;
    let proc = Path::new(PROC);
    let me = std::process::id();
    let (before, me_before) = (Snapshot::take(proc, &WATCHED), Snapshot::of_pid(proc, me));
    let started = Instant::now();
    let _ = live.started.set(started);
    let mut buyers = JoinSet::new();
    for n in 0..options.buyers {
        let buyer = Buyer::new(shop.clone(), format!("load{n}"), sku.clone());
        buyers.spawn(buyer.run(live.clone(), options.until));
    }
    let mut record = Record::default();
    while let Some(joined) = buyers.join_next().await {
        match joined {
            Ok(r) => record.merge(r),
            // A buyer cannot panic by design; should one, its purchase counts as failed
            // rather than taking the report down with it.
            Err(e) => record.fail(Step::Purchase, "internal", e.to_string()),
        }
    }
    let elapsed = started.elapsed();
    let (after, me_after) = (Snapshot::take(proc, &WATCHED), Snapshot::of_pid(proc, me));
    let (services, not_found) = procs::usage(&before, &after, elapsed, &WATCHED);
    let load_generator = procs::usage_of(me, me_before.as_ref(), me_after.as_ref(), elapsed);
    let (succeeded, failed) = (record.succeeded, record.failed());
    let seconds = elapsed.as_secs_f64();
    Ok(LoadReport {
        api,
        sim,
        buyers: options.buyers,
        duration_s: match options.until {
            Until::Elapsed(d) => Some(d.as_secs_f64()),
            Until::Count(_) => None,
        },
        count: match options.until {
            Until::Count(n) => Some(n),
            Until::Elapsed(_) => None,
        },
        interrupted: live.stopped(),
        elapsed_s: seconds,
        attempted: succeeded + failed,
        succeeded,
        failed,
        purchases_per_s: if seconds > 0.0 {
            succeeded as f64 / seconds
        } else {
            0.0
        },
        errors: record.errors(),
        steps: record.samples.summarize(),
        services,
        not_found,
        load_generator,
    })
}

/// The first product of the price list, once the API and the simulator both answered.
async fn first_sku(shop: &Shop) -> Result<String, LoadError> {
    let (products, health) = tokio::join!(shop.products(), shop.sim_health());
    let products = match (products, health) {
        (Ok(products), Ok(())) => products,
        (products, health) => {
            let api = products.err().map(|source| Unreachable {
                what: "the API (GET /api/v1/products)",
                source,
            });
            let sim = health.err().map(|source| Unreachable {
                what: "the simulator (GET /sim/v1/health)",
                source,
            });
            return Err(LoadError::Unreachable(api.into_iter().chain(sim).collect()));
        }
    };
    match products["products"][0]["sku"].as_str() {
        Some(sku) => Ok(sku.to_owned()),
        None => Err(LoadError::NoProducts(products)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn a_count_hands_out_exactly_that_many_tickets() {
        let live = Live::default();
        let granted = (0..10).filter(|_| live.claim(Until::Count(4))).count();
        assert_eq!(granted, 4);
    }

    #[test]
    fn a_duration_grants_until_it_has_passed_and_stop_ends_both() {
        let live = Live::default();
        live.started
            .set(Instant::now() - Duration::from_secs(5))
            .unwrap();
        assert!(live.claim(Until::Elapsed(Duration::from_secs(60))));
        assert!(!live.claim(Until::Elapsed(Duration::from_secs(1))));
        live.stop();
        assert!(!live.claim(Until::Elapsed(Duration::from_secs(60))));
        assert!(!live.claim(Until::Count(100)));
    }

    #[test]
    fn the_progress_line_has_elapsed_purchases_rate_and_errors() {
        let p = Progress {
            elapsed: Duration::from_secs(10),
            succeeded: 150,
            failed: 2,
        };
        assert_eq!(
            p.line(Until::Elapsed(Duration::from_secs(30))),
            "  10.0 s of 30s  150 purchases  15.0/s  2 errors"
        );
        assert_eq!(
            p.line(Until::Count(500)),
            "  10.0 s  152/500 purchases  15.0/s  2 errors"
        );
    }

    #[tokio::test]
    async fn nothing_reachable_names_both_endpoints() {
        let dead = format!("http://{}", test_support::dead_addr());
        let options = LoadOptions::new(
            dead.clone(),
            format!("{dead}/"),
            client(None).unwrap(),
            2,
            Until::Count(1),
        );
        let error = run(options).await.unwrap_err();
        let LoadError::Unreachable(ref all) = error else {
            panic!("{error:?}");
        };
        assert_eq!(all.len(), 2, "{error}");
        let text = error.to_string();
        assert!(
            text.contains("the API (GET /api/v1/products) is not reachable"),
            "{text}"
        );
        assert!(
            text.contains("the simulator (GET /sim/v1/health) is not reachable"),
            "{text}"
        );
        assert!(text.contains(&format!("{dead}/api/v1/products")), "{text}");
        assert!(text.contains(&format!("{dead}/sim/v1/health")), "{text}");
    }

    #[test]
    fn a_missing_or_bad_ca_file_is_named() {
        let missing = Path::new("/no/such/ca.pem");
        let error = client(Some(missing)).unwrap_err();
        assert!(matches!(error, LoadError::CaRead { .. }), "{error:?}");
        assert!(error.to_string().contains("/no/such/ca.pem"), "{error}");
        let bad = std::env::temp_dir().join(format!("minipay-bad-ca-{}.pem", std::process::id()));
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let error = client(Some(&bad)).unwrap_err();
        std::fs::remove_file(&bad).unwrap();
        assert!(matches!(error, LoadError::CaParse { .. }), "{error:?}");
    }
}
