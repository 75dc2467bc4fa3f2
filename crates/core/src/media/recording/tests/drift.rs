//! The caller's clock against the server's: slow and fast senders, stalls with a backlog,
//! drift taken up in pauses, timestamps that jump. Every frame that arrived must be in
//! the file, with no hole inside audio the caller sent continuously.

use super::*;
use crate::media::SAMPLE_RATE_HZ;

/// How a caller sends, as the recorder sees it.
#[derive(Clone)]
struct Caller {
    /// Its media clock's speed against real time (0.95: slow).
    rate: f64,
    /// Seconds of wall time it talks (the call ends then).
    seconds: f64,
    /// (start, length) in media seconds of stretches with no packets but running RTP (DTX).
    pauses: Vec<(f64, f64)>,
    /// (at, length) in wall seconds: it sends nothing, then its backlog at once.
    stalls: Vec<(f64, f64)>,
    jitter_ms: u64,
}

impl Caller {
    fn new(rate: f64, seconds: f64) -> Self {
        Caller { rate, seconds, pauses: Vec::new(), stalls: Vec::new(), jitter_ms: 15 }
    }

    /// The packets that arrive before the call ends, in arrival order, and the audio frames
    /// among them.
    fn packets(&self, tone: &[Arc<[u8]>]) -> Vec<Packet> {
        let mut rng = Rng::new(0x5eed ^ (self.rate * 1e6) as u64);
        let mut out = Vec::new();
        let mut seq = SEQ0;
        for i in 0u64.. {
            let media = i as f64 * 0.02;
            let mut sent = media / self.rate;
            if sent >= self.seconds {
                break;
            }
            if self.pauses.iter().any(|&(a, l)| media >= a && media < a + l) {
                continue;
            }
            for &(at, len) in &self.stalls {
                if sent >= at && sent < at + len {
                    sent = at + len + 1e-6 * i as f64;
                }
            }
            let jitter = if self.jitter_ms == 0 { 0 } else { rng.below(self.jitter_ms * 1000) };
            let arrival = Duration::from_secs_f64(sent) + Duration::from_micros(30_000 + jitter);
            let payload = tone[i as usize % tone.len()].clone();
            out.push(Packet { seq, rtp_time: RTP0 + i * FRAME as u64, payload, arrival });
            seq += 1;
        }
        out.sort_by_key(|p| p.arrival);
        out.retain(|p| p.arrival.as_secs_f64() < self.seconds);
        out
    }
}

struct Recorded {
    samples: Vec<i16>,
    stats: RecordingStats,
    sent: u64,
    most_buffered: usize,
}

/// Records `caller` with the worker's cadence (advance every 200 ms) and hangs up at its end.
fn record_caller(caller: &Caller) -> Recorded {
    let tone = encode_tone(50, false);
    let pkts = caller.packets(&tone);
    let mut cur = Cursor::new(Vec::new());
    let mut rec = Recording::new(&mut cur, RecordingConfig::default()).unwrap();
    let mut most_buffered = 0;
    let mut tick = ms(200);
    for p in &pkts {
        while tick < p.arrival {
            rec.advance(tick).unwrap();
            tick += ms(200);
        }
        rec.push(p.clone()).unwrap();
        most_buffered = most_buffered.max(rec.buffered());
    }
    let stats = rec.finish(Duration::from_secs_f64(caller.seconds)).unwrap();
    Recorded { samples: read_wav(&cur.into_inner()), stats, sent: pkts.len() as u64, most_buffered }
}

/// Samples from the first to the last non-zero one.
fn audio_span(s: &[i16]) -> (usize, usize) {
    let first = s.iter().position(|&v| v != 0).unwrap();
    let last = s.iter().rposition(|&v| v != 0).unwrap();
    (first, last + 1)
}

/// Every frame in the file once, no hole inside the audio: the core promise.
fn assert_every_frame(r: &Recorded, what: &str) {
    let st = &r.stats;
    assert_eq!(st.recorded, r.sent, "{what}: {st:?}");
    assert_eq!((st.late, st.overflow, st.duplicates, st.lost), (0, 0, 0, 0), "{what}: {st:?}");
    assert_eq!(st.concealed_samples, 0, "{what}: {st:?}");
}

fn assert_no_hole(s: &[i16], from: usize, to: usize, what: &str) {
    let (at, len) = longest_zero_run(&s[from..to]);
    assert!(len < 48, "{what}: {len} zero samples at {:.3} s", (from + at) as f64 / f64::from(SAMPLE_RATE_HZ));
}

#[test]
fn slow_and_fast_clocks_keep_every_frame() {
    for rate in [0.90, 0.95, 1.05, 1.10] {
        let caller = Caller::new(rate, 30.0);
        let r = record_caller(&caller);
        let what = format!("{rate}x");
        assert_every_frame(&r, &what);
        let (first, end) = audio_span(&r.samples);
        assert_no_hole(&r.samples, first, end, &what);
        let audio = r.sent as usize * FRAME;
        assert!(end - first + 48 >= audio, "{what}: {} samples of audio for {audio} sent", end - first);
        if rate < 1.0 {
            // The file falls behind during continuous speech and is padded to the call.
            assert_eq!(r.samples.len(), 1_440_000, "{what}");
        } else {
            // The audio wins: the file runs past the call by the caller's surplus.
            assert_eq!(r.samples.len(), end, "{what}: nothing after the audio");
            assert!(r.samples.len() > 1_440_000 + (audio as f64 * (1.0 - 1.0 / rate)) as usize - 4_800, "{what}");
        }
        // Memory does not grow with drift: in-order packets never wait.
        assert!(r.most_buffered <= 1, "{what}: {} packets buffered", r.most_buffered);
        let ppm = r.stats.clock_ppm.expect("a rate after 30 s");
        let want = ((rate - 1.0) * 1e6) as i32;
        assert!((ppm - want).abs() < 2_000, "{what}: {ppm} ppm, want {want}");
    }
}

#[test]
fn a_stall_and_its_backlog_join_without_a_hole() {
    let mut caller = Caller::new(1.0, 20.0);
    caller.stalls = vec![(8.0, 3.0)];
    let r = record_caller(&caller);
    assert_every_frame(&r, "3 s stall");
    let (first, end) = audio_span(&r.samples);
    assert_no_hole(&r.samples, first, end, "3 s stall");
    assert_eq!(r.stats.reanchors, 0);
    // The backlog was captured in real time: the file is as long as the call (or its last
    // frame, which may run past the hang-up by up to a frame and the network's jitter).
    assert_eq!(r.samples.len(), end.max(960_000));
    assert!(end < 960_000 + 960 + 720, "audio ends at {end}");
}

#[test]
fn a_stall_longer_than_the_hold_gets_silence_then_its_whole_backlog() {
    let mut caller = Caller::new(1.0, 30.0);
    caller.stalls = vec![(8.0, 9.0)];
    let r = record_caller(&caller);
    assert_every_frame(&r, "9 s stall");
    assert_eq!(r.stats.reanchors, 1, "{:?}", r.stats);
    // Silence from the server's clock covered 9 − 5 = 4 s of the stall; the backlog follows.
    let (at, len) = longest_zero_run(&r.samples);
    assert!(at.abs_diff(8 * 48_000 + 1_440) < 2_000, "silence at {at}");
    assert!(len.abs_diff(4 * 48_000) < 2_000, "silence of {len}");
    let (first, end) = audio_span(&r.samples);
    assert_no_hole(&r.samples, first, at, "before the stall");
    assert_no_hole(&r.samples, at + len, end, "the backlog and after");
    // The file is the audio and that silence, and at least the call.
    assert!((end - first).abs_diff(r.sent as usize * FRAME + len) < 48, "{} vs {}", end - first, r.sent);
    assert_eq!(r.samples.len(), end.max(30 * 48_000));
}

#[test]
fn drift_is_taken_up_in_pauses() {
    for rate in [0.999, 1.001] {
        // Ten minutes, 1000 ppm off (600 ms by the end), a 1 s pause every 30 s.
        let mut caller = Caller::new(rate, 600.0);
        caller.pauses = (1..20).map(|k| (30.0 * f64::from(k), 1.0)).collect();
        let r = record_caller(&caller);
        let what = format!("{rate}x");
        assert_every_frame(&r, &what);
        // Audio ends where the last packet arrived (30 ms of network, up to 30 s of drift
        // since the last pause), not 600 ms off.
        let (_, end) = audio_span(&r.samples);
        let wall_end = 600.0 * f64::from(SAMPLE_RATE_HZ);
        let off = end as f64 - wall_end;
        assert!(
            off.abs() < 0.1 * f64::from(SAMPLE_RATE_HZ),
            "{what}: audio ends {:.3} s off the call's end",
            off / f64::from(SAMPLE_RATE_HZ)
        );
        assert!(r.samples.len() <= 600 * 48_000 + 4_800, "{what}: file {} samples", r.samples.len());
        // Slow: pauses were lengthened; fast: shortened.
        assert_eq!(r.stats.drift_samples.signum(), if rate < 1.0 { 1 } else { -1 }, "{what}: {:?}", r.stats);
        let ppm = r.stats.clock_ppm.unwrap();
        assert!((ppm - ((rate - 1.0) * 1e6) as i32).abs() < 100, "{what}: {ppm} ppm");
    }
}

#[test]
fn timestamps_that_jump_back_or_far_ahead_keep_the_audio() {
    let tone = encode_tone(50, false);
    let mut cur = Cursor::new(Vec::new());
    let mut rec = Recording::new(&mut cur, RecordingConfig::default()).unwrap();
    let mut push = |i: u64, rtp_time: u64| {
        let p = Packet { seq: i, rtp_time, payload: tone[i as usize % 50].clone(), arrival: ms(20 * i) };
        rec.push(p).unwrap();
    };
    (0..100).for_each(|i| push(i, RTP0 + i * 960));
    // The sender restarts its clock an hour back, then leaps ten hours ahead.
    (100..200).for_each(|i| push(i, RTP0 - 3_600 * 48_000 + i * 960));
    (200..300).for_each(|i| push(i, RTP0 + 36_000 * 48_000 + i * 960));
    let stats = rec.finish(ms(6_000)).unwrap();
    assert_eq!(stats.recorded, 300);
    assert_eq!(stats.reanchors, 1, "{stats:?}");
    // The leap is silence only up to where the packet arrived: no more than a frame.
    assert!(stats.silence_samples <= 960, "{stats:?}");
    let s = read_wav(&cur.into_inner());
    assert_eq!(s.len(), 288_000);
    assert_no_hole(&s, 960, 288_000, "whole call");
}
