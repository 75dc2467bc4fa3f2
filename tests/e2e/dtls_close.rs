//! A caller that closes the call the way a browser's `pc.close()` does (DTLS close_notify,
//! no HTTP hang-up): the session ends at once and the recording spans the call.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::{call, CallPlan, Ending};

#[test]
fn dtls_close_ends_the_session_and_finalizes_the_wav() {
    let daemon = common::Daemon::start(&[]);
    let mut plan = CallPlan::tone(daemon.http, 440.0, Duration::from_secs(2));
    plan.ending = Ending::DtlsClose;
    let report = call(&plan);
    assert_eq!(report.error, None, "{report:?}");
    let closed = report.hangup_at.unwrap();
    let call_len = closed - report.connected_at.unwrap();
    let path = daemon.recording(report.recording.as_deref().unwrap());
    let waited = Instant::now();
    daemon.wait_for_final(&path, Duration::from_secs(5));
    assert!(waited.elapsed() < Duration::from_secs(3), "the session did not end on close_notify");
    let (_, samples) = audio::read_wav(&path);
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    assert!((wav_len - call_len.as_secs_f64()).abs() <= 0.060, "WAV {wav_len} s vs call {call_len:?}");
    let hz = audio::dominant_hz(&samples[9600..samples.len() - 9600], SAMPLE_RATE_HZ);
    assert!((hz - 440.0).abs() <= 3.0, "{hz} Hz");
}
