//! `tapedeck-load` against the real daemon: a few callers, every one connected, heard,
//! recorded in full and hung up, and its report (the JSON last line) says so.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::process::Command;

#[test]
fn the_load_generator_drives_callers_and_checks_their_recordings() {
    let daemon = common::Daemon::start(&[]);
    let out = Command::new(common::tool("tapedeck-load"))
        .args(["--url", &format!("http://{}", daemon.http), "--callers", "6", "--seconds", "3", "--ramp", "20"])
        .arg("--check-recordings")
        .arg(daemon.recordings_dir())
        .output()
        .expect("tapedeck-load runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a report")).expect("JSON");
    assert_eq!(report["callers"], 6, "{report}");
    assert_eq!(report["connected"], 6, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["hangups_ok"], 6, "{report}");
    assert_eq!(report["recordings_complete"], 6, "every frame each caller sent in its WAV: {report}");
    let missing = report["recording_missing_frames_max"].as_u64();
    assert!(missing.is_some_and(|m| m <= 2), "at most the edges' 2 frames missing: {report}");
    assert_eq!(daemon.recordings().len(), 6);
    // 6 callers x 3 s at 20 ms each way.
    let sent = report["packets_sent"].as_f64().unwrap();
    assert!((sent - 6.0 * 150.0).abs() <= 12.0, "sent {sent}");
    let (got, expected) = (report["packets_received"].as_f64().unwrap(), report["packets_expected"].as_f64().unwrap());
    assert!(expected >= 6.0 * 290.0 && got >= 0.97 * expected, "received {got} of {expected}");
    // Light load on loopback: the daemon's pacing (by the kernel's stamps) is within a few ms.
    let pacing = report["pacing_p99_ms"].as_f64().unwrap();
    let seen = report["pacing_seen_p99_ms"].as_f64().unwrap();
    assert!(pacing > 0.0 && pacing < 20.0, "pacing p99 {pacing} ms");
    assert!(seen >= 0.0 && report["max_gap_ms"].as_f64().unwrap() < 200.0, "{report}");
    for p in ["answer_ms", "connect_ms"] {
        let (p50, p99) = (report[p]["p50"].as_f64().unwrap(), report[p]["p99"].as_f64().unwrap());
        assert!(p50 > 0.0 && p50 <= p99, "{p}: {report}");
    }
}
