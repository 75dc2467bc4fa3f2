//! `--format ogg|both` and `--segment-duration`, end to end: the Ogg/Opus files pass
//! Debian's `opusinfo`, `opusdec` plays them for exactly as long as the WAV of the same call
//! with the same audio, segments follow each other without a gap, and a daemon killed with
//! `kill -9` leaves an Ogg that plays up to about the kill.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;
use crate::common::opus_tools::{opusdec, opusinfo};

use std::path::PathBuf;
use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;
use tapedeck_core::testkit::audio;
use tapedeck_tools::{call, CallPlan, Segment};

const BLOCK: usize = 960;

#[test]
fn both_formats_hold_the_same_call_and_the_ogg_passes_opus_tools() {
    let daemon = common::Daemon::start(&["--format", "both"]);
    // Talk, a pause (the caller's timestamps run on: the files get silence), talk again,
    // through 3 % loss.
    let plan = CallPlan {
        talk: vec![
            Segment::Tone(Duration::from_millis(1500)),
            Segment::Silence(Duration::from_millis(600)),
            Segment::Tone(Duration::from_millis(1500)),
        ],
        send_loss: 0.03,
        seed: 17,
        ..CallPlan::tone(daemon.http, 440.0, Duration::ZERO)
    };
    let report = call(&plan);
    assert_eq!(report.error, None, "{report:?}");
    let name = report.recording.clone().expect("the answer names the recording");
    assert!(name.ends_with(".wav"), "with both, the answer names the WAV first: {name}");
    let (wav, _) = daemon.recorded(&report);
    let ogg_path = daemon.recording(&name).with_extension("ogg");

    let info = opusinfo(&ogg_path, true);
    assert!(info.contains("Channels: 1") && info.contains("Pre-skip"), "{info}");
    let played = opusdec(&ogg_path);
    assert_eq!(played.len(), wav.len(), "opusdec plays the Ogg for exactly as long as the WAV");

    // The same audio, block by block: where the WAV has the tone, so does the Ogg (the
    // frames after a lost packet are concealed differently: the WAV from FEC, the player
    // by guessing); where the WAV is silent, so is the Ogg, but for the decoder's fade.
    // The Ogg fills gaps with whole 2.5 ms frames, so after a pause its audio may run up
    // to 119 samples early: each block is compared at its best shift in that range.
    let (mut loud, mut alike, mut silent_but_loud) = (0, 0, 0);
    for (k, (w, o)) in wav.chunks(BLOCK).zip(played.chunks(BLOCK)).enumerate() {
        if audio::rms(w) < 0.01 {
            silent_but_loud += usize::from(audio::rms(o) > 0.05);
            continue;
        }
        loud += 1;
        let best = (0..120).map(|s| audio::correlation_at(&wav, o, k * BLOCK + s)).fold(0.0, f64::max);
        alike += usize::from(best > 0.99);
    }
    let hz = audio::dominant_hz(&played[BLOCK * 10..BLOCK * 60], SAMPLE_RATE_HZ);
    eprintln!("{loud} blocks of tone, {alike} alike; {silent_but_loud} silent in the WAV only; {hz:.1} Hz");
    assert!(loud >= 140, "{loud} blocks of tone");
    assert!(alike * 100 >= loud * 90, "{alike} of {loud} blocks alike");
    assert!(silent_but_loud <= 3, "{silent_but_loud} blocks silent in the WAV play in the Ogg");
    assert!((hz - 440.0).abs() <= 3.0, "{hz} Hz");
}

#[test]
fn segments_of_an_ogg_only_recording_follow_each_other_without_a_gap() {
    let daemon = common::Daemon::start(&["--format", "ogg", "--segment-duration", "1000"]);
    let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_millis(3500)));
    assert_eq!(report.error, None, "{report:?}");
    let name = report.recording.clone().expect("the answer names the recording");
    assert!(name.ends_with(".ogg"), "{name}");
    let first = daemon.recording(&name);
    let stem = first.file_stem().unwrap().to_string_lossy().into_owned();
    let call_len = (report.hangup_at.unwrap() - report.connected_at.unwrap()).as_secs_f64();
    let segments: Vec<PathBuf> = (1..=4)
        .map(|n| if n == 1 { first.clone() } else { first.with_file_name(format!("{stem}-{n:03}.ogg")) })
        .collect();
    let start = Instant::now();
    while !daemon.log_text().contains("in 4 segments") && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut total = 0;
    for (i, path) in segments.iter().enumerate() {
        opusinfo(path, true);
        let pcm = opusdec(path);
        let secs = pcm.len() as f64 / f64::from(SAMPLE_RATE_HZ);
        // Each holds a second of audio, up to a tick more; the last the rest.
        assert!(i == 3 || (1.0..1.25).contains(&secs), "segment {}: {secs:.3} s", i + 1);
        // The tone runs to the cut and on from it: no hole at either end of a file.
        let (head, tail) = (&pcm[..BLOCK * 5], &pcm[pcm.len() - BLOCK * 5..]);
        assert!(i == 0 || audio::rms(head) > 0.1, "segment {} starts with a hole", i + 1);
        assert!(i == 3 || audio::rms(tail) > 0.1, "segment {} ends with a hole", i + 1);
        total += pcm.len();
    }
    assert!(!first.with_file_name(format!("{stem}-005.ogg")).exists(), "four segments for 3.5 s");
    let total = total as f64 / f64::from(SAMPLE_RATE_HZ);
    assert!((total - call_len).abs() <= 0.060, "the segments hold {total:.3} s of a {call_len:.3} s call");
}

#[test]
fn kill_9_mid_call_leaves_an_ogg_that_plays_to_within_a_second_of_the_kill() {
    let mut daemon = common::Daemon::start(&["--format", "ogg"]);
    let http = daemon.http;
    let caller = std::thread::spawn(move || call(&CallPlan::tone(http, 440.0, Duration::from_secs(6))));
    std::thread::sleep(Duration::from_millis(3500));
    let killed = Instant::now();
    assert_eq!(daemon.signal_and_wait("KILL", Duration::from_secs(2)), None, "SIGKILL has no exit code");
    let report = caller.join().expect("caller thread");
    let call_len = (killed - report.connected_at.expect("connected")).as_secs_f64();
    let path = daemon.recording(report.recording.as_deref().unwrap());
    // Cut off: no end-of-stream page, which opusinfo warns about; but no error, and
    // every page written is complete.
    opusinfo(&path, false);
    let pcm = opusdec(&path);
    let len = pcm.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    assert!(len >= call_len - 1.0 && len <= call_len + 0.060, "Ogg {len:.3} s of a {call_len:.3} s call");
    let hz = audio::dominant_hz(&pcm[9600..pcm.len() - 960], SAMPLE_RATE_HZ);
    assert!((hz - 440.0).abs() <= 3.0, "{hz} Hz");
    eprintln!("kill -9 after {call_len:.2} s of call left a playable {len:.2} s Ogg");
}
