//! Callers whose media clock runs slow (0.95x) or fast (1.05x) against the daemon's, through
//! `tapedeck-load` on real sockets: every frame each one sent is in its recording. The file
//! follows the caller's clock: a slow caller's is its audio padded with silence to the call's
//! length, a fast caller's is as long as its audio, longer than the call.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::process::{Child, Command, Stdio};

/// Each caller's call, in seconds: long enough for a 0.95x caller's lag (1.5 s) to pass the
/// daemon's 1 s jitter buffer well before the end.
const CALL_S: f64 = 30.0;
/// How far the slow caller's file may be from the call's length, in seconds (the caller and
/// the daemon see the call begin and end at slightly different moments).
const CALL_SLACK_S: f64 = 0.25;
/// How much of its audio the fast caller's file may lack at the edges: two 20 ms frames.
const EDGE_S: f64 = 0.04;

#[test]
fn every_frame_of_a_slow_or_a_fast_caller_is_in_its_recording() {
    let daemon = common::Daemon::start(&[]);
    // Both callers at once (one tapedeck-load each), to keep the test near 35 s.
    let runs = [(0.95, load(&daemon, "0.95")), (1.05, load(&daemon, "1.05"))];
    let mut failures = Vec::new();
    for (rate, child) in runs {
        let out = child.wait_with_output().expect("tapedeck-load ends");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a report")).expect("JSON");
        assert_eq!(report["connected"], 1, "{report}");
        assert_eq!(report["recordings_checked"], 1, "{report}");
        let w = &report["recording_worst"];
        let figure = |k: &str| w[k].as_f64().unwrap_or_else(|| panic!("no {k} in {report}"));
        let (sent, tone, file, call) = (figure("sent_s"), figure("tone_s"), figure("file_s"), figure("call_s"));
        // The load tool did what it was told: R times the call's length of audio.
        assert!((sent - rate * call).abs() <= 0.1, "{rate}x sent {sent:.2} s in {call:.2} s: {report}");
        let figures = format!(
            "{rate}x: {sent:.2} s sent ({} frames), {tone:.2} s of tone found ({} missing), file {file:.2} s, call {call:.2} s",
            w["frames_sent"], w["missing_frames"]
        );
        if report["recordings_complete"] != 1 {
            failures.push(format!("{figures}: not every frame is in the file: {}", w["problems"]));
        }
        if rate < 1.0 && (file - call).abs() > CALL_SLACK_S {
            failures.push(format!("{figures}: a slow caller's file should be as long as the call"));
        }
        if rate > 1.0 && file < sent - EDGE_S {
            failures.push(format!("{figures}: a fast caller's file should hold all the audio sent"));
        }
    }
    assert!(failures.is_empty(), "recordings lose audio of drifting callers:\n{}", failures.join("\n"));
}

/// Starts `tapedeck-load` with one caller whose media clock runs at `rate`, checking its
/// recording.
fn load(daemon: &common::Daemon, rate: &str) -> Child {
    Command::new(common::tool("tapedeck-load"))
        .args(["--url", &format!("http://{}", daemon.http), "--callers", "1", "--seconds", &CALL_S.to_string()])
        .args(["--clock-rate", rate, "--check-recordings"])
        .arg(daemon.recordings_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tapedeck-load starts")
}
