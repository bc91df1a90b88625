//! Prints the throughput table from `bench_measure`'s records (stdin or the
//! file given): per client and COUNT, the median over its runs of msgs/s,
//! server busy % (server CPU-s / client wall-s), client CPU-s per million
//! messages and peak RSS, and the ratios of its median msgs/s to redis-rs
//! idiomatic's and to redis-py pipelined's at the same COUNT (`-` where that
//! client did not run). Clients keep their first-seen order; COUNTs go from
//! the largest down, `default` (the library's defaults) last.
//!
//! `--baseline NAME=HEADER` (repeatable, before the file) gives the ratio
//! columns instead: to client NAME's median, headed HEADER
//! (`bench/run.sh scale-cluster` compares with the single server's runs).
//!
//! A client named `NAME over TLS` (`bench/run.sh tls`) is compared with
//! the baselines over TLS, and a second table gives what TLS costs each
//! client that ran both ways: its msgs/s and client CPU-s per million
//! messages in plaintext and over TLS, and the difference.

use std::io::Read;

/// The clients the ratio columns are relative to, with their headers.
const BASELINES: [(&str, &str); 2] = [
    ("redis-rs idiomatic", "vs rr-idi"),
    ("redis-py pipelined", "vs redis-py"),
];

#[derive(Debug)]
struct Run {
    client: String,
    count: String,
    messages: u64,
    rate: f64,
    wall: f64,
    cpu: f64,
    rss: f64,
    server_cpu: f64,
}

/// A `bench_measure` record (its ninth field, the servers' CPU wait, is
/// not in the table; records without it are read too).
fn parse(line: &str) -> Option<Run> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 8 && f.len() != 9 {
        return None;
    }
    Some(Run {
        client: f[0].to_string(),
        count: f[1].to_string(),
        messages: f[2].parse().ok()?,
        rate: f[3].parse().ok()?,
        wall: f[4].parse().ok()?,
        cpu: f[5].parse().ok()?,
        rss: f[6].parse().ok()?,
        server_cpu: f[7].parse().ok()?,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Where a COUNT's rows go: numbers from the largest down, then anything
/// else (`default`) in name order.
fn count_order(count: &str) -> (bool, std::cmp::Reverse<u64>, String) {
    match count.parse::<u64>() {
        Ok(n) => (false, std::cmp::Reverse(n), String::new()),
        Err(_) => (true, std::cmp::Reverse(0), count.to_string()),
    }
}

/// The suffix of a client's name for its runs over TLS.
const OVER_TLS: &str = " over TLS";

/// The baseline `base` over the same transport as `client`.
fn baseline_for(client: &str, base: &str) -> String {
    if client.ends_with(OVER_TLS) {
        format!("{base}{OVER_TLS}")
    } else {
        base.to_string()
    }
}

/// A ratio cell: `1.23x`, or `-` without a baseline run.
fn ratio(rate: f64, base: f64) -> String {
    if base.is_finite() && base > 0.0 && rate.is_finite() {
        format!("{:.2}x", rate / base)
    } else {
        "-".to_string()
    }
}

/// What the command line asks for.
#[derive(Debug)]
struct Options {
    /// The ratio columns: client and header (`--baseline NAME=HEADER`, else
    /// [`BASELINES`]).
    baselines: Vec<(String, String)>,
    /// The records' file; `None` for stdin.
    path: Option<String>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut baselines = Vec::new();
    let mut path = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--baseline" {
            let value = args.next().ok_or("--baseline needs NAME=HEADER")?;
            let (name, header) = value
                .split_once('=')
                .ok_or_else(|| format!("--baseline {value:?}: not NAME=HEADER"))?;
            baselines.push((name.to_string(), header.to_string()));
        } else if path.is_none() {
            path = Some(arg);
        } else {
            return Err(format!("unexpected argument {arg:?}"));
        }
    }
    if baselines.is_empty() {
        baselines = BASELINES
            .iter()
            .map(|(n, h)| (n.to_string(), h.to_string()))
            .collect();
    }
    Ok(Options { baselines, path })
}

fn main() -> std::io::Result<()> {
    let Options { baselines, path } = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("bench_table: {e}\nusage: bench_table [--baseline NAME=HEADER]... [FILE]");
            std::process::exit(2);
        }
    };
    let mut text = String::new();
    match path {
        Some(path) => text = std::fs::read_to_string(path)?,
        None => {
            std::io::stdin().read_to_string(&mut text)?;
        }
    }
    let runs: Vec<Run> = text.lines().filter_map(parse).collect();
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in &runs {
        let k = (r.count.clone(), r.client.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.sort_by_key(|(count, _)| count_order(count));
    let med = |count: &str, client: &str, f: &dyn Fn(&Run) -> f64| {
        median(
            runs.iter()
                .filter(|r| r.count == count && r.client == client)
                .map(f)
                .collect(),
        )
    };
    // The client column fits the longest name ("redis-rs idiomatic over TLS").
    let w = keys.iter().map(|(_, c)| c.len()).max().unwrap_or(0).max(20);
    let ratio_headers: String = baselines.iter().map(|(_, h)| format!(" {h}")).collect();
    println!(
        "{:<w$} {:>7} {:>9} {:>10} {:>8} {:>13} {:>8}{ratio_headers}  runs (msgs/s)",
        "client", "COUNT", "messages", "msgs/s", "server%", "cpu-s/M msgs", "RSS MB",
    );
    for (count, client) in &keys {
        let mine: Vec<&Run> = runs
            .iter()
            .filter(|r| &r.count == count && &r.client == client)
            .collect();
        let rate = med(count, client, &|r| r.rate);
        let ratios: String = baselines
            .iter()
            .map(|(b, header)| {
                let base = baseline_for(client, b);
                let cell = ratio(rate, med(count, &base, &|r| r.rate));
                format!(" {cell:>width$}", width = header.len())
            })
            .collect();
        let busy = med(count, client, &|r| 100.0 * r.server_cpu / r.wall);
        let cpu_per_m = med(count, client, &|r| r.cpu * 1e6 / r.messages as f64);
        let rss = med(count, client, &|r| r.rss / (1024.0 * 1024.0));
        let each: Vec<String> = mine.iter().map(|r| format!("{:.0}", r.rate)).collect();
        println!(
            "{:<w$} {:>7} {:>9} {:>10.0} {:>7.0}% {:>13.2} {:>8.1}{ratios}  {}",
            client,
            count,
            mine[0].messages,
            rate,
            busy,
            cpu_per_m,
            rss,
            each.join(" ")
        );
    }
    let over_tls: Vec<&(String, String)> = keys
        .iter()
        .filter(|(count, client)| {
            let plain = client.strip_suffix(OVER_TLS);
            plain.is_some_and(|p| keys.contains(&(count.clone(), p.to_string())))
        })
        .collect();
    if !over_tls.is_empty() {
        println!();
        println!("what TLS costs (medians; cpu-s/M = client CPU-s per million messages):");
        println!(
            "{:<w$} {:>7} {:>11} {:>11} {:>7} {:>11} {:>11} {:>13}",
            "client",
            "COUNT",
            "msgs/s",
            "TLS msgs/s",
            "change",
            "cpu-s/M",
            "TLS cpu-s/M",
            "TLS cost/M"
        );
        for (count, client) in over_tls {
            let plain = client.strip_suffix(OVER_TLS).unwrap_or(client);
            let rate = |c: &str| med(count, c, &|r| r.rate);
            let cpu = |c: &str| med(count, c, &|r| r.cpu * 1e6 / r.messages as f64);
            let (rate_plain, rate_tls) = (rate(plain), rate(client));
            let (cpu_plain, cpu_tls) = (cpu(plain), cpu(client));
            println!(
                "{:<w$} {:>7} {:>11.0} {:>11.0} {:>+6.0}% {:>11.2} {:>11.2} {:>+12.2}s",
                plain,
                count,
                rate_plain,
                rate_tls,
                100.0 * (rate_tls / rate_plain - 1.0),
                cpu_plain,
                cpu_tls,
                cpu_tls - cpu_plain
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_cells() {
        assert_eq!(ratio(300.0, 200.0), "1.50x");
        assert_eq!(ratio(300.0, f64::NAN), "-");
        assert_eq!(ratio(300.0, 0.0), "-");
    }

    #[test]
    fn counts_go_from_the_largest_down_and_default_last() {
        let mut counts = vec!["10", "default", "1000", "100"];
        counts.sort_by_key(|c| count_order(c));
        assert_eq!(counts, ["1000", "100", "10", "default"]);
    }

    #[test]
    fn tls_runs_are_compared_with_the_baselines_over_tls() {
        assert_eq!(
            baseline_for("xgroup-tokio over TLS", "redis-rs idiomatic"),
            "redis-rs idiomatic over TLS"
        );
        assert_eq!(
            baseline_for("xgroup-tokio", "redis-rs idiomatic"),
            "redis-rs idiomatic"
        );
    }

    #[test]
    fn baselines_default_or_given() {
        let args = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
        let default = args(&["runs.tsv"]).expect("valid");
        assert_eq!(default.baselines.len(), 2);
        assert_eq!(default.baselines[0].0, "redis-rs idiomatic");
        assert_eq!(default.path.as_deref(), Some("runs.tsv"));
        let given = args(&["--baseline", "a b=vs a", "--baseline", "c=vs c"]).expect("ok");
        assert_eq!(
            given.baselines,
            [
                ("a b".to_string(), "vs a".to_string()),
                ("c".to_string(), "vs c".to_string())
            ]
        );
        assert_eq!(given.path, None);
        assert!(args(&["--baseline"]).is_err());
        assert!(args(&["--baseline", "no-header"]).is_err());
        assert!(args(&["a", "b"]).is_err());
    }

    #[test]
    fn medians() {
        assert!(median(vec![]).is_nan());
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
