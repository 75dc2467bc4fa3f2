//! SIGTERM during a call with `--drain-timeout 0`: the daemon refuses new offers, ends the
//! call at once, finalizes the recording with the call's full length, and exits 0 within 2 s.
//! (With a drain timeout, see `drain.rs`.)

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::{call, CallPlan};

#[test]
fn sigterm_mid_call_finalizes_the_recording_and_exits_zero() {
    let mut daemon = common::Daemon::start(&["--drain-timeout", "0"]);
    let http = daemon.http;
    let caller = std::thread::spawn(move || call(&CallPlan::tone(http, 440.0, Duration::from_secs(8))));
    // Let the call run for about 2.5 s after connecting.
    std::thread::sleep(Duration::from_millis(3000));
    let signalled = Instant::now();
    let code = daemon.signal_and_wait("TERM", Duration::from_secs(2));
    let exit_after = signalled.elapsed();
    assert_eq!(code, Some(0), "exit code (None: still running after 2 s)");
    let report = caller.join().expect("caller thread");
    assert!(report.server_closed, "the caller was not told the call ended: {report:?}");
    let call_len = signalled - report.connected_at.expect("connected");

    let path = daemon.recording(report.recording.as_deref().unwrap());
    let (spec, samples) = audio::read_wav(&path);
    assert_eq!(spec.sample_rate, SAMPLE_RATE_HZ);
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    assert!((wav_len - call_len.as_secs_f64()).abs() <= 0.060, "WAV {wav_len} s vs call {call_len:?}");
    // The last second (still in the jitter buffer at SIGTERM) was written too.
    let tail = &samples[samples.len() - 48_000 + 4800..samples.len() - 2400];
    let hz = audio::dominant_hz(tail, SAMPLE_RATE_HZ);
    assert!((hz - 440.0).abs() <= 3.0, "last second is {hz} Hz");
    eprintln!("exited {exit_after:?} after SIGTERM; WAV {wav_len:.3} s for a {call_len:?} call");
}

#[test]
fn sigint_without_calls_exits_zero() {
    let mut daemon = common::Daemon::start(&[]);
    assert_eq!(daemon.signal_and_wait("INT", Duration::from_secs(2)), Some(0));
}

#[test]
fn kill_9_mid_call_leaves_a_playable_wav_missing_at_most_the_last_second() {
    let mut daemon = common::Daemon::start(&[]);
    let http = daemon.http;
    let caller = std::thread::spawn(move || call(&CallPlan::tone(http, 440.0, Duration::from_secs(8))));
    std::thread::sleep(Duration::from_millis(4000));
    let killed = Instant::now();
    assert_eq!(daemon.signal_and_wait("KILL", Duration::from_secs(2)), None, "SIGKILL has no exit code");
    let report = caller.join().expect("caller thread");
    let call_len = (killed - report.connected_at.expect("connected")).as_secs_f64();
    let path = daemon.recording(report.recording.as_deref().unwrap());
    let (spec, samples) = audio::read_wav(&path);
    assert_eq!((spec.channels, spec.sample_rate), (1, SAMPLE_RATE_HZ));
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    // In-order audio is written at once and the header is refreshed every 200 ms: at most
    // the last second is missing. The file's clock starts when the daemon sees the call
    // connect, which can be a few tens of milliseconds before the caller does (a busy
    // machine delays the caller's thread), so the file may be that much longer than the
    // call timed from the caller's side: the same 60 ms the SIGTERM test allows.
    assert!(wav_len >= call_len - 1.0 && wav_len <= call_len + 0.060, "WAV {wav_len:.3} s of a {call_len:.3} s call");
    let hz = audio::dominant_hz(&samples[9600..samples.len() - 960], SAMPLE_RATE_HZ);
    assert!((hz - 440.0).abs() <= 3.0, "{hz} Hz");
    eprintln!("kill -9 after {call_len:.2} s of call left a playable {wav_len:.2} s WAV");
}
