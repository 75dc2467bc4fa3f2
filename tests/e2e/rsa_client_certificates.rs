//! Callers on OpenSSL's DTLS stack (`tests/interop/dtls_caller.py`, pyOpenSSL under Debian's
//! `/usr/bin/python3`): the daemon accepts an RSA client certificate (GStreamer and other
//! OpenSSL-based callers have one) as it accepts an ECDSA one, when its fingerprint is the
//! offer's; it refuses an RSA certificate whose fingerprint the offer does not carry, and a
//! caller that sends no certificate at all. A refused caller's session ends at once, with a
//! warning naming the session and the reason, and frees its slot: with `--max-sessions 1`
//! a normal call goes through right after.
//!
//! Needs Debian's `python3-openssl` (and `python3-cryptography`, which it pulls in).

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tapedeck_tools::http::request;
use tapedeck_tools::{call, CallPlan};

const T: Duration = Duration::from_secs(5);
/// The caller bounds itself (`--deadline 20`); this is the backstop.
const CALLER_LIMIT: Duration = Duration::from_secs(30);
/// How long after the caller's last flight (the one with ChangeCipherSpec) a refused
/// session may still be listed (it goes within milliseconds). A lingering one would stay for
/// the connect timeout, 15 s.
const REFUSAL_LIMIT: f64 = 2.0;

#[test]
fn an_ecdsa_client_certificate_whose_fingerprint_was_offered_is_accepted() {
    accepted("ecdsa");
}

#[test]
fn an_rsa_client_certificate_whose_fingerprint_was_offered_is_accepted() {
    accepted("rsa");
}

#[test]
fn an_rsa_client_certificate_with_another_fingerprint_in_the_offer_is_refused() {
    // str0m finds the mismatch when the certificate arrives and drops the connection without
    // a DTLS alert: the caller is not told, and learns only when its own timer gives up.
    refused("rsa-wrong-fingerprint", "remote fingerprint no match", Tells::Maybe);
}

#[test]
fn a_caller_without_a_client_certificate_is_refused() {
    // dimpl answers an empty Certificate with a fatal handshake_failure alert.
    refused("no-cert", "no client certificate received", Tells::Alert);
}

/// The call connects: DTLS with SRTP keys, the daemon lists the session as connected and
/// sends the sample, and the hang-up ends it.
fn accepted(mode: &str) {
    let daemon = common::Daemon::start(&["--max-sessions", "1"]);
    let run = Run::caller(&daemon, mode);
    let r = &run.report;
    assert_eq!((r["ice"].as_str(), r["dtls"].as_str()), (Some("ok"), Some("ok")), "{}", run.describe(&daemon));
    assert_eq!(r["error"], Value::Null, "{}", run.describe(&daemon));
    assert_eq!(r["srtp"], "SRTP_AES128_CM_SHA1_80", "{r}");
    let id = run.session();
    assert!(
        run.listed_as(id, "connected"),
        "the daemon never listed the session as connected: {}",
        run.describe(&daemon)
    );
    assert!(r["rtp_in"].as_u64().unwrap() >= 50, "the sample did not come back: {r}");
    assert_eq!(r["hangup"], 200, "{r}");
    let log = daemon.log_text();
    assert!(log.lines().any(|l| l.contains(&format!("[session {id}] connected after"))), "no connected line:\n{log}");
    assert_eq!(request(daemon.http, "GET", &format!("/sessions/{id}"), None, b"", T).unwrap().status, 404);
    eprintln!("{mode}: {}", run.timings());
    still_serves(&daemon);
}

/// Whether a refused caller must be told by a fatal alert.
#[derive(PartialEq)]
enum Tells {
    Alert,
    /// A fatal alert, or silence until the caller's handshake timer gives up.
    Maybe,
}

/// The handshake fails after the caller sent its certificate flight; the daemon ends the
/// session at once with a warning that names it and says why, and keeps serving.
fn refused(mode: &str, reason: &str, tells: Tells) {
    let daemon = common::Daemon::start(&["--max-sessions", "1"]);
    let run = Run::caller(&daemon, mode);
    let r = &run.report;
    assert_eq!(r["ice"], "ok", "{}", run.describe(&daemon));
    // "refused" is a fatal alert from the daemon; "no-answer" a daemon that went silent
    // mid-handshake. "error" or "ok" would be this caller's own failure, or an acceptance.
    let dtls = r["dtls"].as_str().unwrap_or("");
    assert!(matches!(dtls, "refused" | "no-answer"), "the handshake was not refused: {}", run.describe(&daemon));
    if tells == Tells::Alert {
        assert_eq!(r["alert"]["level"], "fatal", "no fatal alert: {}", run.describe(&daemon));
    }
    assert!(r["t"]["ccs"].is_f64(), "the caller never sent its certificate flight: {r}");
    assert_eq!(r["srtp"], Value::Null, "{r}");
    let id = run.session();

    // A clear line, naming the session and the reason, then the summary.
    let warning = format!("[session {id}]");
    let log = wait_for_log(&daemon, |l| l.contains(&warning) && l.contains("WARN") && l.contains(reason));
    assert!(log.is_some(), "no warning for session {id} containing {reason:?}: {}", run.describe(&daemon));
    let summary = wait_for_log(&daemon, |l| {
        l.contains(&warning) && l.contains("summary: ended (error)") && l.contains("never connected")
    });
    assert!(summary.is_some(), "no summary line for a refused session: {}", run.describe(&daemon));

    // Gone at once, not at the connect timeout; nothing holds the only slot.
    let ccs = r["t"]["ccs"].as_f64().unwrap();
    let lingering: Vec<&Poll> = run.polls.iter().filter(|p| p.at > ccs + REFUSAL_LIMIT && p.lists(id)).collect();
    assert!(
        lingering.is_empty(),
        "the session was still listed {REFUSAL_LIMIT} s after the refusal: {}",
        run.describe(&daemon)
    );
    assert!(!run.listed_as(id, "connected"), "a refused session was listed as connected: {}", run.describe(&daemon));
    assert_eq!(request(daemon.http, "GET", &format!("/sessions/{id}"), None, b"", T).unwrap().status, 404);
    let metrics = request(daemon.http, "GET", "/metrics", None, b"", T).unwrap().text();
    assert_eq!(common::metric(&metrics, "tapedeck_sessions_active"), 0.0);
    eprintln!("{mode}: {}; daemon: {}", run.timings(), log.unwrap());
    still_serves(&daemon);
}

/// A normal call (the repository's own str0m client) still goes through, on the one slot.
fn still_serves(daemon: &common::Daemon) {
    let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_secs(2)));
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.answer_status, 200);
    assert!(report.received.len() > 100, "the sample came back: {} packets", report.received.len());
}

/// One run of the Python caller, with what `GET /sessions` said meanwhile.
struct Run {
    report: Value,
    polls: Vec<Poll>,
    stderr: String,
}

/// One `GET /sessions` while the caller ran: when it was sent (Unix seconds, the caller's
/// clock too) and each session's id and state.
struct Poll {
    at: f64,
    sessions: Vec<(String, String)>,
}

impl Poll {
    fn lists(&self, id: &str) -> bool {
        self.sessions.iter().any(|(s, _)| s == id)
    }
}

impl Run {
    fn caller(daemon: &common::Daemon, mode: &str) -> Run {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/dtls_caller.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(mode)
            .args(["--http", &daemon.http.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start /usr/bin/python3 (Debian's, with python3-openssl)");
        let started = Instant::now();
        let mut polls = Vec::new();
        while child.try_wait().expect("wait for the caller").is_none() {
            if started.elapsed() > CALLER_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the caller ran longer than {CALLER_LIMIT:?}");
            }
            polls.push(poll(daemon));
            std::thread::sleep(Duration::from_millis(20));
        }
        let (mut stdout, mut stderr) = (String::new(), String::new());
        child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let line = stdout.lines().last().unwrap_or("");
        let report = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("the caller printed no JSON line ({e}): {stdout:?}\nstderr: {stderr}"));
        Run { report, polls, stderr }
    }

    fn session(&self) -> &str {
        self.report["session"].as_str().unwrap_or_else(|| panic!("no session id in {}", self.report))
    }

    fn listed_as(&self, id: &str, state: &str) -> bool {
        self.polls.iter().any(|p| p.sessions.iter().any(|(s, st)| s == id && st == state))
    }

    /// The caller's timings in milliseconds, from its offer; and, when the daemon listed the
    /// session and then stopped, how long after the caller's certificate flight it stopped.
    fn timings(&self) -> String {
        let t = &self.report["t"];
        let offer = t["offer"].as_f64().unwrap_or(0.0);
        let ms = |k: &str| t[k].as_f64().map_or("-".into(), |v| format!("{:.0}", (v - offer) * 1000.0));
        let mut out = format!(
            "dtls {} alert {}; ms after the offer: answer {} ice {} dtls start {} ccs {} dtls end {}",
            self.report["dtls"],
            self.report["alert"],
            ms("answer"),
            ms("ice"),
            ms("dtls_start"),
            ms("ccs"),
            ms("dtls_end")
        );
        if let (Some(id), Some(ccs)) = (self.report["session"].as_str(), t["ccs"].as_f64()) {
            if let Some(gone) = self.polls.iter().find(|p| p.at >= ccs && !p.lists(id)) {
                out += &format!("; first poll without the session {:.0} ms after our ccs", (gone.at - ccs) * 1000.0);
            }
        }
        out
    }

    fn describe(&self, daemon: &common::Daemon) -> String {
        let mut changes = Vec::new();
        let mut last = None;
        for p in &self.polls {
            if last != Some(&p.sessions) {
                changes.push(format!("{:.3} {:?}", p.at, p.sessions));
                last = Some(&p.sessions);
            }
        }
        format!(
            "\ncaller: {}\ncaller stderr: {}\n/sessions changes: {changes:#?}\ndaemon log:\n{}",
            self.report,
            self.stderr,
            daemon
                .log_text()
                .lines()
                .filter(|l| !l.contains("DEBUG is::") && !l.contains("str0m::") && !l.contains("GET /sessions ->"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

fn poll(daemon: &common::Daemon) -> Poll {
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let list = request(daemon.http, "GET", "/sessions", None, b"", T).expect("GET /sessions").json();
    let sessions = list["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("not a session list: {list}"))
        .iter()
        .map(|s| (s["id"].as_str().unwrap_or("").to_string(), s["state"].as_str().unwrap_or("").to_string()))
        .collect();
    Poll { at, sessions }
}

/// The first log line matching `pred`, waiting (bounded) for the daemon to write it.
fn wait_for_log(daemon: &common::Daemon, pred: impl Fn(&str) -> bool) -> Option<String> {
    let start = Instant::now();
    loop {
        if let Some(line) = daemon.log_text().lines().find(|l| pred(l)) {
            return Some(line.to_string());
        }
        if start.elapsed() > Duration::from_secs(2) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
