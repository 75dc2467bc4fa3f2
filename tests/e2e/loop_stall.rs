//! When the event loop stops turning, the daemon says so: `/healthz` turns 503 (and back to
//! 200 when the loop resumes), and an offer that the loop cannot take in time gets 504.
//!
//! The test freezes only the daemon's main thread (the loop), leaving its HTTP threads
//! running: it ptrace-seizes that one thread and interrupts it (Linux `PTRACE_SEIZE` +
//! `PTRACE_INTERRUPT` stop a single thread, unlike SIGSTOP).

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::{Duration, Instant};

use tapedeck_tools::http::request;
use tapedeck_tools::offering;

const T: Duration = Duration::from_secs(10);

#[test]
fn a_stalled_loop_fails_health_checks_and_offers_time_out() {
    let daemon = common::Daemon::start(&[]);
    let health = || request(daemon.http, "GET", "/healthz", None, b"", T).unwrap();
    assert_eq!(health().status, 200);

    let frozen = common::Frozen::thread(daemon.child.id()); // the main thread's id is the process id
    std::thread::sleep(Duration::from_millis(2600));
    let stalled = health();
    assert_eq!(stalled.status, 503, "{:?}", stalled.json());
    assert_eq!(stalled.json()["status"], "stalled");
    assert!(stalled.json()["last_turn_ms_ago"].as_u64().unwrap() >= 2000);

    let offer = offering("127.0.0.1:9".parse().unwrap(), Instant::now(), None).unwrap();
    let body = serde_json::json!({ "type": "offer", "sdp": offer.offer.to_sdp_string() }).to_string();
    let asked = Instant::now();
    let r = request(daemon.http, "POST", "/offer", Some("application/json"), body.as_bytes(), T).unwrap();
    assert_eq!(r.status, 504, "{:?}", r.json());
    assert!(asked.elapsed() >= Duration::from_secs(2) && asked.elapsed() < Duration::from_secs(4));

    drop(frozen);
    let resumed = Instant::now();
    while health().status != 200 {
        assert!(resumed.elapsed() < Duration::from_secs(3), "the loop did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The offer that timed out left no session behind.
    let sessions = request(daemon.http, "GET", "/sessions", None, b"", T).unwrap().json();
    assert_eq!(sessions["count"], 0, "{sessions}");
}
