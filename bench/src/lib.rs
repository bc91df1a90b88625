//! Support for the side-by-side benchmarks (`bench/run.sh`) and the
//! resource-bound checks (`tests/resources.rs`): reading a process's CPU time
//! and peak RSS from `/proc`, the rate line every client prints, and latency
//! percentiles. Nothing in the library depends on this crate.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A process's counters read from `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub mod procfs {
    use std::fs;
    use std::time::Duration;

    /// Clock ticks per second of `/proc/<pid>/stat`'s times.
    fn ticks_per_sec() -> u64 {
        // SAFETY: sysconf has no preconditions.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if t > 0 {
            t as u64
        } else {
            100
        }
    }

    /// What `/proc/<pid>/stat` says: the state letter and utime+stime.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Stat {
        /// `R`, `S`, `Z` (exited, not yet reaped), ...
        pub state: char,
        /// User plus system CPU time.
        pub cpu: Duration,
    }

    /// Reads `/proc/<pid>/stat`; `None` once the process is gone.
    pub fn stat(pid: u32) -> Option<Stat> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces: split after it.
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
        let state = fields.first()?.chars().next()?;
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let ticks = utime + stime;
        let hz = ticks_per_sec();
        Some(Stat {
            state,
            cpu: Duration::from_secs(ticks / hz)
                + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz),
        })
    }

    /// How long the process's main thread has been runnable but waiting
    /// for a CPU (`/proc/<pid>/schedstat`'s second field); `None` where the
    /// kernel does not say. For a server whose main thread does all the
    /// work, time it had work and no core to do it on.
    pub fn cpu_wait(pid: u32) -> Option<Duration> {
        let text = fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
        let ns: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
        Some(Duration::from_nanos(ns))
    }

    /// The peak resident set size (`VmHWM`) in bytes; `None` once the
    /// process exited (a zombie has no memory left to report).
    pub fn peak_rss(pid: u32) -> Option<u64> {
        let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
}

/// What a measured child process used, see [`watch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// From spawn to exit.
    pub wall: Duration,
    /// User plus system CPU time, read while the child was a zombie.
    pub cpu: Duration,
    /// Largest `VmHWM` seen while it ran, in bytes.
    pub peak_rss: u64,
}

/// Watches a running child until it exits: samples its `VmHWM` every `tick`
/// and, once it is a zombie (exited but not reaped, so `/proc/<pid>/stat` still
/// holds its final times), reads its CPU time, then reaps it.
pub fn watch(
    child: &mut std::process::Child,
    started: Instant,
    tick: Duration,
) -> std::io::Result<(std::process::ExitStatus, Usage)> {
    let pid = child.id();
    let mut peak_rss = 0;
    let mut cpu = Duration::ZERO;
    loop {
        if let Some(rss) = procfs::peak_rss(pid) {
            peak_rss = peak_rss.max(rss);
        }
        match procfs::stat(pid) {
            Some(s) if s.state == 'Z' || s.state == 'X' => {
                cpu = s.cpu;
                break;
            }
            Some(s) => cpu = s.cpu,
            None => break,
        }
        std::thread::sleep(tick);
    }
    let status = child.wait()?;
    Ok((
        status,
        Usage {
            wall: started.elapsed(),
            cpu,
            peak_rss,
        },
    ))
}

/// Prints the last line every throughput client prints:
/// `consumed=M secs=S rate=R msgs/s` (as `xgroup_testkit::examples::throughput`).
pub fn report(start: Instant, acked: u64) {
    let secs = start.elapsed().as_secs_f64();
    println!(
        "consumed={acked} secs={secs:.3} rate={:.0} msgs/s",
        acked as f64 / secs
    );
}

/// Parses a `consumed=M secs=S rate=R msgs/s` line into (M, S, R).
pub fn parse_report(line: &str) -> Option<(u64, f64, f64)> {
    let mut it = line.split_whitespace();
    let m = it.next()?.strip_prefix("consumed=")?.parse().ok()?;
    let s = it.next()?.strip_prefix("secs=")?.parse().ok()?;
    let r = it.next()?.strip_prefix("rate=")?.parse().ok()?;
    (it.next()? == "msgs/s").then_some((m, s, r))
}

/// The field holding a latency message's send time.
pub const SENT_FIELD: &str = "sent_ns";

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`, shared by processes).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Produce→handler latencies, in nanoseconds.
#[derive(Debug, Default)]
pub struct Latencies(Vec<u64>);

impl Latencies {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Latencies(Vec::with_capacity(n))
    }

    /// Records a message sent at `sent_ns` and seen now (at `now_ns`).
    pub fn record(&mut self, sent_ns: u64, now_ns: u64) {
        self.0.push(now_ns.saturating_sub(sent_ns));
    }

    /// Samples so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `latency client=NAME n=N p50=X p99=Y max=Z us` (microseconds).
    pub fn summary(&mut self, client: &str) -> String {
        self.0.sort_unstable();
        let at = |q: f64| -> f64 {
            if self.0.is_empty() {
                return f64::NAN;
            }
            let i = ((self.0.len() as f64 * q).ceil() as usize).clamp(1, self.0.len()) - 1;
            self.0[i] as f64 / 1000.0
        };
        format!(
            "latency client={client} n={} p50={:.0} p99={:.0} max={:.0} us",
            self.0.len(),
            at(0.50),
            at(0.99),
            at(1.0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_round_trip() {
        assert_eq!(
            parse_report("consumed=1000 secs=0.500 rate=2000 msgs/s"),
            Some((1000, 0.5, 2000.0))
        );
        assert_eq!(parse_report("filled 1000 messages"), None);
    }

    #[test]
    fn percentiles() {
        let mut l = Latencies::with_capacity(100);
        for i in 1..=100 {
            l.record(0, i * 1000);
        }
        assert_eq!(
            l.summary("x"),
            "latency client=x n=100 p50=50 p99=99 max=100 us"
        );
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        let s = procfs::stat(me).expect("stat");
        assert!("RS".contains(s.state), "{s:?}");
        assert!(procfs::peak_rss(me).expect("VmHWM") > 0);
    }
}
