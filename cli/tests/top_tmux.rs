//! `xgroup top` run for real in a terminal (tmux): the screen shows the
//! stream, `q` quits with status 0, and the terminal is restored (the
//! alternate screen left, raw mode off). Skipped, saying why, only when
//! tmux is not installed (`.ci/run` installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::cmd;
use xgroup_testkit::RedisServer;

/// A tmux server of this test's own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", "top"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {timeout:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn wait_file(path: &Path, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return Some(text);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn top_runs_in_a_terminal_and_q_quits() {
    if Command::new("tmux")
        .arg("-V")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        println!("skipped: tmux is not installed (apt-get install tmux)");
        return;
    }
    run_and_quit_with("q");
}

#[test]
fn ctrl_c_quits_and_restores_the_terminal() {
    if Command::new("tmux")
        .arg("-V")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        println!("skipped: tmux is not installed (apt-get install tmux)");
        return;
    }
    run_and_quit_with("C-c");
}

fn run_and_quit_with(key: &str) {
    let server = RedisServer::start();
    for i in 0..30 {
        cmd(&server, &["XADD", "orders", "*", "n", &i.to_string()]);
    }
    cmd(&server, &["XGROUP", "CREATE", "orders", "processors", "0"]);
    cmd(
        &server,
        &[
            "XREADGROUP",
            "GROUP",
            "processors",
            "worker-1",
            "COUNT",
            "4",
            "STREAMS",
            "orders",
            ">",
        ],
    );

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir: PathBuf =
        std::env::temp_dir().join(format!("xgroup-top-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let status = dir.join("status");
    let stty = dir.join("stty");
    let script = format!(
        "printf 'before top\\n'; '{bin}' --url '{url}' top orders; echo \"exit=$?\" > '{status}'; \
         stty -a > '{stty}.tmp'; mv '{stty}.tmp' '{stty}'; sleep 60",
        bin = env!("CARGO_BIN_EXE_xgroup"),
        url = server.url(),
        status = status.display(),
        stty = stty.display(),
    );
    let tmux = Tmux {
        socket: format!("xgroup-test-{}-{nanos}", std::process::id()),
    };
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "100",
        "-y",
        "30",
        &script,
    ]);
    assert!(started.status.success(), "tmux new-session: {started:?}");

    let screen = tmux.wait_for("top screen", Duration::from_secs(20), |s| {
        s.contains("xgroup top") && s.contains("worker-1")
    });
    assert!(screen.contains(" length 30   in "), "{screen}");
    assert!(screen.contains("> processors"), "{screen}");
    assert!(screen.contains(" lag processors: 26 "), "{screen}");
    assert!(screen.contains(" pending processors: 4 "), "{screen}");
    assert!(screen.contains("q quit"), "{screen}");
    let row = screen
        .lines()
        .find(|l| l.contains("worker-1"))
        .expect("worker-1 row");
    assert!(row.contains("dead"), "{row}");
    // A second refresh comes and goes without trouble.
    std::thread::sleep(Duration::from_millis(1200));

    let sent = tmux.run(&["send-keys", "-t", "top", key]);
    assert!(sent.status.success(), "{sent:?}");
    let exit = wait_file(&status, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("top did not exit after {key}; screen:\n{}", tmux.screen()));
    assert_eq!(exit, "exit=0\n");
    // Restored: back on the normal screen (what was printed before is
    // there, the view is gone) and out of raw mode.
    let after = tmux.wait_for("restored screen", Duration::from_secs(5), |s| {
        s.contains("before top")
    });
    assert!(
        !after.contains("xgroup top"),
        "the view is still shown:\n{after}"
    );
    let modes = wait_file(&stty, Duration::from_secs(5)).expect("stty -a");
    let words: Vec<&str> = modes.split_whitespace().collect();
    assert!(
        words.contains(&"icanon") && words.contains(&"echo"),
        "raw mode left on: {modes}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
