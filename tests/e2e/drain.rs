//! Draining: after SIGTERM or `POST /drain` the daemon takes no new calls (`/healthz` and
//! offers answer 503 "draining" at once, so a load balancer stops sending it offers), lets the
//! calls in progress go on up to `--drain-timeout`, then ends those still going, finalizes
//! every recording and exits 0. It exits as soon as its last call has ended.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tapedeck_core::media::SAMPLE_RATE_HZ;
use tapedeck_core::testkit::audio;
use tapedeck_tools::http::{request, request_with, HttpResponse};
use tapedeck_tools::{call, offering, CallPlan};

const T: Duration = Duration::from_secs(10);

/// A fresh offer, as JSON, answered or refused.
fn post_offer(http: SocketAddr, token: Option<&str>) -> HttpResponse {
    let offer = offering("127.0.0.1:9".parse().unwrap(), Instant::now(), None).unwrap();
    let body = serde_json::json!({ "type": "offer", "sdp": offer.offer.to_sdp_string() }).to_string();
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    headers.extend(token.map(|t| ("Authorization", format!("Bearer {t}"))));
    request_with(http, "POST", "/offer", &headers, body.as_bytes(), T).unwrap()
}

/// Waits until the caller is connected (bounded).
fn wait_connected(daemon: &common::Daemon, token: Option<&str>) {
    let start = Instant::now();
    let headers: Vec<(&str, String)> = token.map(|t| ("Authorization", format!("Bearer {t}"))).into_iter().collect();
    loop {
        let list = request_with(daemon.http, "GET", "/sessions", &headers, b"", T).unwrap().json();
        if list["sessions"].as_array().is_some_and(|s| s.iter().any(|s| s["state"] == "connected")) {
            return;
        }
        assert!(start.elapsed() < T, "the call did not connect: {list}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_drains_and_the_drain_timeout_ends_the_call_with_its_whole_recording() {
    let mut daemon = common::Daemon::start(&["--drain-timeout", "3000"]);
    let http = daemon.http;
    let caller = std::thread::spawn(move || call(&CallPlan::tone(http, 440.0, Duration::from_secs(12))));
    wait_connected(&daemon, None);
    std::thread::sleep(Duration::from_millis(1500));

    let signalled = Instant::now();
    daemon.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    let health = request(http, "GET", "/healthz", None, b"", T).unwrap();
    assert_eq!(health.status, 503, "{}", health.json());
    assert_eq!(health.json()["status"], "draining", "{}", health.json());
    assert_eq!(health.json()["sessions"], 1, "{}", health.json());
    let refused = post_offer(http, None);
    assert_eq!(refused.status, 503);
    assert!(refused.json()["error"].as_str().unwrap().contains("draining"), "{}", refused.json());
    assert!(refused.header("Retry-After").is_some());

    let code = daemon.wait_for_exit(Duration::from_secs(8));
    let exited = signalled.elapsed();
    assert_eq!(code, Some(0), "exit code (None: still running)");
    assert!(exited >= Duration::from_millis(2900), "the call was not let go on for the drain timeout: {exited:?}");
    let report = caller.join().unwrap();
    assert!(report.server_closed, "the caller was not told the call ended: {report:?}");

    // The recording runs from connecting to the end of the drain, to its last second.
    let call_len = (signalled + Duration::from_secs(3)) - report.connected_at.unwrap();
    let path = daemon.recording(report.recording.as_deref().unwrap());
    let (_, samples) = audio::read_wav(&path);
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    assert!((wav_len - call_len.as_secs_f64()).abs() <= 0.2, "WAV {wav_len:.3} s for a {call_len:?} call");
    let tail = &samples[samples.len() - 48_000 + 4800..samples.len() - 2400];
    let hz = audio::dominant_hz(tail, SAMPLE_RATE_HZ);
    assert!((hz - 440.0).abs() <= 3.0, "the drain's last second is {hz} Hz");
    assert!(daemon.log_text().contains("draining"), "the log says nothing of draining");
}

#[test]
fn post_drain_lets_the_call_finish_and_the_daemon_exits_when_it_has() {
    const TOKEN: &str = "drain-token";
    let mut daemon = common::Daemon::start(&["--token", TOKEN, "--drain-timeout", "60000"]);
    let http = daemon.http;
    assert_eq!(request(http, "POST", "/drain", None, b"", T).unwrap().status, 401, "drain needs the token");
    let caller = std::thread::spawn(move || {
        call(&CallPlan { token: Some(TOKEN.into()), ..CallPlan::tone(http, 440.0, Duration::from_secs(4)) })
    });
    wait_connected(&daemon, Some(TOKEN));
    std::thread::sleep(Duration::from_millis(1000));

    let auth = [("Authorization", format!("Bearer {TOKEN}"))];
    let drained = request_with(http, "POST", "/drain", &auth, b"", T).unwrap();
    assert_eq!(drained.status, 202, "{}", drained.json());
    assert_eq!(drained.json()["status"], "draining");
    assert!(drained.json()["drain_remaining_ms"].as_u64().unwrap() > 50_000, "{}", drained.json());
    assert_eq!(post_offer(http, Some(TOKEN)).status, 503, "a draining daemon took an offer");

    // The caller hangs up after its 4 s (DELETE still works while draining); the daemon
    // then has no call left and exits, long before the 60 s drain timeout.
    let report = caller.join().unwrap();
    assert_eq!(report.error, None);
    assert_eq!(report.hangup_status, Some(200));
    assert!(!report.server_closed, "the daemon ended the call instead of letting it finish");
    let hung_up = Instant::now();
    assert_eq!(daemon.wait_for_exit(Duration::from_secs(5)), Some(0));
    eprintln!("exited {:?} after the last call ended", hung_up.elapsed());
    let (samples, call_len) = daemon.recorded(&report);
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    assert!((wav_len - call_len).abs() <= 0.1, "WAV {wav_len:.3} s for a {call_len:.3} s call");
}
