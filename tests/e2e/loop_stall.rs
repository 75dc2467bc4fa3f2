//! When an event loop stops turning, the daemon says so: `/healthz` turns 503 naming the loop
//! (and back to 200 when it resumes), an offer that the loop cannot take in time gets 504,
//! and the other loop goes on taking calls.
//!
//! The test freezes only the first loop's thread, leaving the other loop and the HTTP
//! threads running: it ptrace-seizes that one thread and interrupts it (Linux
//! `PTRACE_SEIZE` + `PTRACE_INTERRUPT` stop a single thread, unlike SIGSTOP).

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::{Duration, Instant};

use tapedeck_tools::http::request;
use tapedeck_tools::offering;

const T: Duration = Duration::from_secs(10);

#[test]
fn a_stalled_loop_fails_health_checks_and_offers_time_out() {
    let daemon = common::Daemon::start(&["--loops", "2"]);
    let health = || request(daemon.http, "GET", "/healthz", None, b"", T).unwrap();
    assert_eq!(health().status, 200);

    let first = common::threads_named(daemon.child.id(), "loop-0");
    assert_eq!(first.len(), 1, "one thread named loop-0");
    let frozen = common::Frozen::thread(first[0]);
    std::thread::sleep(Duration::from_millis(2600));
    let stalled = health();
    let json = stalled.json();
    assert_eq!(stalled.status, 503, "{json}");
    assert_eq!(json["status"], "stalled");
    assert!(json["last_turn_ms_ago"].as_u64().unwrap() >= 2000, "{json}");
    assert!(json["loops"][0]["last_turn_ms_ago"].as_u64().unwrap() >= 2000, "{json}");
    assert!(json["loops"][1]["last_turn_ms_ago"].as_u64().unwrap() < 1000, "the other loop turns: {json}");

    let post = || {
        let offer = offering("127.0.0.1:9".parse().unwrap(), Instant::now(), None).unwrap();
        let body = serde_json::json!({ "type": "offer", "sdp": offer.offer.to_sdp_string() }).to_string();
        request(daemon.http, "POST", "/offer", Some("application/json"), body.as_bytes(), T).unwrap()
    };
    // Both loops are empty: the offer goes to the first, which is frozen.
    let asked = Instant::now();
    let r = post();
    assert_eq!(r.status, 504, "{:?}", r.json());
    assert!(asked.elapsed() >= Duration::from_secs(2) && asked.elapsed() < Duration::from_secs(4));
    // That offer holds a seat in the first loop: the next goes to the second, which answers.
    let r = post();
    assert_eq!(r.status, 200, "the second loop should take calls: {:?}", r.json());
    let answered = r.json()["session"].as_str().unwrap().to_string();

    drop(frozen);
    let resumed = Instant::now();
    while health().status != 200 {
        assert!(resumed.elapsed() < Duration::from_secs(3), "the loop did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The offer that timed out left no session behind; the second loop's is there.
    let sessions = request(daemon.http, "GET", "/sessions", None, b"", T).unwrap().json();
    assert_eq!(sessions["count"], 1, "{sessions}");
    assert_eq!(sessions["sessions"][0]["id"], answered.as_str(), "{sessions}");
    assert_eq!(sessions["sessions"][0]["loop"], 1, "{sessions}");
}
