//! The stack's processes on this machine, read from `/proc`: CPU time from
//! `/proc/<pid>/stat` (utime + stime), memory from `/proc/<pid>/status` (VmRSS now, VmHWM the
//! peak since the process started). Found by name in `/proc/<pid>/comm`, so whatever started
//! them (`minipay up`, a test, compose on this host) they are measured the same way.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// The names (as `/proc/<pid>/comm` shows them) of the processes a sizing run cares about.
pub const WATCHED: [&str; 5] = [
    "order-svc",
    "notify-svc",
    "pay-gateway-svc",
    "wechatpay-sim",
    "envoy",
];

/// Clock ticks per second of `/proc/<pid>/stat`'s times: USER_HZ, which Linux exposes as 100
/// on x86 and ARM whatever the kernel's own tick rate (reading `sysconf(_SC_CLK_TCK)` would
/// need libc and `unsafe`, which this workspace forbids).
const TICKS_PER_SECOND: f64 = 100.0;

/// One process at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSample {
    /// Its name (`comm`).
    pub name: String,
    /// CPU time used since it started, user and system, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident memory now, in KiB (`VmRSS`).
    pub rss_kib: Option<u64>,
    /// The most resident memory it ever had, in KiB (`VmHWM`).
    pub peak_rss_kib: Option<u64>,
}

/// The watched processes at one moment, by pid.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    processes: BTreeMap<u32, ProcessSample>,
}

impl Snapshot {
    /// The processes under `proc_root` (normally `/proc`) whose name is one of `names`. A
    /// process that exits while it is read is left out; without a readable `proc_root` (not
    /// Linux) the snapshot is empty.
    pub fn take(proc_root: &Path, names: &[&str]) -> Snapshot {
        let mut processes = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(proc_root) else {
            return Snapshot { processes };
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let dir = entry.path();
            let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
                continue;
            };
            let name = comm.trim_end_matches('\n');
            if !names.contains(&name) {
                continue;
            }
            if let Some(sample) = read_process(&dir, name) {
                processes.insert(pid, sample);
            }
        }
        Snapshot { processes }
    }

    /// One process by pid, whatever its name (`/proc/self` is not a number: pass the pid).
    pub fn of_pid(proc_root: &Path, pid: u32) -> Option<ProcessSample> {
        let dir = proc_root.join(pid.to_string());
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        read_process(&dir, comm.trim_end_matches('\n'))
    }
}

fn read_process(dir: &Path, name: &str) -> Option<ProcessSample> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let cpu_ticks = cpu_ticks(&stat)?;
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    Some(ProcessSample {
        name: name.to_owned(),
        cpu_ticks,
        rss_kib: status_kib(&status, "VmRSS"),
        peak_rss_kib: status_kib(&status, "VmHWM"),
    })
}

/// utime + stime from the text of `/proc/<pid>/stat`. The name in parentheses may itself
/// contain spaces and parentheses, so the fields are counted from the last `)`: after it
/// come field 3 (state) onwards, utime is field 14 and stime field 15.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `Key:   123 kB` line's number from the text of `/proc/<pid>/status`.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// One watched process over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceUsage {
    /// Its name (`comm`).
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// CPU used over the run, in cores (1.0 = one core busy the whole time); `None` when it
    /// started or exited during the run.
    pub cpu_cores: Option<f64>,
    /// Resident memory at the end, in KiB (`None`: it exited during the run).
    pub rss_kib: Option<u64>,
    /// Peak resident memory since it started, in KiB.
    pub peak_rss_kib: Option<u64>,
}

/// One process's use between two samples of it (`None` when it is in neither): CPU only if
/// it is in both, memory from the last one.
pub fn usage_of(
    pid: u32,
    start: Option<&ProcessSample>,
    end: Option<&ProcessSample>,
    elapsed: Duration,
) -> Option<ServiceUsage> {
    let any = end.or(start)?;
    Some(ServiceUsage {
        name: any.name.clone(),
        pid,
        cpu_cores: match (start, end) {
            (Some(s), Some(e)) => cores(s.cpu_ticks, e.cpu_ticks, elapsed),
            _ => None,
        },
        rss_kib: end.and_then(|e| e.rss_kib),
        peak_rss_kib: any.peak_rss_kib,
    })
}

/// Each process found in either snapshot, by name then pid, and the watched names found in
/// neither. `elapsed` is the time between the snapshots.
pub fn usage(
    before: &Snapshot,
    after: &Snapshot,
    elapsed: Duration,
    names: &[&str],
) -> (Vec<ServiceUsage>, Vec<String>) {
    let pids: std::collections::BTreeSet<u32> = before
        .processes
        .keys()
        .chain(after.processes.keys())
        .copied()
        .collect();
    let mut found: Vec<ServiceUsage> = pids
        .into_iter()
        .filter_map(|pid| {
            usage_of(
                pid,
                before.processes.get(&pid),
                after.processes.get(&pid),
                elapsed,
            )
        })
        .collect();
    // In the order of `names` (the stack's order), then by pid.
    found.sort_by_key(|u| {
        let rank = names
            .iter()
            .position(|n| *n == u.name)
            .unwrap_or(names.len());
        (rank, u.pid)
    });
    let missing = names
        .iter()
        .filter(|n| !found.iter().any(|u| u.name == **n))
        .map(|n| (*n).to_owned())
        .collect();
    (found, missing)
}

/// Cores used between two readings of a process's CPU ticks `elapsed` apart.
pub fn cores(ticks_before: u64, ticks_after: u64, elapsed: Duration) -> Option<f64> {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 || ticks_after < ticks_before {
        return None;
    }
    Some((ticks_after - ticks_before) as f64 / TICKS_PER_SECOND / seconds)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    /// The stat line of a process whose name has a space and a parenthesis in it.
    const STAT: &str = "4242 (odd) name) S 1 4242 4242 0 -1 4194560 1830 0 0 0 \
                        250 75 0 0 20 0 9 0 123456 1234567 7890 18446744073709551615";

    const STATUS: &str = "Name:\torder-svc\nVmPeak:\t  900000 kB\nVmHWM:\t   33012 kB\n\
                          VmRSS:\t   31000 kB\nRssAnon:\t 20000 kB\n";

    #[test]
    fn cpu_ticks_are_utime_plus_stime_counted_after_the_name() {
        assert_eq!(cpu_ticks(STAT), Some(325));
    }

    #[test]
    fn a_stat_line_cut_short_has_no_cpu_ticks() {
        assert_eq!(cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(cpu_ticks("no parenthesis"), None);
        assert_eq!(cpu_ticks(""), None);
    }

    #[test]
    fn memory_lines_are_read_by_key() {
        assert_eq!(status_kib(STATUS, "VmRSS"), Some(31000));
        assert_eq!(status_kib(STATUS, "VmHWM"), Some(33012));
        // VmRSS is not the prefix of another key's match, nor is a missing key guessed.
        assert_eq!(status_kib(STATUS, "VmSwap"), None);
        assert_eq!(status_kib("VmRSS:\tlots kB", "VmRSS"), None);
    }

    #[test]
    fn cores_are_cpu_seconds_per_second() {
        // 150 ticks = 1.5 s of CPU over 3 s: half a core.
        assert_eq!(cores(100, 250, Duration::from_secs(3)), Some(0.5));
        assert_eq!(cores(100, 100, Duration::from_secs(3)), Some(0.0));
        assert_eq!(cores(100, 250, Duration::ZERO), None);
        assert_eq!(
            cores(250, 100, Duration::from_secs(1)),
            None,
            "a reused pid"
        );
    }

    fn fake_proc(root: &Path, pid: u32, name: &str, ticks: u64, rss: u64) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("comm"), format!("{name}\n")).unwrap();
        std::fs::write(
            dir.join("stat"),
            format!("{pid} ({name}) S 1 1 1 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 1 1 1"),
        )
        .unwrap();
        std::fs::write(
            dir.join("status"),
            format!("VmHWM:\t{} kB\nVmRSS:\t{rss} kB\n", rss * 2),
        )
        .unwrap();
    }

    #[test]
    fn a_scan_finds_watched_names_and_usage_pairs_them_by_pid() {
        let root = std::env::temp_dir().join(format!("minipay-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        fake_proc(&root, 10, "order-svc", 100, 1000);
        fake_proc(&root, 11, "order-svc", 50, 900);
        fake_proc(&root, 12, "bash", 1, 1);
        fake_proc(&root, 13, "notify-svc", 10, 500);
        std::fs::create_dir_all(root.join("self")).unwrap();
        let before = Snapshot::take(&root, &WATCHED);
        assert_eq!(before.processes.len(), 3, "{before:?}");
        // Over 2 s: replica 10 used a core, 11 nothing, 13 exited, 14 started.
        fake_proc(&root, 10, "order-svc", 300, 1200);
        std::fs::remove_dir_all(root.join("13")).unwrap();
        fake_proc(&root, 14, "wechatpay-sim", 5, 700);
        let after = Snapshot::take(&root, &WATCHED);
        let (found, missing) = usage(&before, &after, Duration::from_secs(2), &WATCHED);
        let rows: Vec<(&str, u32, Option<f64>, Option<u64>)> = found
            .iter()
            .map(|u| (u.name.as_str(), u.pid, u.cpu_cores, u.rss_kib))
            .collect();
        assert_eq!(
            rows,
            [
                ("order-svc", 10, Some(1.0), Some(1200)),
                ("order-svc", 11, Some(0.0), Some(900)),
                ("notify-svc", 13, None, None),
                ("wechatpay-sim", 14, None, Some(700)),
            ]
        );
        assert_eq!(found[0].peak_rss_kib, Some(2400));
        assert_eq!(missing, ["pay-gateway-svc", "envoy"]);
        assert_eq!(Snapshot::of_pid(&root, 12).unwrap().name, "bash");
        assert_eq!(Snapshot::of_pid(&root, 99), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn without_proc_nothing_is_found() {
        let snapshot = Snapshot::take(Path::new("/no/such/proc"), &WATCHED);
        let (found, missing) = usage(&snapshot, &snapshot, Duration::from_secs(1), &WATCHED);
        assert!(found.is_empty());
        assert_eq!(missing.len(), WATCHED.len());
    }
}
