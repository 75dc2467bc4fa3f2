//! A caller that sends nothing for 2 s mid-call (muted microphone, DTX): the recording has
//! 2 s of silence at that place, and still spans the whole call.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::Duration;
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::{call, CallPlan, Segment};

#[test]
fn two_seconds_without_packets_become_two_seconds_of_silence() {
    let daemon = common::Daemon::start(&[]);
    let mut plan = CallPlan::tone(daemon.http, 440.0, Duration::ZERO);
    let s = Duration::from_secs;
    plan.talk = vec![
        Segment::Tone(Duration::from_millis(1500)),
        Segment::Silence(s(2)),
        Segment::Tone(Duration::from_millis(1500)),
    ];
    let report = call(&plan);
    assert_eq!(report.error, None, "{report:?}");

    let (samples, call_len) = daemon.recorded(&report);
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    assert!((wav_len - call_len).abs() <= 0.060, "WAV {wav_len} s vs call {call_len} s");

    let at = |t: f64| (t * f64::from(SAMPLE_RATE_HZ)) as usize;
    // Silence from 1.5 s to 3.5 s (allowing 60 ms at each edge for the tone's fade).
    let gap = &samples[at(1.56)..at(3.44)];
    let loud = gap.iter().filter(|s| s.unsigned_abs() > 100).count();
    assert!(loud == 0, "{loud} loud samples inside the pause");
    let quiet_run =
        samples[at(1.3)..at(3.7)].iter().filter(|s| s.unsigned_abs() <= 100).count() as f64 / f64::from(SAMPLE_RATE_HZ);
    assert!((quiet_run - 2.0).abs() < 0.08, "the pause lasts {quiet_run:.3} s");
    for (from, to) in [(0.3, 1.4), (3.6, 4.9)] {
        let hz = audio::dominant_hz(&samples[at(from)..at(to)], SAMPLE_RATE_HZ);
        assert!((hz - 440.0).abs() <= 3.0, "tone from {from} to {to} s is {hz} Hz");
    }
}
