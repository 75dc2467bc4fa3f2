//! `--capture` writes what the recorder was handed; `tapedeck replay` rebuilds the very same
//! WAV from it, twice over, byte for byte.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::process::Command;
use std::time::Duration;

use tapedeck_tools::{call, CallPlan};

#[test]
fn replay_of_a_live_capture_equals_the_live_wav() {
    let capture_dir = tempfile::tempdir().unwrap();
    let daemon = common::Daemon::start(&["--capture", capture_dir.path().to_str().unwrap()]);
    let mut plan = CallPlan::tone(daemon.http, 440.0, Duration::from_secs(2));
    plan.send_loss = 0.05;
    let report = call(&plan);
    assert_eq!(report.error, None, "{report:?}");
    let name = report.recording.as_deref().unwrap();
    let live_path = daemon.recording(name);
    daemon.wait_for_final(&live_path, Duration::from_secs(5));
    let live = std::fs::read(&live_path).unwrap();
    let capture = capture_dir.path().join(name.replace(".wav", ".tdcap"));
    assert!(capture.exists(), "no capture at {}", capture.display());

    for round in 0..2 {
        let out = capture_dir.path().join(format!("replay{round}.wav"));
        let status = Command::new(env!("CARGO_BIN_EXE_tapedeck"))
            .arg("replay")
            .arg(&capture)
            .arg("-o")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(std::fs::read(&out).unwrap() == live, "replay {round} differs from the live WAV");
    }

    let status = Command::new(env!("CARGO_BIN_EXE_tapedeck"))
        .args(["replay", "Cargo.toml", "-o"])
        .arg(capture_dir.path().join("x.wav"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stderr).contains("not a tapedeck capture"));
}
