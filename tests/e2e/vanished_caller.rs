//! A caller that vanishes without hanging up: the session ends after the ICE disconnect
//! timeout and its recording is finalized, playable, and as long as the session lasted.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::{call, CallPlan, Ending};

#[test]
fn a_vanished_caller_is_ended_after_the_timeout_and_its_wav_finalized() {
    let daemon = common::Daemon::start(&["--disconnect-timeout", "1000"]);
    let mut plan = CallPlan::tone(daemon.http, 440.0, Duration::from_secs(2));
    plan.ending = Ending::Vanish;
    let report = call(&plan);
    assert_eq!(report.error, None, "{report:?}");
    let vanished = report.hangup_at.unwrap();
    let path = daemon.recording(report.recording.as_deref().unwrap());

    let start = Instant::now();
    daemon.wait_for_final(&path, Duration::from_secs(20));
    assert!(start.elapsed() < Duration::from_secs(20), "the session was never ended");
    let ended_after = vanished.elapsed();
    let (_, samples) = audio::read_wav(&path);
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    let talked = (vanished - report.connected_at.unwrap()).as_secs_f64();
    // The WAV spans from connect to the moment the server gave up, which is after the
    // caller vanished and no later than we observed the file finalized.
    assert!(wav_len >= talked - 0.06, "WAV {wav_len} s, caller talked {talked} s");
    assert!(wav_len <= talked + ended_after.as_secs_f64() + 0.06, "WAV {wav_len} s too long");
    let hz = audio::dominant_hz(&samples[9600..(talked * f64::from(SAMPLE_RATE_HZ)) as usize - 9600], SAMPLE_RATE_HZ);
    assert!((hz - 440.0).abs() <= 3.0, "{hz} Hz");
    eprintln!("caller talked {talked:.2} s; server ended the session {ended_after:?} later; WAV {wav_len:.2} s");
}
