//! Runs one benchmark client and measures it: its wall time, its CPU time
//! (utime+stime of `/proc/<pid>/stat`, read once it exited but before it is
//! reaped), its peak RSS (`VmHWM`, sampled while it runs) and the server's CPU
//! time over the run (`/proc/<server pid>/stat` before and after; with
//! several pids, comma-separated (a cluster's nodes), the sum of theirs),
//! and how long the servers' main threads were runnable but waiting for a
//! CPU over the run (`/proc/<pid>/schedstat`, summed; 0 where the kernel
//! does not say). Prints the client's output to stderr and one
//! tab-separated record to stdout: `client count messages rate wall_s cpu_s
//! peak_rss_bytes server_cpu_s server_cpu_wait_s`.
//!
//! Usage: `bench_measure CLIENT COUNT SERVER_PID[,PID...] -- PROGRAM ARGS...`

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use xgroup_bench::{parse_report, procfs, watch};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (head, cmd) = match args.iter().position(|a| a == "--") {
        Some(i) if i == 3 && args.len() > 4 => (&args[..3], &args[4..]),
        _ => {
            eprintln!("usage: bench_measure CLIENT COUNT SERVER_PID[,PID...] -- PROGRAM ARGS...");
            return ExitCode::from(2);
        }
    };
    let (client, count) = (&head[0], &head[1]);
    let Ok(server_pids) = head[2]
        .split(',')
        .map(str::parse::<u32>)
        .collect::<Result<Vec<u32>, _>>()
    else {
        eprintln!("bench_measure: bad server pid list {:?}", head[2]);
        return ExitCode::from(2);
    };
    // Every server's CPU time, summed; `None` if one is gone.
    let server_cpu = || {
        server_pids
            .iter()
            .map(|&pid| procfs::stat(pid).map(|s| s.cpu))
            .sum::<Option<Duration>>()
    };
    let Some(server_before) = server_cpu() else {
        eprintln!("bench_measure: no server process among {:?}", head[2]);
        return ExitCode::from(2);
    };
    let server_wait = || {
        server_pids
            .iter()
            .map(|&pid| procfs::cpu_wait(pid).unwrap_or_default())
            .sum::<Duration>()
    };
    let wait_before = server_wait();
    let started = Instant::now();
    let mut child = match Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench_measure: cannot run {}: {e}", cmd[0]);
            return ExitCode::from(2);
        }
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut last = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("  {line}");
            last = Some(line);
        }
        last
    });
    let (status, usage) = match watch(&mut child, started, Duration::from_millis(20)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench_measure: waiting for the client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server_after = server_cpu().unwrap_or(server_before);
    let wait_after = server_wait();
    let last = reader.join().ok().flatten().unwrap_or_default();
    let Some((messages, _secs, rate)) = parse_report(&last).filter(|_| status.success()) else {
        eprintln!("bench_measure: {client} failed ({status}); last line {last:?}");
        return ExitCode::FAILURE;
    };
    println!(
        "{client}\t{count}\t{messages}\t{rate:.0}\t{:.3}\t{:.3}\t{}\t{:.3}\t{:.3}",
        usage.wall.as_secs_f64(),
        usage.cpu.as_secs_f64(),
        usage.peak_rss,
        (server_after - server_before).as_secs_f64(),
        wait_after.saturating_sub(wait_before).as_secs_f64()
    );
    ExitCode::SUCCESS
}
