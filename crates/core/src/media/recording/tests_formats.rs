//! Tests of the formats and segments: the Ogg/Opus written from the packets plays the same
//! audio as the WAV decoded from them, for exactly as long, and segments end to end are the
//! whole recording.

use super::*;
use crate::media::mem_file::MemFile;
use crate::testkit::audio::{correlation_at, decode_ogg_opus, rms, wav_from_bytes, Tone};
use crate::testkit::rng::Rng;

const FRAME: usize = 960;

/// A 12 s call of a 440 Hz tone, as a network delivers it: jitter up to 30 ms (so some
/// packets arrive out of order), two packets lost in a row at 2 s, one at 5 s, and a 700 ms
/// pause at 7 s (the caller's timestamps jump: muted, or DTX). In arrival order, with the
/// indexes of the lost frames and where the pause starts (in frames of audio).
fn call() -> (Vec<Packet>, Vec<usize>, usize) {
    let frames = Tone::new(440.0).frames(0, 600);
    let mut rng = Rng::new(0x0991);
    let lost = vec![100, 101, 250];
    let pause = 350;
    let mut pkts: Vec<Packet> = frames
        .iter()
        .enumerate()
        .filter(|(i, _)| !lost.contains(i))
        .map(|(i, payload)| {
            let gap = if i >= pause { 35 } else { 0 }; // 35 frames = 700 ms
            let jitter = if i == 0 { 0 } else { rng.below(30) };
            Packet {
                seq: 9_000 + i as u64,
                rtp_time: 77_000 + ((i + gap) * FRAME) as u64,
                payload: payload.clone(),
                arrival: Duration::from_millis(20 * (i + gap) as u64 + 40 + jitter),
            }
        })
        .collect();
    pkts.sort_by_key(|p| p.arrival);
    (pkts, lost, pause)
}

/// One segment's WAV samples and Ogg bytes.
type Segment = (Vec<i16>, Vec<u8>);

/// Records `pkts` into both formats, splitting into new files after each packet index in
/// `splits`; returns each segment's (WAV samples, Ogg bytes) and the final counters.
fn record_both(pkts: &[Packet], end: Duration, splits: &[usize]) -> (Vec<Segment>, RecordingStats) {
    let files = |n: u32| {
        let (wav, ogg) = (MemFile::default(), MemFile::default());
        (Files { wav: Some(wav.clone()), ogg: Some((ogg.clone(), n)) }, (wav, ogg))
    };
    let (first, mut segment) = files(1);
    let mut rec = Recording::with_files(first, RecordingConfig::default()).unwrap();
    let mut done = Vec::new();
    for (i, p) in pkts.iter().enumerate() {
        rec.push(p.clone()).unwrap();
        if splits.contains(&i) {
            let (next, out) = files(done.len() as u32 + 2);
            rec.split(next).unwrap();
            done.push(std::mem::replace(&mut segment, out));
        }
    }
    let stats = rec.finish(end).unwrap();
    done.push(segment);
    let read = |(wav, ogg): (MemFile, MemFile)| (wav_from_bytes(&wav.bytes()).1, ogg.bytes());
    (done.into_iter().map(read).collect(), stats)
}

#[test]
fn the_ogg_plays_the_wavs_audio_for_exactly_as_long() {
    let (pkts, lost, pause) = call();
    let end = Duration::from_millis(12_900);
    let (files, stats) = record_both(&pkts, end, &[]);
    let (wav, ogg) = &files[0];
    let played = decode_ogg_opus(ogg);
    assert_eq!(played.len(), wav.len(), "the Ogg lasts exactly as long as the WAV");
    assert_eq!(wav.len() as u64, stats.samples_written);

    // Block by block (20 ms): the same audio. Only the frames right after a loss differ
    // (the WAV rebuilt the last lost frame from FEC; the player conceals it) and the first
    // after the pause; elsewhere the two decoders differ in rounding at most (each decoded
    // a different history: the Ogg's player its silence frames, the WAV nothing).
    let (lost, resume) = (lost.iter().map(|f| f + 2).collect::<Vec<_>>(), pause + 2 + 35); // in blocks: audio began 40 ms in
    let (mut loud, mut identical) = (0, 0);
    let mut after_speech = false;
    for (k, (w, o)) in wav.chunks(FRAME).zip(played.chunks(FRAME)).enumerate() {
        let speech = std::mem::replace(&mut after_speech, rms(w) >= 0.01);
        if rms(w) < 0.01 {
            // Silence is silence, except the decoder's fade into the first silence frame.
            assert!(speech || rms(o) < 0.001, "block {k}: the WAV is silent, the Ogg is not ({})", rms(o));
            continue;
        }
        loud += 1;
        identical += usize::from(w == o);
        let c = correlation_at(w, o, 0);
        let event = lost.iter().chain([&resume]).any(|&e| (e..e + 4).contains(&k));
        assert!(event || c > 0.999, "block {k}: correlation {c:.4}");
    }
    assert!(loud > 550, "{loud} blocks of tone");
    assert!(identical > loud / 2, "{identical} of {loud} blocks are sample-identical");
}

#[test]
fn segments_end_to_end_are_the_whole_recording() {
    let (pkts, _, _) = call();
    let end = Duration::from_millis(12_900);
    let (whole, _) = record_both(&pkts, end, &[]);
    // Cuts in the tone, right after the loss (while packets wait in the jitter buffer),
    // twice in a row (a segment with almost nothing in it) and in the pause.
    let (segments, stats) = record_both(&pkts, end, &[60, 99, 130, 131, 360]);
    assert_eq!(segments.len(), 6);
    let joined: Vec<i16> = segments.iter().flat_map(|(wav, _)| wav.iter().copied()).collect();
    assert_eq!(joined.len() as u64, stats.samples_written);
    assert!(joined == whole[0].0, "the WAV segments end to end are the unsplit WAV, sample for sample");
    let mut played = Vec::new();
    for (i, (wav, ogg)) in segments.iter().enumerate() {
        let ogg = decode_ogg_opus(ogg);
        assert_eq!(ogg.len(), wav.len(), "segment {}: the Ogg lasts as long as the WAV", i + 1);
        played.extend(ogg);
    }
    // Each Ogg segment starts a fresh decoder in the player, so the first frames of each
    // may differ from the unsplit stream (and concealment at a segment's start has nothing
    // to conceal from); the rest is the same audio.
    let unsplit = decode_ogg_opus(&whole[0].1);
    let same = |(a, b): &(&[i16], &[i16])| (rms(a) < 0.01 && rms(b) < 0.01) || correlation_at(a, b, 0) > 0.99;
    let differ = unsplit.chunks(FRAME).zip(played.chunks(FRAME)).filter(|p| !same(p)).count();
    assert!(differ <= 12, "{differ} blocks of the Ogg segments differ from the unsplit Ogg");
}

/// Without a WAV nothing is decoded at all, and the Ogg is byte for byte the one written
/// beside a WAV: the timeline does not depend on the decoder.
#[test]
fn an_ogg_alone_is_the_ogg_written_beside_a_wav() {
    let (pkts, _, _) = call();
    let end = Duration::from_millis(12_900);
    let (both, with_wav) = record_both(&pkts, end, &[]);
    let ogg = MemFile::default();
    let mut rec =
        Recording::with_files(Files { wav: None, ogg: Some((ogg.clone(), 1)) }, RecordingConfig::default()).unwrap();
    for p in &pkts {
        rec.push(p.clone()).unwrap();
    }
    let alone = rec.finish(end).unwrap();
    assert!(ogg.bytes() == both[0].1, "the same Ogg with or without the WAV");
    assert_eq!((alone.samples_written, alone.packets, alone.lost), (with_wav.samples_written, 597, 3));
}

/// A caller that sends stereo Opus (some apps do) still gets a mono Ogg a player decodes
/// to the WAV's audio: a mono decoder downmixes stereo packets.
#[test]
fn stereo_packets_make_a_mono_ogg_with_the_wavs_audio() {
    let frames = Tone { stereo: true, ..Tone::new(440.0) }.frames(0, 100);
    let pkts: Vec<Packet> = frames
        .iter()
        .enumerate()
        .map(|(i, payload)| Packet {
            seq: i as u64,
            rtp_time: (i * FRAME) as u64,
            payload: payload.clone(),
            arrival: Duration::from_millis(20 * i as u64),
        })
        .collect();
    let (files, _) = record_both(&pkts, Duration::from_millis(2000), &[]);
    let (wav, ogg) = &files[0];
    let played = decode_ogg_opus(ogg);
    assert_eq!(played.len(), wav.len());
    let alike = wav.chunks(FRAME).zip(played.chunks(FRAME)).filter(|(w, o)| correlation_at(w, o, 0) > 0.999).count();
    assert!(alike >= 95, "{alike} of 100 blocks alike");
}

/// The level follows the WAV: the tone's RMS while it plays, 0 in the pause; an Ogg alone
/// decodes nothing and has no level.
#[test]
fn the_level_is_the_wavs_last_200_ms() {
    let (pkts, _, pause) = call();
    let mut rec = Recording::new(MemFile::default(), RecordingConfig::default()).unwrap();
    let ogg = MemFile::default();
    let mut alone =
        Recording::with_files(Files { wav: None, ogg: Some((ogg, 1)) }, RecordingConfig::default()).unwrap();
    let mut levels = Vec::new();
    for p in &pkts {
        rec.push(p.clone()).unwrap();
        alone.push(p.clone()).unwrap();
        levels.push((p.arrival, rec.stats().level_rms));
    }
    assert_eq!(levels[5].1, None, "no level before the first 200 ms");
    let at = |ms: u64| levels.iter().rev().find(|(t, _)| *t <= Duration::from_millis(ms)).and_then(|l| l.1);
    let tone = at(1_500).expect("a level after 1.5 s");
    let full = Tone::new(440.0).frames(0, 50);
    let expect = rms(&decode_ogg_opus(&ogg_of(&full))) * 32768.0;
    assert!((f64::from(tone) / expect - 1.0).abs() < 0.2, "level {tone} against the tone's RMS {expect:.0}");
    // The pause (700 ms from frame `pause`) is written as silence when the packet after it
    // comes: a window inside it is silent.
    let after = Duration::from_millis(20 * (pause as u64 + 35) + 40);
    let quiet = levels.iter().find(|(t, _)| *t >= after).and_then(|l| l.1).expect("a level after the pause");
    assert!(quiet < 50, "the level in the pause is {quiet}");
    assert_eq!(alone.stats().level_rms, None);
}

/// An Ogg of `frames`, as a recording writes it.
fn ogg_of(frames: &[std::sync::Arc<[u8]>]) -> Vec<u8> {
    let ogg = MemFile::default();
    let mut rec =
        Recording::with_files(Files { wav: None, ogg: Some((ogg.clone(), 1)) }, RecordingConfig::default()).unwrap();
    for (i, payload) in frames.iter().enumerate() {
        let arrival = Duration::from_millis(20 * i as u64);
        rec.push(Packet { seq: i as u64, rtp_time: (i * FRAME) as u64, payload: payload.clone(), arrival }).unwrap();
    }
    rec.finish(Duration::from_millis(20 * frames.len() as u64)).unwrap();
    ogg.bytes()
}
