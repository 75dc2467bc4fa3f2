//! Tests: real Opus packets of a 440 Hz tone, recorded into an in-memory WAV.

use super::frames::has_lbrr;
use super::*;
use crate::media::mem_file::MemFile;
use crate::media::SAMPLE_RATE_HZ;
use crate::testkit::audio::{dominant_hz, rms, wav_from_bytes, Tone};
use crate::testkit::rng::Rng;
use std::io::Cursor;

const FRAME: usize = 960;
const TONE_HZ: f64 = 440.0;
const AMP: f64 = 0.3;
const SEQ0: u64 = 70_000;
const RTP0: u64 = 5_000_000_000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `frames` consecutive 20 ms Opus packets of a continuous 440 Hz tone.
fn encode_tone(frames: usize, stereo: bool) -> Vec<Arc<[u8]>> {
    Tone { stereo, ..Tone::new(TONE_HZ) }.frames(0, frames)
}

/// Packets for `payloads`, frame `i` at rtp RTP0 + 960 i, seq SEQ0 + i, and
/// arrival `start + 20 ms * i + jitter` (jitter uniform in 0..max_jitter_ms,
/// none on the first packet).
fn packets(payloads: &[Arc<[u8]>], start: Duration, max_jitter_ms: u64, rng: &mut Rng) -> Vec<Packet> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let jitter = if i == 0 || max_jitter_ms == 0 { 0 } else { rng.below(max_jitter_ms) };
            Packet {
                seq: SEQ0 + i as u64,
                rtp_time: RTP0 + (i * FRAME) as u64,
                payload: p.clone(),
                arrival: start + ms(20 * i as u64 + jitter),
            }
        })
        .collect()
}

/// Records `pkts` in push order with `config` and finishes at `end`.
fn record_with(pkts: &[Packet], end: Duration, config: RecordingConfig) -> (Vec<i16>, RecordingStats, Vec<u8>) {
    let mut cur = Cursor::new(Vec::new());
    let mut rec = Recording::new(&mut cur, config).unwrap();
    for p in pkts {
        rec.push(p.clone()).unwrap();
    }
    let stats = rec.finish(end).unwrap();
    let bytes = cur.into_inner();
    (read_wav(&bytes), stats, bytes)
}

fn record(pkts: &[Packet], end: Duration) -> (Vec<i16>, RecordingStats, Vec<u8>) {
    record_with(pkts, end, RecordingConfig::default())
}

/// The samples of a WAV the recorder wrote (48 kHz mono s16, or the test fails).
fn read_wav(bytes: &[u8]) -> Vec<i16> {
    let (spec, samples) = wav_from_bytes(bytes);
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, SAMPLE_RATE_HZ, 16));
    assert_eq!(spec.sample_format, hound::SampleFormat::Int);
    samples
}

/// Frequency (Hz) of the strongest component of one second of samples starting at `from`.
fn dominant_freq(s: &[i16], from: usize) -> f64 {
    dominant_hz(&s[from..from + SAMPLE_RATE_HZ as usize], SAMPLE_RATE_HZ)
}

fn assert_tone(s: &[i16], from: usize, what: &str) {
    let f = dominant_freq(s, from);
    assert!((f - TONE_HZ).abs() <= 3.0, "{what}: dominant frequency {f} Hz");
}

/// Asserts every 20 ms block of `s[from..to]` has RMS above `min`.
fn assert_no_holes(s: &[i16], from: usize, to: usize, min: f64, what: &str) {
    for (i, block) in s[from..to].chunks(FRAME).enumerate() {
        let r = rms(block);
        assert!(r > min, "{what}: block at {} ms has RMS {r:.4}", (from + i * FRAME) / 48);
    }
}

/// Longest run of exact zeros: (start, length).
fn longest_zero_run(s: &[i16]) -> (usize, usize) {
    let (mut best, mut cur_start, mut cur_len) = ((0, 0), 0, 0);
    for (i, &v) in s.iter().enumerate() {
        if v == 0 {
            if cur_len == 0 {
                cur_start = i;
            }
            cur_len += 1;
            if cur_len > best.1 {
                best = (cur_start, cur_len);
            }
        } else {
            cur_len = 0;
        }
    }
    best
}

const IN_RMS: f64 = AMP / std::f64::consts::SQRT_2;

#[test]
fn clean_call() {
    let mut rng = Rng::new(0x1234_5678);
    let pkts = packets(&encode_tone(150, false), ms(0), 15, &mut rng);
    let end = Duration::from_nanos(3_123_456_789);
    let (s, stats, _) = record(&pkts, end);
    assert_eq!(s.len(), 149_925, "floor(3.123456789 * 48000)");
    assert_eq!(stats.samples_written, s.len() as u64);
    assert_tone(&s, 48_000, "middle");
    let r = rms(&s[24_000..120_000]);
    assert!((r / IN_RMS - 1.0).abs() < 0.3, "rms {r} vs input {IN_RMS}");
    let expect = RecordingStats {
        packets: 150,
        recorded: 150,
        samples_written: s.len() as u64,
        silence_samples: stats.silence_samples,
        level_rms: stats.level_rms,
        ..Default::default()
    };
    assert_eq!(stats, expect);
    // The last 200 ms window ends in the silence after the last packet.
    assert!(stats.level_rms.is_some());
    // Silence only after the last packet (3.0 s .. 3.1234 s).
    assert_eq!(stats.silence_samples, 149_925 - 150 * 960);
}

#[test]
fn random_loss_is_concealed() {
    let seed = 0x9e37_79b9_7f4a_7c15;
    let mut rng = Rng::new(seed);
    let all = packets(&encode_tone(150, false), ms(0), 10, &mut rng);
    let last = all.len() - 1;
    let mut dropped = 0;
    let mut previous_dropped = false;
    // Single losses only (never two in a row), so every loss is short by construction.
    let kept: Vec<Packet> = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            let drop = *i != 0 && *i != last && !previous_dropped && rng.below(100) < 10;
            previous_dropped = drop;
            dropped += drop as u64;
            !drop
        })
        .map(|(_, p)| p)
        .collect();
    let (s, stats, _) = record(&kept, ms(3_000));
    assert_eq!(s.len(), 144_000, "seed {seed:#x}");
    assert!(dropped > 5, "seed {seed:#x}: only {dropped} dropped");
    assert_eq!(stats.lost, dropped, "seed {seed:#x}: {stats:?}");
    // libopus only codes FEC (LBRR) while its VAD deems the input active; on a
    // steady tone that holds for the first ~0.65 s, so only losses there get FEC.
    assert!(stats.concealed_fec > 0, "seed {seed:#x}: {stats:?}");
    assert_eq!(stats.late + stats.duplicates + stats.decode_errors, 0, "seed {seed:#x}");
    // Every loss here is short, so all of it is concealed: no silence at all.
    assert_eq!(stats.silence_samples, 0, "seed {seed:#x}: {stats:?}");
    assert!(stats.concealed_samples >= dropped * 960, "seed {seed:#x}: {stats:?}");
    assert_tone(&s, 48_000, &format!("seed {seed:#x}"));
    // PLC of a steady tone fades (to ~-20 dB after 40 ms), but is never a hole.
    assert_no_holes(&s, 24_000, 120_000, 0.01, &format!("seed {seed:#x}"));
}

#[test]
fn padding_packets_take_their_sequence_number_and_are_not_loss() {
    // Firefox, a few seconds into a call, sends RTP packets whose payload is all padding:
    // a sequence number of their own, the last audio's timestamp, nothing to decode.
    let payloads = encode_tone(150, false);
    let mut rng = Rng::new(9);
    let audio = packets(&payloads, ms(0), 0, &mut rng);
    let (clean, clean_stats, _) = record(&audio, ms(3000));
    let mut with_padding = Vec::new();
    let mut seq = SEQ0;
    for (i, p) in audio.iter().enumerate() {
        with_padding.push(Packet { seq, ..p.clone() });
        seq += 1;
        if i % 10 == 9 {
            for k in 0..3 {
                let padding =
                    Packet { seq, rtp_time: p.rtp_time, payload: Arc::from(&[][..]), arrival: p.arrival + ms(k) };
                with_padding.push(padding);
                seq += 1;
            }
        }
    }
    let (samples, stats, _) = record(&with_padding, ms(3000));
    assert_eq!(stats.padding, 45, "{stats:?}");
    assert_eq!(stats.lost, 0, "padding counted as loss: {stats:?}");
    assert_eq!((stats.concealed_plc, stats.concealed_fec), (0, 0), "{stats:?}");
    assert_eq!(stats.recorded, clean_stats.recorded);
    assert_eq!(samples, clean, "padding changed the audio");
    // A packet that is really missing is still loss, padding or not.
    with_padding.retain(|p| p.seq != SEQ0 + 52); // audio frame 40
    let (_, stats, _) = record(&with_padding, ms(3000));
    assert_eq!((stats.lost, stats.padding), (1, 45), "{stats:?}");
}

#[test]
fn reordering_and_duplicates_within_depth() {
    let mut rng = Rng::new(42);
    let ordered = packets(&encode_tone(150, false), ms(0), 0, &mut rng);
    let (clean, _, _) = record(&ordered, ms(3_000));
    let mut shuffled = ordered.clone();
    // Swap random neighbours (keeping the anchoring first packet) and
    // delay each swapped packet's arrival by up to 300 ms.
    for i in 1..shuffled.len() - 1 {
        if rng.below(4) == 0 {
            shuffled.swap(i, i + 1);
        }
    }
    let mut pushes = Vec::new();
    let mut dups = 0;
    for (i, p) in shuffled.iter().enumerate() {
        let mut p = p.clone();
        p.arrival = ms(20 * i as u64);
        pushes.push(p.clone());
        if i % 7 == 3 {
            p.arrival += ms(rng.below(300));
            pushes.push(p);
            dups += 1;
        }
    }
    // A duplicate of an already written packet is a duplicate, not late.
    let mut again = ordered[60].clone();
    again.arrival = ms(20 * 149);
    pushes.push(again);
    dups += 1;
    let (s, stats, _) = record(&pushes, ms(3_000));
    assert_eq!(s.len(), clean.len());
    assert_eq!(stats.duplicates, dups);
    assert_eq!(stats.late + stats.lost, 0, "{stats:?}");
    assert!(s == clean, "reordered output differs from in-order output");
    assert_tone(&s, 48_000, "reordered");
}

#[test]
fn dtx_pause_is_silence() {
    let mut rng = Rng::new(7);
    let mut pkts = packets(&encode_tone(100, false), ms(0), 10, &mut rng);
    for p in &mut pkts[50..] {
        p.rtp_time += 96_000;
        p.arrival += ms(2_000);
    }
    let (s, stats, _) = record(&pkts, ms(4_000));
    assert_eq!(s.len(), 192_000);
    assert_eq!(stats.lost, 0);
    let (start, len) = longest_zero_run(&s);
    assert!(start.abs_diff(48_000) <= 960, "pause starts at {start}");
    assert!(len.abs_diff(96_000) <= 960, "pause is {len} samples");
    assert_tone(&s, 0, "before pause");
    assert_tone(&s, 144_000, "after pause");
}

#[test]
fn in_order_audio_is_written_at_once() {
    let mut rng = Rng::new(98);
    let pkts = packets(&encode_tone(100, false), ms(0), 10, &mut rng);
    let mut cur = Cursor::new(Vec::new());
    let mut rec = Recording::new(&mut cur, RecordingConfig::default()).unwrap();
    for p in &pkts {
        rec.push(p.clone()).unwrap();
        // Everything but the last two frames (one of them still in flight) is in the file:
        // a killed process would lose 40 ms, not the jitter depth.
        let behind = samples_floor(p.arrival).saturating_sub(rec.samples_written());
        assert!(behind <= 2 * FRAME as u64, "{behind} samples behind at {:?}", p.arrival);
    }
    let stats = rec.finish(ms(2_000)).unwrap();
    assert_eq!(stats.samples_written, 96_000);
    assert_eq!(stats.concealed_samples, 0);
    assert_tone(&read_wav(&cur.into_inner()), 4_800, "whole call");
}

#[test]
fn finish_drains_the_buffer() {
    let mut rng = Rng::new(99);
    // Packet 60 (1.2 s) is lost: everything behind the gap waits for the jitter depth.
    let mut pkts = packets(&encode_tone(100, false), ms(0), 10, &mut rng);
    pkts.remove(60);
    let mut cur = Cursor::new(Vec::new());
    let mut rec = Recording::new(&mut cur, RecordingConfig::default()).unwrap();
    for p in &pkts {
        rec.push(p.clone()).unwrap();
    }
    let pending = 96_000 - rec.samples_written();
    assert!(pending >= 36_000, "only {pending} samples were still buffered");
    let stats = rec.finish(ms(2_050)).unwrap();
    let s = read_wav(&cur.into_inner());
    assert_eq!(s.len(), 98_400);
    assert_eq!(stats.samples_written, 98_400);
    assert_eq!(stats.lost, 1);
    assert_tone(&s, 48_000, "last second");
    // The concealed frame keeps a lower level (see `loss_without_fec_data_uses_plc`), not a hole.
    assert_no_holes(&s, 48_000, 96_000, 0.05, "last second");
}

#[test]
fn hanging_up_mid_frame_keeps_the_last_frame_whole() {
    let mut rng = Rng::new(5);
    // 1.51 s ends in the middle of the 76th 20 ms frame; the call ends before the rest arrives.
    let pkts: Vec<Packet> =
        packets(&encode_tone(100, false), ms(0), 10, &mut rng).into_iter().filter(|p| p.arrival <= ms(1_510)).collect();
    let sent = pkts.len() as u64;
    let (s, stats, _) = record(&pkts, ms(1_510));
    // Every frame that arrived is in the file, the last one too: 76 × 960 samples.
    assert_eq!((stats.recorded, sent), (76, 76));
    assert_eq!(s.len(), 72_960);
    assert_eq!(stats.samples_written, 72_960);
    assert_eq!(stats.silence_samples, 0);
    assert_no_holes(&s, 48_000, 72_960, 0.1, "up to the end");
}

#[test]
fn garbage_never_panics() {
    let tone = encode_tone(50, false);
    let mut total = RecordingStats::default();
    for depth in [0, 20, 1_000, 700_000] {
        // wild: seq/rtp alternate u64::MAX/0 and random extremes; plausible:
        // roughly consecutive headers (gaps, reordering, overlap) with
        // garbage payloads, so decoding and concealment paths are hit too.
        for wild in [true, false] {
            let seed = 0xdead_beef_u64 + depth + wild as u64;
            let mut rng = Rng::new(seed);
            let config = RecordingConfig { jitter_depth: ms(depth) };
            let mut cur = Cursor::new(Vec::new());
            let mut rec = Recording::new(&mut cur, config).unwrap();
            for i in 0..600u64 {
                let payload: Arc<[u8]> = match rng.below(4) {
                    0 => tone[rng.below(50) as usize].clone(),
                    1 if wild => Arc::from(Vec::new()),
                    _ => (0..rng.below(400)).map(|_| rng.next_u64() as u8).collect(),
                };
                let pick = |r: &mut Rng| match r.below(5) {
                    0 => u64::MAX,
                    1 => 0,
                    2 => u64::MAX - r.below(3),
                    3 => r.next_u64(),
                    _ => SEQ0 + i + r.below(5),
                };
                let (seq, rtp_time) = match (wild, i % 2) {
                    (true, 0) => (u64::MAX, 0),
                    (true, _) => (0, u64::MAX),
                    (false, _) => {
                        ((i + 2 + rng.below(3) * 2).saturating_sub(rng.below(5)), RTP0 + 960 * i + rng.below(1_500))
                    }
                };
                let (seq, rtp_time) =
                    if wild && rng.below(3) == 0 { (pick(&mut rng), pick(&mut rng)) } else { (seq, rtp_time) };
                // Mostly forward with jitter, sometimes backwards.
                let arrival = ms((20 * i + rng.below(200)).saturating_sub(rng.below(8) * 100));
                rec.push(Packet { seq, rtp_time, payload, arrival }).unwrap();
                if i % 50 == 0 {
                    rec.advance(ms(rng.below(12_000))).unwrap();
                    rec.flush().unwrap();
                }
            }
            assert!(matches!(rec.advance(Duration::MAX), Err(RecordingError::TooLong { .. })));
            let stats = rec.finish(ms(15_000)).unwrap();
            let s = read_wav(&cur.into_inner());
            // At least the call; beyond it only by the bounded lead (10 s + a quarter).
            assert!((720_000..=720_000 + 480_000 + 180_000).contains(&s.len()), "seed {seed:#x}: {}", s.len());
            assert_eq!(stats.samples_written, s.len() as u64, "seed {seed:#x}");
            assert_eq!(stats.packets, 600, "seed {seed:#x}");
            total.duplicates += stats.duplicates;
            total.late += stats.late;
            total.lost = total.lost.saturating_add(stats.lost);
            total.overflow += stats.overflow;
            total.reanchors += stats.reanchors;
            total.decode_errors += stats.decode_errors;
            total.concealed_plc += stats.concealed_plc;
        }
    }
    // The input really exercised the error paths.
    assert!(total.duplicates > 0 && total.late > 0 && total.lost > 0, "{total:?}");
    assert!(total.overflow > 0 && total.reanchors > 0, "{total:?}");
    assert!(total.decode_errors > 0 && total.concealed_plc > 0, "{total:?}");
}

#[test]
fn stereo_opus_decodes_to_mono() {
    let mut rng = Rng::new(11);
    let pkts = packets(&encode_tone(100, true), ms(0), 10, &mut rng);
    assert_eq!(opus::packet::get_nb_channels(&pkts[10].payload).unwrap(), opus::Channels::Stereo);
    let (s, stats, _) = record(&pkts, ms(2_000));
    assert_eq!(s.len(), 96_000);
    assert_eq!(stats.decode_errors, 0);
    assert_tone(&s, 24_000, "stereo");
    let r = rms(&s[24_000..72_000]);
    assert!((r / IN_RMS - 1.0).abs() < 0.3, "rms {r}");
}

#[test]
fn deterministic_output() {
    let run = || {
        let mut rng = Rng::new(3);
        let pkts: Vec<Packet> =
            packets(&encode_tone(100, false), ms(0), 30, &mut rng).into_iter().filter(|_| rng.below(10) != 0).collect();
        record(&pkts, ms(2_345)).2
    };
    let (a, b) = (run(), run());
    assert!(a == b, "two identical runs produced different WAV bytes");
}

#[test]
fn first_packet_late_start_is_silence() {
    let mut rng = Rng::new(13);
    let pkts = packets(&encode_tone(50, false), ms(300), 10, &mut rng);
    let (s, stats, _) = record(&pkts, ms(1_500));
    assert_eq!(s.len(), 72_000);
    let first = s.iter().position(|&v| v != 0).unwrap();
    assert!((14_400..14_400 + 480).contains(&first), "tone starts at {first}");
    assert!(stats.silence_samples >= 14_400);
    assert_no_holes(&s, 14_400 + 960, 14_400 + 48_000, 0.1, "after 300 ms");
}

#[test]
fn packet_later_than_depth_is_late_and_recovered_by_fec() {
    let mut rng = Rng::new(17);
    let mut pkts = packets(&encode_tone(150, false), ms(0), 5, &mut rng);
    // Packet 20 (0.4 s; its successor carries LBRR for it) arrives 1.5 s late.
    let delayed = pkts.remove(20);
    pkts.push(Packet { arrival: delayed.arrival + ms(1_500), ..delayed });
    let (s, stats, _) = record(&pkts, ms(3_000));
    assert_eq!(s.len(), 144_000);
    assert_eq!((stats.late, stats.lost, stats.concealed_fec, stats.concealed_plc), (1, 1, 1, 0), "{stats:?}");
    assert_eq!(stats.concealed_samples, 960);
    // FEC keeps the level (PLC alone would drop to ~0.09 here).
    assert_no_holes(&s, 17 * 960, 24 * 960, 0.18, "around the loss");
}

#[test]
fn loss_without_fec_data_uses_plc() {
    let mut rng = Rng::new(23);
    let mut pkts = packets(&encode_tone(150, false), ms(0), 5, &mut rng);
    // At 1.2 s the encoder's VAD has classified the steady tone as inactive
    // and stopped coding LBRR, so FEC decoding can only run PLC.
    assert!(!has_lbrr(&pkts[61].payload));
    pkts.remove(60);
    let (s, stats, _) = record(&pkts, ms(3_000));
    assert_eq!((stats.lost, stats.concealed_fec, stats.concealed_plc), (1, 0, 1), "{stats:?}");
    assert_eq!((stats.concealed_samples, stats.silence_samples), (960, 0));
    assert_no_holes(&s, 24_000, 120_000, 0.03, "around the loss");
}

#[test]
fn long_outage_caps_plc_then_silence() {
    let mut rng = Rng::new(19);
    let mut pkts = packets(&encode_tone(150, false), ms(0), 5, &mut rng);
    pkts.drain(50..75); // 500 ms lost, seq skipped
    let (s, stats, _) = record(&pkts, ms(3_000));
    assert_eq!(s.len(), 144_000);
    assert_eq!(stats.lost, 25);
    // 120 ms of PLC (6 × 20 ms), silence, then the frame before the next
    // packet via FEC decoding (which is PLC here: no LBRR on a steady tone).
    assert_eq!(stats.concealed_fec + stats.concealed_plc, 7, "{stats:?}");
    assert_eq!(stats.concealed_samples, 5_760 + 960, "{stats:?}");
    assert_eq!(stats.silence_samples, 24_000 - 5_760 - 960, "{stats:?}");
    let (start, len) = longest_zero_run(&s);
    assert!(start.abs_diff(48_000 + 5_760) <= 960, "silence starts at {start}");
    assert!(len.abs_diff(24_000 - 5_760 - 960) <= 960, "silence is {len}");
}

#[test]
fn a_quiet_caller_gets_silence_from_the_server_clock_after_the_hold() {
    let shared = MemFile::default();
    let mut rec = Recording::new(shared.clone(), RecordingConfig::default()).unwrap();
    // Not heard from for 3 s: a stall, nothing is written yet.
    rec.advance(ms(3_000)).unwrap();
    assert_eq!(rec.samples_written(), 0);
    // 8 s: silence up to 5 s (the hold) behind the clock.
    rec.advance(ms(8_000)).unwrap();
    rec.advance(ms(7_000)).unwrap(); // backwards: ignored
    assert_eq!(rec.samples_written(), 144_000);
    assert_eq!(rec.stats().silence_samples, 144_000);
    // The first packet goes where it arrived (8 s), the next one right after it.
    let tone = encode_tone(2, false);
    let p =
        |seq: u64, rtp_time: u64, i: usize, t: u64| Packet { seq, rtp_time, payload: tone[i].clone(), arrival: ms(t) };
    rec.push(p(1, 0, 0, 8_000)).unwrap();
    rec.push(p(2, 960, 1, 8_020)).unwrap();
    assert_eq!(rec.samples_written(), 385_920);
    assert_eq!((rec.stats().recorded, rec.stats().late), (2, 0));
    // Mid-call flush: the bytes so far are a complete, readable WAV.
    rec.flush().unwrap();
    let s = read_wav(&shared.bytes());
    assert_eq!(s.len(), 385_920);
    assert!(s[..384_000].iter().all(|&v| v == 0));
    assert!(rms(&s[384_000 + 480..385_920]) > 0.05);
    // Quiet again from 8.02 s: at 15 s the silence reaches 1.98 s past the audio.
    rec.advance(ms(15_000)).unwrap();
    assert_eq!(rec.samples_written(), 385_920 + 95_040);
    let stats = rec.finish(ms(16_000)).unwrap();
    assert_eq!(stats.samples_written, 768_000);
    assert_eq!(read_wav(&shared.bytes()).len(), 768_000);
}

#[test]
fn jitter_buffer_is_bounded() {
    let tone = encode_tone(1, false);
    let mut cur = Cursor::new(Vec::new());
    let mut rec = Recording::new(&mut cur, RecordingConfig::default()).unwrap();
    // Seq 1 never comes: 2000 packets behind the gap, all arriving at once. Only
    // 2 * (1 s / 2.5 ms) + 64 = 864 are kept.
    rec.push(Packet { seq: 0, rtp_time: 0, payload: tone[0].clone(), arrival: ms(0) }).unwrap();
    for i in 2..2_002 {
        let payload = tone[0].clone();
        rec.push(Packet { seq: i, rtp_time: i * 960, payload, arrival: ms(0) }).unwrap();
    }
    assert_eq!(rec.buffered(), 864);
    assert_eq!(rec.stats().overflow, 2_000 - 864);
    let stats = rec.finish(ms(20_000)).unwrap();
    assert_eq!(stats.recorded, 865, "every kept frame is written at the end");
    assert_eq!(stats.samples_written, 960_000);
}

mod drift;
