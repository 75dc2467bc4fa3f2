//! A sample that is not 48 kHz mono: a stereo 44.1 kHz 16-bit WAV of a 523 Hz tone is
//! converted at start, and a real caller hears 523 Hz at the file's level, without gaps,
//! across the loop's seam.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::f64::consts::PI;
use std::path::Path;
use std::time::Duration;
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::{call, CallPlan};

/// The sample's tone: distinct from the callers' 440 Hz.
const TONE_HZ: f64 = 523.0;
/// Its amplitude, in full-scale units (RMS 0.354).
const AMPLITUDE: f64 = 0.5;

#[test]
fn a_stereo_44k1_sample_plays_at_its_pitch_and_level() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sample = dir.path().join("tone-44k1-stereo.wav");
    // 2 s at 44.1 kHz is exactly 1046 periods of 523 Hz: a seamless loop, which the 4 s call
    // crosses at least once.
    write_stereo_tone(&sample, 44_100, 2 * 44_100);
    let daemon = common::Daemon::start_with_sample(&sample, &[]);

    let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_secs(4)));
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.hangup_status, Some(200));
    let call_len = report.hangup_at.expect("hung up") - report.connected_at.expect("connected");

    // Every packet of the call arrived, one packet time after the other.
    let step = tapedeck::config::DEFAULT_PTIME_MS * 48;
    let expected = call_len.as_secs_f64() / (tapedeck::config::DEFAULT_PTIME_MS as f64 / 1000.0);
    let got = report.received.len() as f64;
    assert!(got >= 0.95 * expected, "received {got} of {expected:.0} packets");
    let gaps: Vec<u64> =
        report.received.windows(2).map(|w| w[1].rtp_time.wrapping_sub(w[0].rtp_time)).filter(|&d| d != step).collect();
    assert!(gaps.is_empty(), "RTP steps other than {step}: {gaps:?} (daemon skipped frames: {})", skipped(&daemon));

    // What was heard, past the decoder's first half second: the tone at the file's level.
    let heard = &report.pcm[24_000..];
    let hz = audio::dominant_hz(heard, SAMPLE_RATE_HZ);
    let level = audio::rms(heard) / (AMPLITUDE / 2f64.sqrt());
    let share = audio::tone_share(heard, TONE_HZ, SAMPLE_RATE_HZ);
    // No gap, click or jump in phase anywhere, the loop's seam included: every period of the
    // tone is as long as the others.
    let crossings = tapedeck_core::testkit::audio::rising_zero_crossings(heard);
    let period = f64::from(SAMPLE_RATE_HZ) / TONE_HZ;
    let (shortest, longest) =
        crossings.windows(2).map(|w| w[1] - w[0]).fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p), hi.max(p)));
    let quietest = heard.chunks(480).map(audio::rms).fold(f64::MAX, f64::min) / audio::rms(heard);
    eprintln!(
        "{got} of {expected:.0} packets; {hz:.2} Hz; level {level:.3} of the file's; tone share {share:.3}; \
         periods {shortest:.2}..{longest:.2} samples (ideal {period:.2}); quietest 10 ms block {quietest:.3}"
    );
    assert!((hz - TONE_HZ).abs() <= 3.0, "dominant {hz} Hz");
    assert!((0.85..=1.15).contains(&level), "level {level} of the sample's");
    assert!(share > 0.95, "only {share} of the energy is the tone");
    assert!(crossings.len() as f64 > 3.0 * TONE_HZ, "only {} periods", crossings.len());
    assert!(
        (shortest - period).abs() < 0.5 && (longest - period).abs() < 0.5,
        "periods from {shortest} to {longest} samples, ideal {period}"
    );
    assert!(quietest > 0.8, "a 10 ms block at {quietest} of the level");
}

/// Writes `frames` of the tone, the same in both channels, as a 16-bit stereo WAV at `rate`.
fn write_stereo_tone(path: &Path, rate: u32, frames: usize) {
    let spec =
        hound::WavSpec { channels: 2, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).expect("create the sample");
    for i in 0..frames {
        let v = (AMPLITUDE * 32767.0 * (2.0 * PI * TONE_HZ * i as f64 / f64::from(rate)).sin()).round() as i16;
        w.write_sample(v).expect("write");
        w.write_sample(v).expect("write");
    }
    w.finalize().expect("finalize the sample");
}

/// Whether the daemon logged that its loop stalled and skipped sample frames.
fn skipped(daemon: &common::Daemon) -> bool {
    std::fs::read_dir(daemon.dir.path().join("logs"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .any(|text| text.contains("skipped them"))
}
