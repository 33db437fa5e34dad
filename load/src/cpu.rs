//! CPU time per process group over a step, read from `/proc` (Linux): what each part
//! of the system (the aggregator, PostgreSQL, RabbitMQ, Redis, the mock vendors and
//! this load generator) spent, so a step can say how many microseconds of CPU one
//! taken order cost in each.

use std::collections::HashMap;
use std::time::Duration;

/// The parts CPU time is counted for, in report order.
pub(crate) const GROUPS: [&str; 6] = [
    "aggregator",
    "postgres",
    "rabbitmq",
    "redis",
    "vendors",
    "load",
];

/// Which group a process of the machine's shared services belongs to, by its name.
fn service_group(comm: &str) -> Option<&'static str> {
    match comm {
        "postgres" => Some("postgres"),
        "beam.smp" | "erl_child_setup" | "epmd" | "inet_gethost" => Some("rabbitmq"),
        "redis-server" => Some("redis"),
        _ => None,
    }
}

/// CPU ticks of every counted process at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuSnapshot {
    /// (group, pid) -> ticks of user and system time (children reaped included, so a
    /// PostgreSQL backend that exited still counts through its parent).
    ticks: HashMap<(&'static str, u32), u64>,
}

/// The seconds of CPU each group used between two snapshots.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuUse {
    /// Seconds per group, in [`GROUPS`] order.
    pub(crate) seconds: Vec<(&'static str, f64)>,
}

impl CpuUse {
    /// Microseconds of CPU per unit of work (`count` of them) per group, and in all.
    pub(crate) fn micros_per(&self, count: u64) -> (Vec<(&'static str, f64)>, f64) {
        let per = |seconds: f64| {
            if count == 0 {
                0.0
            } else {
                seconds * 1e6 / count as f64
            }
        };
        let groups: Vec<_> = self.seconds.iter().map(|(g, s)| (*g, per(*s))).collect();
        let total = groups.iter().map(|(_, m)| m).sum();
        (groups, total)
    }

    /// Seconds of CPU in all.
    pub(crate) fn total_seconds(&self) -> f64 {
        self.seconds.iter().map(|(_, s)| s).sum()
    }
}

/// Clock ticks a second of the kernel's CPU accounting.
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// A process's name and its own plus its reaped children's CPU ticks.
fn read_stat(pid: u32) -> Option<(String, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The name and CPU ticks of one `/proc/PID/stat` line (the name may hold spaces and
/// parentheses: it runs to the last `)`).
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) .. cstime (17) are 11..=14.
    let ticks = fields
        .get(11..=14)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some((comm, ticks))
}

/// Snapshots the machine's service processes (by name) and `own` processes (group,
/// pid: the ones the harness started) and this process.
pub(crate) fn snapshot(own: &[(&'static str, u32)]) -> CpuSnapshot {
    let mut ticks = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some((comm, used)) = read_stat(pid)
                && let Some(group) = service_group(&comm)
            {
                ticks.insert((group, pid), used);
            }
        }
    }
    for (group, pid) in own.iter().copied().chain([("load", std::process::id())]) {
        if let Some((_, used)) = read_stat(pid) {
            ticks.insert((group, pid), used);
        }
    }
    CpuSnapshot { ticks }
}

/// What each group used from `before` to `after` (a process that started in between
/// counts whole; one that ended counts through its parent's reaped children, which
/// hold its whole life, so what it had used before is taken off again).
pub(crate) fn used(before: &CpuSnapshot, after: &CpuSnapshot) -> CpuUse {
    let per_tick = 1.0 / ticks_per_second();
    let mut by_group: HashMap<&'static str, i64> = HashMap::new();
    for (key, now) in &after.ticks {
        let then = before.ticks.get(key).copied().unwrap_or(0);
        *by_group.entry(key.0).or_default() +=
            i64::try_from(now.saturating_sub(then)).unwrap_or(i64::MAX);
    }
    for (key, then) in &before.ticks {
        if !after.ticks.contains_key(key) {
            *by_group.entry(key.0).or_default() -= i64::try_from(*then).unwrap_or(0);
        }
    }
    CpuUse {
        seconds: GROUPS
            .iter()
            .map(|group| {
                (
                    *group,
                    by_group.get(group).copied().unwrap_or(0).max(0) as f64 * per_tick,
                )
            })
            .collect(),
    }
}

/// How busy the machine's cores were: CPU seconds over `elapsed` wall seconds.
pub(crate) fn cores_busy(used: &CpuUse, elapsed: Duration) -> f64 {
    let wall = elapsed.as_secs_f64();
    if wall > 0.0 {
        used.total_seconds() / wall
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_burning_cpu_is_counted_as_the_load() {
        let before = snapshot(&[]);
        let started = std::time::Instant::now();
        let mut x: u64 = 1;
        while started.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let used = used(&before, &snapshot(&[]));
        let load = used
            .seconds
            .iter()
            .find(|(g, _)| *g == "load")
            .map(|(_, s)| *s)
            .expect("load group");
        assert!(load >= 0.1, "300 ms of spinning counted as {load} s");
        let (per, total) = used.micros_per(1_000);
        assert!(total >= per.iter().map(|(_, m)| *m).fold(0.0, f64::max));
    }

    #[test]
    fn a_process_that_ended_during_the_step_counts_only_what_it_used_in_it() {
        let ticks_per_second = ticks_per_second();
        // A backend (pid 20) had used 50 ticks when the step began and ended during it
        // after 10 more; its parent (pid 1) then holds all 60 among its reaped
        // children, beside 5 ticks of its own.
        let before = CpuSnapshot {
            ticks: HashMap::from([(("postgres", 1), 100), (("postgres", 20), 50)]),
        };
        let after = CpuSnapshot {
            ticks: HashMap::from([(("postgres", 1), 100 + 5 + 60)]),
        };
        let postgres = used(&before, &after).seconds[1];
        assert_eq!(postgres.0, "postgres");
        let counted = (postgres.1 * ticks_per_second).round();
        assert!((counted - 15.0).abs() < 0.5, "{counted} ticks, not 15");
    }

    #[test]
    fn a_stat_line_with_spaces_and_parentheses_in_the_name_parses() {
        let line = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    7 3 20 10 20 0 9 0 12345 1000000 200 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(("tokio (rt) 1".to_owned(), 7 + 3 + 20 + 10))
        );
        assert_eq!(parse_stat("4242 (cut"), None);
        let (comm, _) = read_stat(std::process::id()).expect("own stat");
        assert!(!comm.is_empty());
    }
}
