//! `--max-call-duration`: a call that reaches it is ended by the daemon, the caller is told
//! (DTLS close), and the recording holds exactly that long.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::Duration;

use tapedeck_core::media::SAMPLE_RATE_HZ;
use tapedeck_core::testkit::audio;
use tapedeck_tools::{call, CallPlan};

#[test]
fn a_call_at_the_longest_call_duration_is_ended_and_recorded_to_its_end() {
    let daemon = common::Daemon::start(&["--max-call-duration", "2000"]);
    let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_secs(6)));
    assert!(report.server_closed, "the caller was not told the call ended: {report:?}");
    let path = daemon.recording(report.recording.as_deref().unwrap());
    daemon.wait_for_final(&path, Duration::from_secs(5));
    let (_, samples) = audio::read_wav(&path);
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    // Ended on the first sample tick (10 ms) at or after 2 s; the last 20 ms frame whole.
    assert!((2.0..=2.04).contains(&wav_len), "WAV {wav_len:.3} s for a call ended at 2 s");
    let hz = audio::dominant_hz(&samples[24_000..samples.len() - 4800], SAMPLE_RATE_HZ);
    assert!((hz - 440.0).abs() <= 3.0, "recorded {hz} Hz");
    let id = report.session.unwrap();
    assert!(
        daemon.log_text().lines().any(|l| l.contains(&id) && l.contains("longest call reached")),
        "the summary does not say why the call ended"
    );
}

/// `--name-template`: the recording is named from the node id, the caller's label
/// (sanitised: it cannot leave the folder) and the session id.
#[test]
fn recordings_are_named_by_the_template_with_the_callers_label_made_safe() {
    let daemon = common::Daemon::start(&["--node-id", "eu-1", "--name-template", "{node}-{label}-{date}-{session}"]);
    let plan =
        CallPlan { label: Some("../sales team".into()), ..CallPlan::tone(daemon.http, 440.0, Duration::from_secs(1)) };
    let today = || humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10].to_string();
    let before = today();
    let report = call(&plan);
    let after = today(); // the same but at midnight UTC
    assert_eq!(report.error, None);
    let id = report.session.as_deref().unwrap();
    let name = report.recording.as_deref().unwrap();
    let named = |date: &str| format!("eu-1-_sales_team-{date}-{id}.wav");
    assert!(name == named(&before) || name == named(&after), "{name}");
    let path = daemon.recording(name);
    daemon.wait_for_final(&path, Duration::from_secs(5));
    assert_eq!(daemon.recordings(), [path], "one recording, in the recordings folder");
}
