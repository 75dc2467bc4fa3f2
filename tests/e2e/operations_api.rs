//! What an operator watches: `/healthz`, `/metrics`, `/sessions`, `/sessions/{id}`, and the
//! one-line summary each session leaves in the log.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::Duration;
use tapedeck_core::media::SAMPLE_RATE_HZ;

use common::metric;
use tapedeck_tools::http::request;
use tapedeck_tools::{call, CallPlan};

const T: Duration = Duration::from_secs(5);

/// The value of an unlabelled (or fully labelled) sample in Prometheus text.
#[test]
fn health_metrics_and_sessions_describe_a_live_call() {
    let daemon = common::Daemon::start(&[]);
    let health = request(daemon.http, "GET", "/healthz", None, b"", T).unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    // Load balancers health-check with HEAD too: GET's status, no body.
    let head = request(daemon.http, "HEAD", "/healthz", None, b"", T).unwrap();
    assert_eq!((head.status, head.body.len()), (200, 0), "HEAD /healthz");

    // Two refused offers, counted by reason.
    assert_eq!(request(daemon.http, "POST", "/offer", Some("application/json"), b"{", T).unwrap().status, 400);
    assert_eq!(request(daemon.http, "POST", "/offer", Some("text/plain"), b"x", T).unwrap().status, 415);

    let http = daemon.http;
    let caller = std::thread::spawn(move || call(&CallPlan::tone(http, 440.0, Duration::from_secs(3))));
    std::thread::sleep(Duration::from_millis(1800));

    let list = request(daemon.http, "GET", "/sessions", None, b"", T).unwrap();
    assert_eq!(list.status, 200);
    let json = list.json();
    assert_eq!(json["count"], 1, "{json}");
    let s = &json["sessions"][0];
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["state"], "connected", "{s}");
    assert!(s["started"].as_str().unwrap().ends_with('Z'), "RFC 3339 UTC start time: {s}");
    let duration = s["duration_s"].as_f64().unwrap();
    assert!((1.0..2.5).contains(&duration), "{s}");
    assert!(s["packets_in"].as_u64().unwrap() >= 40, "50 packets a second come in: {s}");
    assert!(s["packets_out"].as_u64().unwrap() >= 80, "100 sample frames a second go out: {s}");
    assert!(s["bytes_in"].as_u64().unwrap() > 0 && s["bytes_out"].as_u64().unwrap() > 0);
    assert_eq!(s["lost"], 0);
    assert_eq!(s["concealed_ms"], 0);
    let rec = &s["recording"];
    assert!(rec["path"].as_str().unwrap().contains(&id), "{rec}");
    let seconds = rec["seconds"].as_f64().unwrap();
    assert!(seconds > 0.5 && seconds <= duration + 0.1, "recording length so far {seconds} of {duration}: {rec}");
    assert!(rec["error"].is_null());
    // How the caller's clock looks to the recorder: nothing late, no re-anchor, and a rate
    // (null until 10 s of the call were seen).
    assert_eq!((rec["late_packets"].as_u64(), rec["reanchors"].as_u64()), (Some(0), Some(0)), "{rec}");
    assert!(rec["drift_ms"].is_i64() && rec.get("clock_ppm").is_some(), "{rec}");

    let one = request(daemon.http, "GET", &format!("/sessions/{id}"), None, b"", T).unwrap();
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["id"], id.as_str());

    let metrics = request(daemon.http, "GET", "/metrics", None, b"", T).unwrap();
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("Content-Type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(metrics.body).unwrap();
    assert_eq!(metric(&text, "tapedeck_sessions_active"), 1.0);
    assert_eq!(metric(&text, "tapedeck_sessions_total"), 1.0);
    assert_eq!(metric(&text, "tapedeck_offers_accepted_total"), 1.0);
    assert_eq!(metric(&text, "tapedeck_offers_refused_total{reason=\"bad_request\"}"), 1.0);
    assert_eq!(metric(&text, "tapedeck_offers_refused_total{reason=\"unsupported_type\"}"), 1.0);
    assert!(metric(&text, "tapedeck_packets_in_total") >= 40.0);
    assert!(metric(&text, "tapedeck_packets_out_total") >= 80.0);
    assert!(metric(&text, "tapedeck_bytes_out_total") > metric(&text, "tapedeck_packets_out_total"));
    assert!(
        metric(&text, "tapedeck_recording_bytes_total") > f64::from(SAMPLE_RATE_HZ),
        "a second of 16-bit audio is 96 kB"
    );
    assert_eq!(metric(&text, "tapedeck_recording_errors_total"), 0.0);
    assert_eq!(metric(&text, "tapedeck_recording_late_packets_total"), 0.0);
    assert_eq!(metric(&text, "tapedeck_recording_reanchors_total"), 0.0);
    assert_eq!(metric(&text, "tapedeck_send_errors_total"), 0.0, "every datagram to a live caller went out");
    assert!(metric(&text, "tapedeck_loop_turn_seconds_count{loop=\"0\"}") > 100.0);
    assert_eq!(
        metric(&text, "tapedeck_loop_turn_seconds_bucket{loop=\"0\",le=\"+Inf\"}"),
        metric(&text, "tapedeck_loop_turn_seconds_count{loop=\"0\"}")
    );
    // The call is in the first loop (the one with the fewest calls, the lowest among equals).
    assert_eq!(metric(&text, "tapedeck_loop_sessions_active{loop=\"0\"}"), 1.0);

    let report = caller.join().unwrap();
    assert_eq!(report.error, None);
    let path = daemon.recording(report.recording.as_deref().unwrap());
    daemon.wait_for_final(&path, T);
    assert_eq!(request(daemon.http, "GET", &format!("/sessions/{id}"), None, b"", T).unwrap().status, 404);
    assert_eq!(request(daemon.http, "GET", "/sessions/not-a-uuid", None, b"", T).unwrap().status, 404);
    let list = request(daemon.http, "GET", "/sessions", None, b"", T).unwrap();
    assert_eq!(list.json()["count"], 0);

    // One line sums the session up.
    let log = daemon.log_text();
    let summary: Vec<&str> = log.lines().filter(|l| l.contains(&id) && l.contains("summary:")).collect();
    assert_eq!(summary.len(), 1, "one summary line: {summary:?}");
    let line = summary[0];
    for part in ["ended (hang-up)", "audio packets in", "lost", "concealed", "finalized", ".wav"] {
        assert!(line.contains(part), "{part:?} missing from {line}");
    }
}
