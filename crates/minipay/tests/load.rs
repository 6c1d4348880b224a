//! `minipay load`'s engine against a real stack (the binaries as separate processes, started
//! as `minipay up` starts them, on their own ports, database and prefixes): every purchase
//! reaches PAID, every step is timed, and the stack's own processes are in the report.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use minipay::load::{self, LoadOptions, Step, Until};
use minipay::process::LogSink;
use minipay::stack::{self, RunningStack};
use test_support::AmqpCleanup;

mod support;

/// A stack of real processes of its own, and what cleans up after it.
async fn start() -> (RunningStack, AmqpCleanup) {
    let (config, cleanup) = support::isolated("l", LogSink::keep()).await;
    (support::start(config).await, cleanup)
}

#[tokio::test]
async fn four_buyers_make_twenty_purchases_and_every_step_is_timed() {
    let (stack, _cleanup) = start().await;
    let options = LoadOptions::new(
        stack.order_url(),
        stack.sim_url(),
        load::client(None).unwrap(),
        4,
        Until::Count(20),
    );
    let report = load::run(options).await.unwrap();

    assert_eq!(
        (report.attempted, report.succeeded, report.failed),
        (20, 20, 0),
        "{}",
        report.render()
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.all_succeeded());
    assert!(report.purchases_per_s > 0.0, "{}", report.render());
    for step in Step::ALL {
        let s = report.steps.iter().find(|s| s.step == step).unwrap();
        let wanted = if step == Step::Login { 4 } else { 20 };
        assert_eq!(s.count, wanted, "{step:?}: {}", report.render());
        let [p50, p90, p99, max] = [s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms].map(Option::unwrap);
        assert!(
            0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max,
            "{step:?}: {s:?}"
        );
    }

    // Other tests' stacks may run beside this one: find this stack's processes by the pids
    // it knows.
    let pids = stack.pids();
    for (_, name) in stack::BINARIES {
        let (_, pid) = pids.iter().find(|(n, _)| n == name).unwrap();
        let usage = report
            .services
            .iter()
            .find(|u| u.pid == *pid)
            .unwrap_or_else(|| panic!("{name} (pid {pid}) is not in {:?}", report.services));
        assert_eq!(usage.name, name);
        assert!(usage.cpu_cores.is_some_and(|c| c >= 0.0), "{usage:?}");
        assert!(
            usage.rss_kib.is_some_and(|r| r > 0) && usage.peak_rss_kib >= usage.rss_kib,
            "{usage:?}"
        );
    }
    assert!(
        report.not_found.iter().all(|n| n == "envoy"),
        "only the gateway is missing: {:?}",
        report.not_found
    );
    let me = report.load_generator.as_ref().unwrap();
    assert_eq!(me.pid, std::process::id());

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["succeeded"], 20);
    assert_eq!(json["steps"][0]["step"], "login");

    support::stop_cleanly(stack).await;
}
