//! 10 % random loss on the way to the server: the recording still spans the call and the tone
//! is intact (concealed with in-band FEC and PLC, no holes).

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::Duration;
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::{call, CallPlan};

#[test]
fn ten_percent_loss_keeps_length_and_tone() {
    let seed = std::env::var("TAPEDECK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1055);
    eprintln!("loss seed {seed} (replay with TAPEDECK_SEED={seed})");
    let daemon = common::Daemon::start(&[]);
    let mut plan = CallPlan::tone(daemon.http, 440.0, Duration::from_secs(4));
    plan.send_loss = 0.10;
    plan.seed = seed;
    let report = call(&plan);
    assert_eq!(report.error, None, "{report:?}");
    assert!(report.dropped > 10, "the path dropped only {} datagrams", report.dropped);

    let (samples, call_len) = daemon.recorded(&report);
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    assert!((wav_len - call_len).abs() <= 0.060, "WAV {wav_len} s vs call {call_len} s");
    let middle = &samples[48_000..samples.len() - 24_000];
    let hz = audio::dominant_hz(middle, SAMPLE_RATE_HZ);
    assert!((hz - 440.0).abs() <= 3.0, "dominant {hz} Hz");
    // No holes: every 20 ms block carries the tone, received or concealed. On a steady
    // synthetic tone libopus stops adding in-band FEC after its voice detector settles, so
    // most losses here are concealed by PLC, which keeps about a fifth of the level over a
    // lost 20 ms frame and less over two in a row; silence (a hole) would be zero.
    let full = audio::rms(middle);
    let mut concealed = 0;
    for (i, block) in middle.chunks(960).enumerate() {
        let r = audio::rms(block);
        concealed += usize::from(r < full * 0.6);
        assert!(r > full * 0.02, "block {i} at {:.2} s has RMS {r:.4} of {full:.4}", 1.0 + i as f64 * 0.02);
    }
    assert!(concealed > 5, "only {concealed} blocks show concealment: was there loss?");
}
