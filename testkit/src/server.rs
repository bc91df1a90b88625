//! Throwaway Redis-compatible servers (`redis-server` or `valkey-server`)
//! on a free loopback port, in a fresh temporary directory.

use std::cell::Cell;
use std::env;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::resp::{RespConnection, RespValue};
use crate::tls::{TestCerts, TlsServer};

/// Environment variable naming the server binary to use.
pub const SERVER_ENV: &str = "XGROUP_REDIS_SERVER";

/// How long to wait for a server to answer `PING` (or to exit on `SHUTDOWN`).
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many fresh ports `start` tries when it loses a race for one.
const START_ATTEMPTS: usize = 5;
/// How long `restart` keeps trying to get its old port back.
const RESTART_PORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Log lines shown in panic messages.
const LOG_TAIL_LINES: usize = 30;
/// The machine's own Redis: never used.
const DEFAULT_REDIS_PORT: u16 = 6379;

const LOG_FILE: &str = "server.log";
const STDERR_FILE: &str = "server.stderr";
/// A cluster node's own view of the cluster, kept across restarts.
const CLUSTER_CONFIG_FILE: &str = "nodes.conf";

fn missing_binary_message(detail: &str) -> String {
    format!(
        "no redis-server found: install one (`apt-get install redis-server`) or set \
         {SERVER_ENV} to a redis-server/valkey-server binary ({detail})"
    )
}

thread_local! {
    /// Servers started on this thread are the model (see [`serve_the_model`]).
    static SERVE_THE_MODEL: Cell<bool> = const { Cell::new(false) };
}

/// From now on, every [`RedisServer`] this thread starts (a test's own
/// thread: other tests are not affected) is xgroup's in-memory model served
/// over TCP (`xgroup-sim`) instead of a `redis-server` process: for running
/// the scenarios that need no server process (no restart, AOF, extra
/// arguments) against the model.
pub fn serve_the_model() {
    SERVE_THE_MODEL.set(true);
}

/// Whether a server binary is there to start (`$XGROUP_REDIS_SERVER`, or
/// `redis-server`/`valkey-server` on `PATH`).
pub fn redis_server_on_path() -> bool {
    try_find_binary().is_ok()
}

/// Finds the server binary: `$XGROUP_REDIS_SERVER`, else `redis-server` on
/// `PATH`, else `valkey-server` on `PATH`. Panics with a clear message.
fn find_binary() -> PathBuf {
    try_find_binary().unwrap_or_else(|message| panic!("{message}"))
}

/// The server binary, or why there is none.
fn try_find_binary() -> Result<PathBuf, String> {
    if let Some(path) = env::var_os(SERVER_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(missing_binary_message(&format!(
                "{SERVER_ENV}={} does not exist",
                path.display()
            )));
        }
        return Ok(path);
    }
    let dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    for name in ["redis-server", "valkey-server"] {
        for dir in &dirs {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(missing_binary_message(
        "neither redis-server nor valkey-server is on PATH",
    ))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Where a cluster node's bus is before Redis 7.0 (no `--cluster-port`):
/// its port + 10000.
const LEGACY_BUS_OFFSET: u16 = 10000;

/// Whether `binary` takes `--cluster-port` (Redis 7.0 and later, Valkey):
/// its `--version` says `v=<major>.`.
fn has_cluster_port_option(binary: &Path) -> bool {
    let Ok(out) = Command::new(binary).arg("--version").output() else {
        return true;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let major = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    major.map_or(true, |m| m >= 7)
}

/// A free loopback port whose port + 10000 is free too (a pre-7.0
/// cluster node's bus).
fn free_port_with_bus() -> u16 {
    loop {
        let port = free_port();
        let Some(bus) = port.checked_add(LEGACY_BUS_OFFSET) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, bus)).is_ok() {
            return port;
        }
    }
}

/// A free loopback port (bind port 0, read it, drop the listener). Never 6379.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to pick a free port: {e}"));
        let port = listener
            .local_addr()
            .expect("local_addr of a bound listener")
            .port();
        if port != DEFAULT_REDIS_PORT {
            return port;
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The last `n` lines of a file, or a note that it could not be read.
fn file_tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Options of a [`RedisServer`]; see [`RedisServer::builder`].
#[derive(Debug, Clone, Default)]
pub struct RedisServerBuilder {
    aof: bool,
    appendfsync_always: bool,
    password: Option<String>,
    extra_args: Vec<OsString>,
    binary: Option<PathBuf>,
    tls: Option<TlsServer>,
    /// A sentinel monitoring this master (name, port, quorum) instead of a
    /// data server.
    sentinel_of: Option<(String, u16, u32)>,
    /// A sentinel's password for the master it monitors (`auth-pass`).
    sentinel_auth_pass: Option<String>,
    /// Spawn the server in a process group of its own (Unix).
    own_process_group: bool,
    /// A Redis Cluster node (`--cluster-enabled yes`).
    cluster: bool,
    /// Killed by a watchdog when this process exits without dropping it.
    kill_on_exit: bool,
}

impl RedisServerBuilder {
    /// A sentinel (`redis-server <conf> --sentinel`) monitoring the master
    /// on 127.0.0.1:`master_port` as `name`, with this quorum, taking a
    /// master for down after 1 s without an answer.
    pub fn sentinel_of(mut self, name: &str, master_port: u16, quorum: u32) -> Self {
        self.sentinel_of = Some((name.to_owned(), master_port, quorum));
        self
    }

    /// A sentinel logs in to the master (and its replicas) with this
    /// password; its own clients need [`password`](Self::password).
    pub fn sentinel_auth_pass(mut self, password: &str) -> Self {
        self.sentinel_auth_pass = Some(password.to_owned());
        self
    }

    /// Turns the append-only file on (`--appendonly yes`) or off (the
    /// default, `--appendonly no`). With it off, nothing survives a restart.
    pub fn aof(mut self, on: bool) -> Self {
        self.aof = on;
        self
    }

    /// With AOF on, fsync on every write (`--appendfsync always`) instead of
    /// the server's default (every second). Off by default.
    pub fn appendfsync_always(mut self, on: bool) -> Self {
        self.appendfsync_always = on;
        self
    }

    /// Requires this password (`--requirepass`); `None` (the default) for none.
    pub fn password(mut self, password: Option<&str>) -> Self {
        self.password = password.map(str::to_owned);
        self
    }

    /// Serves TLS too, on a second free port ([`RedisServer::tls_url`]),
    /// with certificates made for it ([`RedisServer::certs`]); the plain
    /// port stays for set-up and checks.
    pub fn tls(mut self, tls: TlsServer) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Appends raw command-line arguments (e.g. `["--maxmemory", "10mb"]`),
    /// after the ones the builder sets (so they override them).
    pub fn extra_args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.extra_args
            .extend(args.iter().map(|a| OsString::from(a.as_ref())));
        self
    }

    /// Runs the server in a process group of its own (Unix; no effect
    /// elsewhere), so a Ctrl-C at the terminal reaches only the program
    /// that started it: for examples that stop gracefully on Ctrl-C and
    /// need the server until they are done (they remove it after). Off by
    /// default, so a test run interrupted with Ctrl-C takes its servers
    /// along.
    pub fn own_process_group(mut self, on: bool) -> Self {
        self.own_process_group = on;
        self
    }

    /// A Redis Cluster node (on) or a standalone server (off, the default):
    /// `--cluster-enabled yes`, its `nodes.conf` in the data directory (so
    /// [`RedisServer::restart`] rejoins the cluster as the same node), and
    /// the cluster bus on a second free port ([`RedisServer::cluster_port`],
    /// `--cluster-port`) rather than the port + 10000. Joining it to a
    /// cluster is the caller's business (see [`ClusterSet`](crate::ClusterSet));
    /// cluster tuning (`--cluster-node-timeout` ...) goes in
    /// [`extra_args`](Self::extra_args).
    pub fn cluster_enabled(mut self, on: bool) -> Self {
        self.cluster = on;
        self
    }

    /// Kills the server (and removes its directory) when this process exits
    /// even though the [`RedisServer`] was never dropped: for servers kept in
    /// a `static` (which Rust never drops), or a test binary killed by a
    /// timeout. A small `sh` watchdog per server process waits for this
    /// process's end (Unix; no effect elsewhere). Off by default.
    pub fn kill_on_exit(mut self, on: bool) -> Self {
        self.kill_on_exit = on;
        self
    }

    /// Uses this server binary instead of looking it up (`$XGROUP_REDIS_SERVER`,
    /// then `redis-server` and `valkey-server` on `PATH`). Panics at
    /// [`start`](Self::start) if it does not exist.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Starts the server and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// If no server binary can be found, or the server does not come up
    /// within 10 s (the message then holds the tail of its log).
    pub fn start(self) -> RedisServer {
        if SERVE_THE_MODEL.get() {
            return self.start_the_model();
        }
        self.try_start().unwrap_or_else(|msg| panic!("{msg}"))
    }

    /// [`start`](Self::start), with a server that exits during start-up (bad
    /// arguments, no TLS support) as an error holding its log's tail.
    ///
    /// # Panics
    ///
    /// If no server binary can be found, or no free port can be had.
    pub fn try_start(self) -> Result<RedisServer, String> {
        let binary = match self.binary.clone() {
            Some(path) if path.is_file() => path,
            Some(path) => panic!(
                "{}",
                missing_binary_message(&format!("{} does not exist", path.display()))
            ),
            None => find_binary(),
        };
        let dir = tempfile::Builder::new()
            .prefix("xgroup-redis-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let certs = self
            .tls
            .map(|tls| TestCerts::generate(dir.path(), tls.cert));
        let mut server = RedisServer {
            binary,
            options: self,
            dir,
            certs,
            port: 0,
            tls_port: 0,
            cluster_port: 0,
            child: Mutex::new(None),
            watchdog: Mutex::new(None),
            version: String::new(),
            model: Mutex::new(None),
        };
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            server.port = free_port();
            if server.certs.is_some() {
                server.tls_port = loop {
                    let port = free_port();
                    if port != server.port {
                        break port;
                    }
                };
            }
            if server.options.cluster && has_cluster_port_option(&server.binary) {
                server.cluster_port = loop {
                    let port = free_port();
                    if port != server.port && port != server.tls_port {
                        break port;
                    }
                };
            } else if server.options.cluster {
                // Before 7.0 the bus is always on the port + 10000.
                server.port = free_port_with_bus();
                server.cluster_port = server.port + LEGACY_BUS_OFFSET;
            }
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(StartError::PortInUse(log)) => last_error = log,
                Err(StartError::Fatal(msg)) => return Err(msg),
            }
        }
        panic!(
            "redis server could not bind a free port in {START_ATTEMPTS} attempts; last log:\n{last_error}"
        )
    }
}

impl RedisServerBuilder {
    /// xgroup's in-memory model on a free port instead of a process.
    ///
    /// # Panics
    ///
    /// If an option needs a server process (AOF, extra arguments, a
    /// binary), or the model cannot listen.
    pub fn start_the_model(self) -> RedisServer {
        assert!(
            !self.aof
                && !self.appendfsync_always
                && self.extra_args.is_empty()
                && self.binary.is_none()
                && self.tls.is_none()
                && !self.cluster,
            "this test needs a redis-server process (AOF, TLS, cluster, arguments or a binary): the model server cannot serve it"
        );
        let mut sim = xgroup_sim::SimServer::builder();
        if let Some(password) = &self.password {
            sim = sim.password(None, password);
        }
        let model = sim
            .start()
            .unwrap_or_else(|e| panic!("the model server cannot listen: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("xgroup-model-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        RedisServer {
            binary: PathBuf::new(),
            options: self,
            dir,
            certs: None,
            port: model.port(),
            tls_port: 0,
            cluster_port: 0,
            child: Mutex::new(None),
            watchdog: Mutex::new(None),
            version: "xgroup-sim (the in-memory model, Redis 7.0 replies)".into(),
            model: Mutex::new(Some(model)),
        }
    }
}

enum StartError {
    /// The server exited because its port was taken: try again.
    PortInUse(String),
    /// Anything else: give up with this message.
    Fatal(String),
}

/// A throwaway Redis-compatible server on `127.0.0.1:<free port>`, running in
/// a fresh temporary directory; killed and cleaned up on drop.
///
/// ```no_run
/// use xgroup_testkit::RedisServer;
///
/// let server = RedisServer::builder().aof(true).appendfsync_always(true).start();
/// server.cmd(&["XADD", "s", "*", "k", "v"]);
/// assert_eq!(server.cmd(&["XLEN", "s"]).as_int(), Some(1));
/// ```
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    options: RedisServerBuilder,
    dir: TempDir,
    /// With TLS: the certificates, in `dir`.
    certs: Option<TestCerts>,
    port: u16,
    /// With TLS: its port (0 without).
    tls_port: u16,
    /// With `cluster_enabled`: the cluster bus port.
    cluster_port: u16,
    child: Mutex<Option<Child>>,
    /// With `kill_on_exit`: the watchdog of the running process.
    watchdog: Mutex<Option<Child>>,
    version: String,
    /// The model served over TCP, instead of a process (see
    /// [`serve_the_model`]).
    model: Mutex<Option<xgroup_sim::SimServer>>,
}

impl RedisServer {
    /// Starts a server with default options (no AOF, no password).
    /// See [`RedisServerBuilder::start`] for panics.
    pub fn start() -> RedisServer {
        Self::builder().start()
    }

    /// Options for a server: AOF, password, extra arguments, binary.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// The TCP port (stays the same across [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `redis://127.0.0.1:PORT`, or `redis://:PASSWORD@127.0.0.1:PORT` (the
    /// password percent-encoded) when a password is set.
    pub fn url(&self) -> String {
        self.url_for("redis", self.port)
    }

    fn url_for(&self, scheme: &str, port: u16) -> String {
        match &self.options.password {
            Some(pw) => format!("{scheme}://:{}@127.0.0.1:{port}", percent_encode(pw)),
            None => format!("{scheme}://127.0.0.1:{port}"),
        }
    }

    /// With TLS ([`RedisServerBuilder::tls`]): `rediss://127.0.0.1:TLS_PORT`,
    /// with the password like [`url`](Self::url).
    ///
    /// # Panics
    ///
    /// Without TLS.
    pub fn tls_url(&self) -> String {
        assert!(self.certs.is_some(), "this test server has no TLS");
        self.url_for("rediss", self.tls_port)
    }

    /// With TLS: the TLS port.
    pub fn tls_port(&self) -> Option<u16> {
        self.certs.as_ref().map(|_| self.tls_port)
    }

    /// With TLS: the certificates and keys made for this server.
    ///
    /// # Panics
    ///
    /// Without TLS.
    pub fn certs(&self) -> &TestCerts {
        self.certs.as_ref().expect("this test server has no TLS")
    }

    /// A cluster node's ([`RedisServerBuilder::cluster_enabled`]) cluster
    /// bus port (stays the same across [`restart`](Self::restart)).
    pub fn cluster_port(&self) -> Option<u16> {
        self.options.cluster.then_some(self.cluster_port)
    }

    /// The password, if one is required.
    pub fn password(&self) -> Option<&str> {
        self.options.password.as_deref()
    }

    /// The server's working directory (`--dir`): AOF files and the log live here.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server binary in use.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Name and version, e.g. `"redis 7.0.15"` or `"valkey 8.1.1"` (from
    /// `INFO server` when the server last became ready).
    pub fn version(&self) -> String {
        self.version.clone()
    }

    /// The last lines of the server's log file (and of its stderr).
    pub fn log_tail(&self) -> String {
        if self.is_model() {
            return String::new();
        }
        let mut out = file_tail(&self.dir.path().join(LOG_FILE), LOG_TAIL_LINES);
        let stderr = file_tail(&self.dir.path().join(STDERR_FILE), LOG_TAIL_LINES);
        if !stderr.trim().is_empty() {
            out.push_str("\n--- stderr ---\n");
            out.push_str(&stderr);
        }
        out
    }

    /// Whether the server process (or the model) is still running.
    pub fn is_running(&self) -> bool {
        if self.is_model() {
            return self.model().is_some();
        }
        match self.child().as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Opens a new [`RespConnection`] to the server (authenticated when a
    /// password is set).
    pub fn connect(&self) -> io::Result<RespConnection> {
        RespConnection::connect_with_password(self.addr(), self.password())
    }

    /// Sends one command over a fresh connection (after `AUTH` when a password
    /// is set) and returns its reply; error replies come back as
    /// [`RespValue::Error`]. Reads time out after 10 s.
    ///
    /// # Panics
    ///
    /// On any I/O error (server down, timeout): see [`try_cmd`](Self::try_cmd).
    pub fn cmd<A: AsRef<[u8]>>(&self, args: &[A]) -> RespValue {
        self.try_cmd(args).unwrap_or_else(|e| {
            let name = args
                .first()
                .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
                .unwrap_or_default();
            panic!("{name} to redis server on port {}: {e}", self.port)
        })
    }

    /// Like [`cmd`](Self::cmd), but I/O errors are returned.
    pub fn try_cmd<A: AsRef<[u8]>>(&self, args: &[A]) -> io::Result<RespValue> {
        self.connect()?.cmd(args)
    }

    /// Graceful stop: `SHUTDOWN` (which flushes and fsyncs the AOF), then
    /// waits up to 10 s for the process to exit, and kills it if it has not.
    /// Does nothing if it is not running.
    pub fn stop(&mut self) {
        if self.is_model() {
            return self.kill();
        }
        if !self.is_running() {
            self.reap();
            return;
        }
        // On success the server closes the connection without a reply.
        if let Ok(RespValue::Error(e)) = self.try_cmd(&["SHUTDOWN"]) {
            eprintln!("xgroup-testkit: SHUTDOWN refused ({e}); killing the server");
            self.kill();
            return;
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if !self.is_running() {
                self.reap();
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        eprintln!("xgroup-testkit: server did not exit within 10 s of SHUTDOWN; killing it");
        self.kill();
    }

    /// Kills the server process (SIGKILL) and waits for it: a crash, as far
    /// as the data is concerned. Does nothing if it is not running.
    pub fn kill(&mut self) {
        if self.is_model() {
            self.model().take();
            return;
        }
        // The watchdog first, so that it never kills a reused pid.
        self.disarm_watchdog();
        if let Some(mut child) = self.child().take() {
            // An error here means it has already exited; wait reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again with the same port, arguments and data
    /// directory (stopping it gracefully first if it is still running), and
    /// waits until it answers `PING`. Retries for a few seconds if the port
    /// is still in use.
    ///
    /// # Panics
    ///
    /// If it cannot get its port back or does not come up within 10 s.
    pub fn restart(&mut self) {
        assert!(
            !self.is_model(),
            "this test restarts its server: the model server cannot serve it"
        );
        self.stop();
        let deadline = Instant::now() + RESTART_PORT_TIMEOUT;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(StartError::PortInUse(log)) => {
                    if Instant::now() >= deadline {
                        panic!(
                            "redis server could not bind port {} again within {:?}; log:\n{log}",
                            self.port, RESTART_PORT_TIMEOUT
                        );
                    }
                    thread::sleep(Duration::from_millis(100));
                }
                Err(StartError::Fatal(msg)) => panic!("{msg}"),
            }
        }
    }

    /// Whether this is the model served over TCP rather than a process.
    pub fn is_model(&self) -> bool {
        self.binary.as_os_str().is_empty()
    }

    fn model(&self) -> MutexGuard<'_, Option<xgroup_sim::SimServer>> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for an exited child so that it leaves no zombie.
    fn reap(&mut self) {
        self.disarm_watchdog();
        if let Some(mut child) = self.child().take() {
            let _ = child.wait();
        }
    }

    /// Kills the running process's watchdog (see
    /// [`RedisServerBuilder::kill_on_exit`]) without letting it act.
    fn disarm_watchdog(&self) {
        let watchdog = self
            .watchdog
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut watchdog) = watchdog {
            // SIGKILL: the shell gets no chance to run its kill.
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    /// With [`RedisServerBuilder::kill_on_exit`], starts a watchdog for
    /// the process `pid`: a shell reading its stdin, a pipe whose other end
    /// only this process holds. When this process exits, however it does,
    /// the read ends and the shell kills the server and removes its
    /// directory; [`kill`](Self::kill) and [`reap`](Self::reap) kill the
    /// shell first.
    #[cfg(unix)]
    fn arm_watchdog(&self, pid: u32) {
        if !self.options.kill_on_exit {
            return;
        }
        const SCRIPT: &str = r#"read _
kill -9 "$1" 2>/dev/null
i=0
while kill -0 "$1" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
rm -rf "$2""#;
        let spawned = Command::new("/bin/sh")
            .args(["-c", SCRIPT, "xgroup-testkit-watchdog"])
            .arg(pid.to_string())
            .arg(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(watchdog) => {
                *self.watchdog.lock().unwrap_or_else(PoisonError::into_inner) = Some(watchdog);
            }
            Err(e) => eprintln!(
                "xgroup-testkit: cannot start /bin/sh to kill the server on port {} at exit: {e}",
                self.port
            ),
        }
    }

    #[cfg(not(unix))]
    fn arm_watchdog(&self, _pid: u32) {}

    fn args(&self) -> Vec<OsString> {
        let dir = self.dir.path();
        if let Some((name, master_port, quorum)) = &self.options.sentinel_of {
            // A sentinel rewrites its configuration file: it lives in the
            // data directory, written once (a restart keeps what it learnt).
            let conf = dir.join("sentinel.conf");
            if !conf.exists() {
                let text = format!(
                    "port {port}\nbind 127.0.0.1\ndaemonize no\nprotected-mode no\n\
                     dir {dir}\nlogfile {log}\n\
                     sentinel monitor {name} 127.0.0.1 {master_port} {quorum}\n\
                     sentinel down-after-milliseconds {name} 1000\n\
                     sentinel failover-timeout {name} 5000\n\
                     sentinel parallel-syncs {name} 1\n{auth}",
                    auth = self
                        .options
                        .sentinel_auth_pass
                        .as_ref()
                        .map_or(String::new(), |pw| format!(
                            "sentinel auth-pass {name} {pw}\n"
                        )),
                    port = self.port,
                    dir = dir.display(),
                    log = dir.join(LOG_FILE).display(),
                );
                if let Err(e) = std::fs::write(&conf, text) {
                    panic!("cannot write {}: {e}", conf.display());
                }
            }
            let mut args: Vec<OsString> = vec![conf.into(), "--sentinel".into()];
            if let Some(pw) = &self.options.password {
                args.extend(["--requirepass".into(), pw.into()]);
            }
            args.extend(self.options.extra_args.iter().cloned());
            return args;
        }
        let mut args: Vec<OsString> = vec![
            "--port".into(),
            self.port.to_string().into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.into(),
            "--logfile".into(),
            dir.join(LOG_FILE).into(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            if self.options.aof { "yes" } else { "no" }.into(),
            "--daemonize".into(),
            "no".into(),
            "--protected-mode".into(),
            "no".into(),
        ];
        if self.options.appendfsync_always {
            args.extend(["--appendfsync".into(), "always".into()]);
        }
        if let Some(pw) = &self.options.password {
            args.extend(["--requirepass".into(), pw.into()]);
        }
        if let (Some(certs), Some(tls)) = (&self.certs, self.options.tls) {
            args.extend([
                "--tls-port".into(),
                self.tls_port.to_string().into(),
                "--tls-cert-file".into(),
                certs.server_cert().into(),
                "--tls-key-file".into(),
                certs.server_key().into(),
                "--tls-ca-cert-file".into(),
                certs.ca_cert().into(),
                "--tls-auth-clients".into(),
                if tls.verify_clients { "yes" } else { "no" }.into(),
            ]);
        }
        if self.options.cluster {
            args.extend([
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                dir.join(CLUSTER_CONFIG_FILE).into(),
            ]);
            if self.cluster_port != self.port + LEGACY_BUS_OFFSET {
                args.extend([
                    "--cluster-port".into(),
                    self.cluster_port.to_string().into(),
                ]);
            }
        }
        args.extend(self.options.extra_args.iter().cloned());
        args
    }

    /// Spawns the server on `self.port` and waits until it is ready.
    fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        let stderr = File::create(self.dir.path().join(STDERR_FILE)).map_err(|e| {
            StartError::Fatal(format!("cannot create the server's stderr file: {e}"))
        })?;
        let mut command = Command::new(&self.binary);
        command
            .args(self.args())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        #[cfg(unix)]
        if self.options.own_process_group {
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        let child = command.spawn().map_err(|e| {
            StartError::Fatal(missing_binary_message(&format!(
                "cannot run {}: {e}",
                self.binary.display()
            )))
        })?;
        let pid = child.id();
        *self.child() = Some(child);
        self.arm_watchdog(pid);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            // Exited? (e.g. lost the race for the port, or bad arguments)
            let exited = self
                .child()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.reap();
                let log = self.log_tail();
                if log.contains("Address already in use") {
                    return Err(StartError::PortInUse(log));
                }
                return Err(StartError::Fatal(format!(
                    "redis server ({}) exited during startup with {status}; log tail:\n{log}",
                    self.binary.display()
                )));
            }
            let last_problem = match self.probe(pid) {
                Ok(version) => {
                    self.version = version;
                    return Ok(());
                }
                Err(problem) => problem,
            };
            if Instant::now() >= deadline {
                self.kill();
                return Err(StartError::Fatal(format!(
                    "redis server on port {} not ready within {:?} ({last_problem}); log tail:\n{}",
                    self.port,
                    READY_TIMEOUT,
                    self.log_tail()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// One readiness check: `PING` answers `PONG` (not `-LOADING`) and
    /// `INFO server` shows our own process (not another server that won the
    /// race for the port). Returns the version string.
    fn probe(&self, pid: u32) -> Result<String, String> {
        let mut conn = self.connect().map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        match conn.cmd(&["PING"]).map_err(|e| e.to_string())? {
            RespValue::Simple(s) if s == "PONG" => {}
            other => return Err(format!("PING answered {other:?}")),
        }
        let info = conn.cmd(&["INFO", "server"]).map_err(|e| e.to_string())?;
        let info = info
            .as_str()
            .ok_or_else(|| format!("INFO answered {info:?}"))?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        if field("process_id") != Some(pid.to_string().as_str()) {
            return Err("another server answers on this port".into());
        }
        Ok(match (field("valkey_version"), field("redis_version")) {
            (Some(v), _) => format!("valkey {v}"),
            (None, Some(v)) => format!("redis {v}"),
            (None, None) => "unknown".into(),
        })
    }
}

impl Drop for RedisServer {
    /// Kills the process (and waits for it); the temporary directory is then
    /// removed.
    fn drop(&mut self) {
        self.kill();
    }
}
