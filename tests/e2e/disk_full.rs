//! The disk fills up mid-call (a 400 KiB tmpfs in the daemon's own mount namespace): the
//! failure is logged with the session id and counted, the call goes on, and the WAV keeps
//! the audio written before the disk filled, as a playable file.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::Duration;
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::http::request;
use tapedeck_tools::{call, CallPlan};

/// 400 KiB holds about 4.2 s of 48 kHz 16-bit mono.
const TINY_DISK: &str = r#"mount -t tmpfs -o size=400k tapedeck-test "$REC" && exec "$0" "$@""#;

#[test]
fn a_full_disk_mid_call_keeps_what_was_written_and_the_call_goes_on() {
    let daemon = common::Daemon::start_with(tempfile::tempdir().unwrap(), Some(TINY_DISK), &[]);
    let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_secs(6)));
    assert_eq!(report.error, None, "the call goes on: {report:?}");
    assert_eq!(report.hangup_status, Some(200));
    let call_len = (report.hangup_at.unwrap() - report.connected_at.unwrap()).as_secs_f64();
    assert!(report.received.len() as f64 >= 0.95 * call_len / 0.010, "the sample played throughout");

    std::thread::sleep(Duration::from_millis(500));
    let metrics = request(daemon.http, "GET", "/metrics", None, b"", Duration::from_secs(5)).unwrap();
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(text.contains("tapedeck_recording_errors_total 1\n"), "{text}");
    let id = report.session.clone().unwrap();
    let log = daemon.log_text();
    assert!(
        log.lines().any(|l| l.contains(&id) && l.contains("ERROR") && l.contains("failed")),
        "an error line with the session id:\n{log}"
    );

    let path = daemon.seen_by_daemon(&daemon.recording(report.recording.as_deref().unwrap()));
    let (spec, samples) = audio::read_wav(&path);
    assert_eq!((spec.channels, spec.sample_rate), (1, SAMPLE_RATE_HZ));
    let kept = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    // Everything up to the last header refresh before the disk filled (~4.2 s) is kept.
    assert!(kept >= 3.5 && kept < call_len, "kept {kept:.2} s of a {call_len:.2} s call");
    let hz = audio::dominant_hz(&samples[samples.len() / 4..samples.len() * 3 / 4], SAMPLE_RATE_HZ);
    assert!((hz - 440.0).abs() <= 3.0, "{hz} Hz");
    eprintln!("disk full: kept {kept:.2} s of a {call_len:.2} s call");
}
