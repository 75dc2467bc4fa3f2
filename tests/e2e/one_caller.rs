//! One caller, end to end: the real binary, real UDP and HTTP, a str0m caller sending a
//! 440 Hz tone for 3 s, receiving the sample, and hanging up with DELETE.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::path::Path;
use std::time::Duration;
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::{call, CallPlan};

#[test]
fn one_caller_is_recorded_and_hears_the_sample() {
    let daemon = common::Daemon::start(&[]);
    let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_secs(3)));
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.hangup_status, Some(200));
    let connected = report.connected_at.expect("connected");
    let call_len = report.hangup_at.expect("hung up") - connected;

    let path = daemon.recording(report.recording.as_deref().expect("recording name"));
    daemon.wait_for_final(&path, Duration::from_secs(5));
    assert_eq!(daemon.recordings(), vec![path.clone()], "exactly one WAV");
    let (spec, samples) = audio::read_wav(&path);
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, SAMPLE_RATE_HZ, 16));
    let wav_len = Duration::from_secs_f64(samples.len() as f64 / f64::from(SAMPLE_RATE_HZ));
    let diff = wav_len.as_secs_f64() - call_len.as_secs_f64();
    assert!(diff.abs() <= 0.060, "WAV {wav_len:?} vs call {call_len:?}");
    let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
    let hz = audio::dominant_hz(middle, SAMPLE_RATE_HZ);
    assert!((hz - 440.0).abs() <= 3.0, "dominant {hz} Hz");

    // The sample came back: at 10 ms per packet, at least 95 % of what the call's length implies.
    let expected = call_len.as_secs_f64() / 0.010;
    let got = report.received.len() as f64;
    assert!(got >= 0.95 * expected, "received {got} of {expected} packets");
    let sample = audio::read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample.wav")).1;
    let piece = &report.pcm[24_000..24_000 + 12_000];
    let (offset, corr) = audio::best_offset(&sample, piece);
    eprintln!("WAV {wav_len:?} vs call {call_len:?}; {hz:.2} Hz; {got} of {expected:.0} packets; sample correlation {corr:.3} at {offset}");
    assert!(corr > 0.9, "received audio matches the sample at {offset} only with {corr}");
}
