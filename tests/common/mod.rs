//! Shared helpers for the end-to-end tests: the real `tapedeck` binary on free ports with
//! temporary folders, turns for tests that run one ([`serial`]), the tools' binaries, and
//! the simulated network ([`sim`]). Audio measurements are `tapedeck_core::testkit::audio`.
#![allow(dead_code)] // each test file uses part of this
#![allow(clippy::disallowed_methods)] // tests own their threads and clocks

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running daemon; killed when dropped. It holds this test's turn (see [`serial`]).
pub struct Daemon {
    pub child: Child,
    pub http: SocketAddr,
    /// The first event loop's UDP address.
    pub udp: SocketAddr,
    /// The first line the daemon printed (`tapedeck listening: ...`).
    pub listening: String,
    pub dir: tempfile::TempDir,
    _turn: Turn,
}

/// The end-to-end tests are one binary whose tests run on several threads; the ones that run
/// a daemon (whose pacing and timeouts they measure) take turns, as they did when each test
/// file was a binary of its own and cargo ran the binaries one after another. A test holds
/// its turn while any of its daemons runs; it may start more daemons meanwhile (a turn is
/// per thread and counts them). A test that failed while holding the turn passes it on.
pub fn serial() -> Turn {
    let guard = if HELD.get() == 0 { Some(TURN.lock().unwrap_or_else(|e| e.into_inner())) } else { None };
    HELD.set(HELD.get() + 1);
    Turn { _guard: guard }
}

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// Turns this thread holds (the first one holds [`TURN`]).
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A test's turn; see [`serial`].
pub struct Turn {
    _guard: Option<std::sync::MutexGuard<'static, ()>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        HELD.set(HELD.get() - 1);
    }
}

impl Daemon {
    /// Starts `tapedeck` with the given extra flags, on free ports, with its own folders.
    pub fn start(extra: &[&str]) -> Daemon {
        Daemon::start_with_sample(&default_sample(), extra)
    }

    /// [`Daemon::start`] playing `sample` instead of the default one.
    pub fn start_with_sample(sample: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_in(tempfile::tempdir().expect("temp dir"), None, sample, LOOPBACK_UDP, extra)
    }

    /// [`Daemon::start`] in `dir`; with `wrapper` (a shell snippet ending in
    /// `exec "$0" "$@"`), run through `unshare -rm sh -c <wrapper>`, in a user and mount
    /// namespace of its own (for example to give it a tiny disk). `$REC` names the
    /// recordings folder, which exists before the wrapper runs.
    pub fn start_with(dir: tempfile::TempDir, wrapper: Option<&str>, extra: &[&str]) -> Daemon {
        Daemon::start_in(dir, wrapper, &default_sample(), LOOPBACK_UDP, extra)
    }

    /// [`Daemon::start`] with the (first) UDP socket on `udp_addr`.
    pub fn start_on_udp(udp_addr: &str, extra: &[&str]) -> Daemon {
        Daemon::start_in(tempfile::tempdir().expect("temp dir"), None, &default_sample(), udp_addr, extra)
    }

    /// [`Daemon::start_with`] with the UDP socket on `udp_addr` instead of 127.0.0.1: an
    /// address that the wrapper makes (say, in a network namespace of its own).
    pub fn start_with_udp(dir: tempfile::TempDir, wrapper: &str, udp_addr: &str, extra: &[&str]) -> Daemon {
        Daemon::start_in(dir, Some(wrapper), &default_sample(), udp_addr, extra)
    }

    fn start_in(dir: tempfile::TempDir, wrapper: Option<&str>, sample: &Path, udp: &str, extra: &[&str]) -> Daemon {
        let turn = serial();
        let recordings = dir.path().join("recordings");
        std::fs::create_dir_all(&recordings).expect("recordings folder");
        let mut command = match wrapper {
            Some(script) => {
                let tapedeck = command_on(sample, dir.path(), udp);
                let mut c = Command::new("unshare");
                c.args(["-rm", "sh", "-c", script]).arg(tapedeck.get_program()).args(tapedeck.get_args());
                c.env("REC", &recordings);
                c
            }
            None => command_on(sample, dir.path(), udp),
        };
        let mut child =
            command.args(extra).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start tapedeck");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
        let (http, udp) = parse_listening(&line).unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        Daemon { child, http, udp, listening: line.trim().to_string(), dir, _turn: turn }
    }

    /// A path as the daemon sees it (through its own mount namespace, if it has one).
    pub fn seen_by_daemon(&self, path: &Path) -> PathBuf {
        Path::new(&format!("/proc/{}/root", self.child.id())).join(path.strip_prefix("/").unwrap_or(path))
    }

    pub fn recordings_dir(&self) -> PathBuf {
        self.dir.path().join("recordings")
    }

    /// Every WAV in the recordings folder.
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.recordings_dir())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The recording named in an answer.
    pub fn recording(&self, name: &str) -> PathBuf {
        self.recordings_dir().join(name)
    }

    /// Sends a signal and waits (bounded) for the exit code.
    pub fn signal_and_wait(&mut self, signal: &str, limit: Duration) -> Option<i32> {
        self.signal(signal);
        self.wait_for_exit(limit)
    }

    /// Sends `signal` (a name for `kill -s`).
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill").args(["-s", signal, &self.child.id().to_string()]).status();
    }

    /// The exit code once the daemon has exited, within `limit`; `None` if it still runs (or
    /// was killed by a signal).
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The finalized recording of a call that ended: its samples, and the call's length
    /// (connected to hang-up, as the caller saw it) in seconds.
    pub fn recorded(&self, report: &tapedeck_tools::CallReport) -> (Vec<i16>, f64) {
        let path = self.recording(report.recording.as_deref().expect("the answer names the recording"));
        self.wait_for_final(&path, Duration::from_secs(5));
        let call = report.hangup_at.expect("hung up") - report.connected_at.expect("connected");
        (tapedeck_core::testkit::audio::read_wav(&path).1, call.as_secs_f64())
    }

    /// Waits until the daemon has written the recording's final header (bounded).
    pub fn wait_for_final(&self, path: &Path, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if std::fs::metadata(path).is_ok() && hound::WavReader::open(path).is_ok() && self.log_mentions(path) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything in the daemon's log files.
    pub fn log_text(&self) -> String {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("logs"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        files.sort();
        files.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect()
    }

    fn log_mentions(&self, path: &Path) -> bool {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        std::fs::read_dir(self.dir.path().join("logs"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .any(|text| text.lines().any(|l| l.contains(name) && l.contains("finalized")))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sample the daemon plays unless told otherwise.
pub fn default_sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample.wav")
}

/// The UDP address the tests' daemons bind unless told otherwise: a free port on loopback.
const LOOPBACK_UDP: &str = "127.0.0.1:0";

/// The `tapedeck` command line the tests use: free ports, quiet console, `sample`, and its
/// recordings and logs under `dir`.
pub fn command(sample: &Path, dir: &Path) -> Command {
    command_on(sample, dir, LOOPBACK_UDP)
}

/// [`command`] with the UDP socket on `udp_addr`.
fn command_on(sample: &Path, dir: &Path, udp_addr: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tapedeck"));
    command
        .args(["--http-addr", "127.0.0.1:0", "--udp-addr", udp_addr, "--log-level", "warn"])
        .arg("--sample")
        .arg(sample)
        .arg("--recordings")
        .arg(dir.join("recordings"))
        .arg("--logs")
        .arg(dir.join("logs"));
    command
}

fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let http = line.split("http://").nth(1)?.split_whitespace().next()?.parse().ok()?;
    let udp = line.split(" udp ").nth(1)?.split_whitespace().next()?.parse().ok()?;
    Some((http, udp))
}

pub mod opus_tools;
pub mod sim;

/// One thread of a child process, stopped (ptrace) until dropped; the process's other
/// threads go on. Linux `PTRACE_SEIZE` + `PTRACE_INTERRUPT` stop a single thread, unlike
/// SIGSTOP.
pub struct Frozen(libc::pid_t);

impl Frozen {
    /// Stops thread `tid` (for a process's main thread, the process id).
    pub fn thread(tid: u32) -> Frozen {
        let tid = tid as libc::pid_t;
        // SAFETY: plain ptrace/waitpid calls on our own child's thread; no memory is shared.
        unsafe {
            assert_eq!(
                libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0),
                0,
                "PTRACE_SEIZE: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0), 0, "PTRACE_INTERRUPT");
            let mut status = 0;
            assert_eq!(libc::waitpid(tid, &mut status, libc::__WALL), tid, "waitpid");
        }
        Frozen(tid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as above; detaching resumes the thread.
        unsafe {
            libc::ptrace(libc::PTRACE_DETACH, self.0, 0, 0);
        }
    }
}

/// The ids of a process's threads whose name starts with `prefix`.
pub fn threads_named(pid: u32, prefix: &str) -> Vec<u32> {
    let mut tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the process's threads")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|tid| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).is_ok_and(|n| n.starts_with(prefix))
        })
        .collect();
    tids.sort_unstable();
    tids
}

/// Which point of the loop (seconds) the caller was hearing at `at`.
pub fn position_at(r: &tapedeck_tools::CallReport, sample: &[i16], at: Instant) -> f64 {
    let packet =
        r.received.iter().min_by_key(|p| if p.arrival > at { p.arrival - at } else { at - p.arrival }).unwrap();
    use tapedeck_core::testkit::audio::{best_offset, LOCATE_SAMPLES};
    // A second from that packet on: shorter pieces can match two points of the sample.
    let piece = r.pcm.get(packet.pcm_offset..packet.pcm_offset + LOCATE_SAMPLES);
    let piece = piece.expect("a second of received audio after the instant");
    let (offset, corr) = best_offset(sample, piece);
    assert!(corr > 0.9, "received audio does not match the sample ({corr})");
    let drift = at.saturating_duration_since(packet.arrival).as_secs_f64()
        - packet.arrival.saturating_duration_since(at).as_secs_f64();
    offset as f64 / f64::from(tapedeck_core::media::SAMPLE_RATE_HZ) + drift
}

/// The value of one Prometheus sample line (`name` with its labels, if any).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// What an interop caller script (tests/interop/*.py) left: its exit status, the JSON report
/// it printed last, and its stderr.
pub struct ScriptRun {
    pub status: ExitStatus,
    pub report: serde_json::Value,
    pub stderr: String,
}

/// Runs an interop caller script to its end (stdin closed), killed and failed past `limit`;
/// its last stdout line that starts with `{` is its JSON report. `what` names it in failures.
pub fn run_script(mut command: Command, limit: Duration, what: &str) -> ScriptRun {
    use std::io::Read;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = read_all(Box::new(child.stdout.take().expect("stdout")));
    let err = read_all(Box::new(child.stderr.take().expect("stderr")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the script") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    let status = status.unwrap_or_else(|| panic!("{what} still running after {limit:?}; stderr:\n{stderr}"));
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
    let report = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{what} printed no JSON report ({status}, {e}): {stdout}\nstderr:\n{stderr}"));
    ScriptRun { status, report, stderr }
}

/// Runs `tapedeck-load` against `daemon` with `args` (callers, seconds, ...), checking every
/// recording, killed and failed past `limit`; returns its JSON report (its last line).
pub fn run_load(daemon: &Daemon, args: &[&str], limit: Duration) -> serde_json::Value {
    let mut command = Command::new(tool("tapedeck-load"));
    command.args(["--url", &format!("http://{}", daemon.http)]).args(args);
    command.arg("--check-recordings").arg(daemon.recordings_dir());
    let run = run_script(command, limit, "tapedeck-load");
    assert!(run.status.success(), "tapedeck-load failed ({}): {}\n{}", run.status, run.report, run.stderr);
    run.report
}

/// The daemon's `/metrics` page.
pub fn metrics(daemon: &Daemon) -> String {
    let r = tapedeck_tools::http::request(daemon.http, "GET", "/metrics", None, b"", Duration::from_secs(5))
        .expect("GET /metrics");
    assert_eq!(r.status, 200, "GET /metrics: {}", r.text());
    r.text()
}

/// A binary of the tools crate (`tapedeck-load`, `tapedeck-floor`), built beside the daemon:
/// `cargo test` builds every member's binaries before running any test (the tools crate has
/// tests of its own, which makes cargo build them).
pub fn tool(name: &str) -> PathBuf {
    let daemon = Path::new(env!("CARGO_BIN_EXE_tapedeck"));
    let path = daemon.with_file_name(name);
    assert!(
        path.exists(),
        "{} is not built; `cargo test` (every member) or `cargo build -p tapedeck-tools` builds it",
        path.display()
    );
    path
}

pub mod s3;
