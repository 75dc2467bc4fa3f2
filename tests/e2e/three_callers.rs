//! Three callers at once, three tones: three WAVs, each its own tone with no crosstalk, and
//! all three hear the same position of the looped sample (one relay, not three players).

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::path::Path;
use std::time::Duration;
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::{call, CallPlan, CallReport};

const TONES: [f32; 3] = [330.0, 440.0, 550.0];

#[test]
fn three_callers_get_their_own_recordings_and_share_the_sample() {
    let daemon = common::Daemon::start(&[]);
    let http = daemon.http;
    let reports: Vec<CallReport> = std::thread::scope(|s| {
        let handles: Vec<_> =
            TONES.iter().map(|&hz| s.spawn(move || call(&CallPlan::tone(http, hz, Duration::from_secs(3))))).collect();
        handles.into_iter().map(|h| h.join().expect("caller thread")).collect()
    });
    for r in &reports {
        assert_eq!(r.error, None, "{r:?}");
    }

    let mut names: Vec<_> = reports.iter().map(|r| r.recording.clone().expect("name")).collect();
    names.dedup();
    assert_eq!(names.len(), 3);
    for (r, &hz) in reports.iter().zip(&TONES) {
        let path = daemon.recording(r.recording.as_deref().unwrap());
        daemon.wait_for_final(&path, Duration::from_secs(5));
        let (_, samples) = audio::read_wav(&path);
        let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
        let got = audio::dominant_hz(middle, SAMPLE_RATE_HZ);
        assert!((got - f64::from(hz)).abs() <= 3.0, "{hz} Hz caller recorded {got} Hz");
        for &other in TONES.iter().filter(|&&o| o != hz) {
            let share = audio::tone_share(middle, f64::from(other), SAMPLE_RATE_HZ);
            assert!(share < 0.01, "{hz} Hz recording holds {share:.3} of {other} Hz");
        }
    }
    assert_eq!(daemon.recordings().len(), 3);

    // The relay: at one wall-clock instant, every caller hears the same point of the loop.
    let sample = audio::read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample.wav")).1;
    let latest_connect = reports.iter().filter_map(|r| r.connected_at).max().unwrap();
    let at = latest_connect + Duration::from_millis(1500);
    let positions: Vec<f64> = reports.iter().map(|r| common::position_at(r, &sample, at)).collect();
    let len = sample.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    for p in &positions[1..] {
        let d = (p - positions[0]).rem_euclid(len);
        let d = d.min(len - d);
        assert!(d < 0.030, "callers hear the loop {d:.3} s apart: {positions:?}");
    }
}
