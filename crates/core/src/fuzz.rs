//! Entry points for the cargo-fuzz targets in `fuzz/`: each target is a thin wrapper over one
//! function here, so the logic compiles (and its corpus runs, see the tests below) in normal
//! CI. Every function must return normally for any input: a panic is a bug.
#![allow(clippy::disallowed_methods)] // fuzz drivers build sessions with a real clock origin

use std::io::Cursor;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::engine::{accept_offer, Input, Output, SessionId};
use crate::media::capture::{self, Op};
use crate::media::recording::{Files, Packet, Recording, RecordingConfig};
use crate::media::SAMPLE_RATE_HZ;

use crate::testkit::SERVER;

/// Signalling: a request body through the JSON parser and, if it holds an offer, through
/// offer handling (SDP parsing, negotiation, answer). Input not starting with `{` is taken
/// as the SDP itself, so the fuzzer reaches the SDP parser directly too.
pub fn signalling(data: &[u8]) {
    let sdp = if data.first() == Some(&b'{') {
        match crate::engine::offer_sdp(data) {
            Ok(sdp) => sdp,
            Err(e) => {
                assert!(!e.is_empty(), "a refused offer body must say why");
                return;
            }
        }
    } else {
        String::from_utf8_lossy(data).into_owned()
    };
    if let Ok(accepted) = accept_offer(&sdp, crate::testkit::params(), SessionId::from_u128(1), Instant::now()) {
        assert!(accepted.answer.contains("a=ice-lite"), "an accepted offer must get an ICE-lite answer");
    }
}

/// The engine with one live (connected) session, fed arbitrary datagrams and timeouts.
///
/// Input: records of `[op][len u16 LE][len bytes]`; op % 4 = 0: datagram from the caller,
/// 1: datagram from a stranger, 2: time passes (first byte, in ms), 3: the caller hangs up.
pub fn engine_datagrams(data: &[u8]) {
    let Some((mut engine, _, mut now)) = crate::testkit::connected_pair(crate::media::Ptime::Ms20) else { return };
    let server: SocketAddr = SERVER.parse().expect("constant address");
    let peer: SocketAddr = crate::testkit::PEER.parse().expect("constant address");
    let stranger: SocketAddr = "127.0.0.1:9".parse().expect("constant address");
    let mut rest = data;
    while rest.len() >= 3 {
        let op = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let bytes = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let _ = match op % 4 {
            0 | 1 => {
                let source = if op.is_multiple_of(4) { peer } else { stranger };
                engine.handle_input(now, Input::Datagram { source, destination: server, contents: bytes })
            }
            2 => {
                now += Duration::from_millis(u64::from(bytes.first().copied().unwrap_or(10)));
                engine.handle_input(now, Input::Timeout)
            }
            _ => engine.handle_input(now, Input::Hangup(SessionId::from_u128(1))),
        };
        while !matches!(engine.poll_output(), Output::Timeout(_)) {}
    }
    let _ = engine.handle_input(now, Input::Shutdown);
    while !matches!(engine.poll_output(), Output::Timeout(_)) {}
    assert!(engine.is_done(), "shutdown must end every session");
}

/// The recorder fed an arbitrary sequence of operations: arbitrary arrival times (any order,
/// stalls, bursts) and timestamp jumps both ways. After every step: the file never shrinks,
/// the jitter buffer stays within its bound. At the end: every packet is accounted for
/// exactly once (written, duplicate, late, refused, or padding: an empty payload that took
/// its place in the sequence; an empty payload that came late is late), no sequence number was
/// written twice, and the file is at least as long as the call and at most the bounded
/// lead longer. The Ogg/Opus written beside it (from the same packets, undecoded) is a
/// stream every packet of which decodes, exactly as long as the WAV.
///
/// Input: records, each relative to the previous packet; op % 4 = 0: packet
/// `[seq delta i8][rtp delta i32][arrival delta ms i16][len u8][payload]`,
/// 1: advance `[ms after the latest time u16]`, 2: flush, 3: finish `[ms u16]` (ends the input).
pub fn recording_ops(data: &[u8]) {
    let config = RecordingConfig { jitter_depth: Duration::from_millis(200) };
    let (mut wav, mut ogg) = (Cursor::new(Vec::new()), Cursor::new(Vec::new()));
    let files = Files { wav: Some(&mut wav), ogg: Some((&mut ogg, 1)) };
    let Ok(mut rec) = Recording::with_files(files, config) else { return };
    let mut r = Bytes(data);
    let (mut seq, mut rtp, mut arrival) = (1_000u64, 1u64 << 32, 0u64);
    let mut end_ms = 0u64;
    let mut empty = 0u64;
    let mut seqs = std::collections::BTreeSet::new();
    let mut written = 0;
    while let Some(op) = r.u8() {
        let result = match op % 4 {
            0 => {
                let (Some(ds), Some(dr), Some(da), Some(len)) = (r.u8(), r.u32(), r.u16(), r.u8()) else { break };
                seq = seq.saturating_add_signed(i64::from(ds as i8));
                rtp = rtp.saturating_add_signed(i64::from(dr as i32));
                arrival = arrival.saturating_add_signed(i64::from(da as i16));
                end_ms = end_ms.max(arrival);
                let payload = r.take(usize::from(len));
                if payload.is_empty() {
                    empty += 1;
                } else {
                    seqs.insert(seq);
                }
                let p = Packet { seq, rtp_time: rtp, payload: payload.into(), arrival: Duration::from_millis(arrival) };
                rec.push(p)
            }
            1 => {
                end_ms += u64::from(r.u16().unwrap_or(0));
                rec.advance(Duration::from_millis(end_ms))
            }
            2 => rec.flush(),
            _ => {
                end_ms += u64::from(r.u16().unwrap_or(0));
                break;
            }
        };
        if result.is_err() {
            return;
        }
        assert!(rec.samples_written() >= written, "the write cursor moved backwards");
        written = rec.samples_written();
        assert!(rec.buffered() <= rec.max_buffered(), "the jitter buffer outgrew its bound");
    }
    let Ok(stats) = rec.finish(Duration::from_millis(end_ms)) else { return };
    let s = stats;
    let accounted = s.recorded + s.duplicates + s.late + s.overflow + s.padding;
    assert_eq!(accounted, s.packets, "every packet is accounted for exactly once: {s:?}");
    assert!(s.padding <= empty, "{} padding packets counted, {empty} sent: {s:?}", s.padding);
    assert!(s.recorded <= seqs.len() as u64, "a sequence number was written twice: {s:?}");
    let len = hound::WavReader::new(Cursor::new(wav.into_inner())).map(|w| w.duration()).expect("a finished WAV reads");
    let played = crate::testkit::audio::ogg_opus_samples(ogg.get_ref()).expect("a finished Ogg decodes");
    assert_eq!(played.len() as u64, u64::from(len), "the Ogg plays as long as the WAV: {s:?}");
    let end = end_ms * u64::from(SAMPLE_RATE_HZ) / 1000;
    assert!(u64::from(len) >= end, "the WAV is shorter than the call: {len} < {end}");
    // The lead bound (10 s and a quarter of the call ahead), plus the one frame that may
    // start just inside it.
    let most = end + 10 * u64::from(SAMPLE_RATE_HZ) + end / 4 + 5_760;
    assert!(u64::from(len) <= most, "the WAV runs {len} samples, more than {most}: {s:?}");
}

/// The capture parser and replay. Captures longer than a minute are skipped (replay would
/// legitimately write that much audio).
pub fn capture(data: &[u8]) {
    let Ok((_, ops)) = capture::parse(data) else { return };
    let too_long = ops.iter().any(|op| match op {
        Op::Packet(p) => p.arrival > Duration::from_secs(60),
        Op::Advance(t) | Op::End(t) => *t > Duration::from_secs(60),
        Op::Flush => false,
    });
    if !too_long {
        let _ = crate::media::recording::replay(data, Cursor::new(Vec::new()));
    }
}

struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).first().copied()
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).try_into().ok().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).try_into().ok().map(u32::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    //! Every committed seed and every crash the fuzzers found runs here, in normal CI.
    use str0m::media::{Direction, MediaKind};
    use str0m::{Candidate, Rtc};

    use super::*;

    fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no seeds for {target}");
        files
    }

    /// The seeds `write_seeds` makes, by fuzz target.
    const SEEDS: [(&str, &[&str]); 4] = [
        ("signalling", &["json_offer", "json_wrong_type", "sdp_audio", "sdp_audio_video", "sdp_firefox_pt"]),
        ("engine_datagrams", &["hangup", "mixed", "time_passes"]),
        ("recording_ops", &["opus_drift_stall_jumps", "opus_reordered_gap"]),
        ("capture", &["clean", "dtx"]),
    ];

    /// Every seed is committed and holds something (with TAPEDECK_WRITE_CORPUS=1 they are
    /// made afresh first).
    #[test]
    fn seeds_exist() {
        if std::env::var_os("TAPEDECK_WRITE_CORPUS").is_some() {
            write_seeds();
        }
        for (target, names) in SEEDS {
            let corpus = corpus(target);
            for name in names {
                let seed = corpus.iter().find(|(n, _)| n == name);
                assert!(seed.is_some_and(|(_, data)| !data.is_empty()), "no seed {target}/{name}");
            }
        }
    }

    /// Writes the seed corpora.
    fn write_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        let write = |t: &str, name: &str, data: &[u8]| {
            std::fs::create_dir_all(root.join(t)).unwrap();
            std::fs::write(root.join(t).join(name), data).unwrap();
        };
        // Signalling: real offers from str0m, as JSON and as bare SDP.
        let offer = |kinds: &[MediaKind]| {
            let mut rtc = Rtc::builder().build(Instant::now());
            rtc.add_local_candidate(Candidate::host(crate::testkit::PEER.parse().unwrap(), "udp").unwrap());
            let mut api = rtc.sdp_api();
            for &k in kinds {
                api.add_media(k, Direction::SendRecv, None, None, None);
            }
            api.apply().unwrap().0.to_sdp_string()
        };
        let audio = offer(&[MediaKind::Audio]);
        write("signalling", "json_offer", serde_json::json!({"type": "offer", "sdp": audio}).to_string().as_bytes());
        write("signalling", "sdp_audio", audio.as_bytes());
        write("signalling", "sdp_audio_video", offer(&[MediaKind::Audio, MediaKind::Video]).as_bytes());
        write("signalling", "sdp_firefox_pt", audio.replace("111", "109").as_bytes());
        write("signalling", "json_wrong_type", br#"{"type":"answer","sdp":"v=0"}"#);
        // Engine: STUN-, DTLS-, RTP- and RTCP-shaped datagrams, time, hang-up.
        let rec = |op: u8, bytes: &[u8]| {
            let mut v = vec![op];
            v.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            v.extend_from_slice(bytes);
            v
        };
        let stun = [&[0x00u8, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42][..], &[7; 12]].concat();
        let dtls = [&[0x16u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 12][..], &[1; 12]].concat();
        let rtp = [&[0x80u8, 0x6f, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef][..], &[0xf8; 40]].concat();
        let rtcp = [&[0x81u8, 0xc9, 0, 7][..], &[0; 28]].concat();
        let mut mix = Vec::new();
        for (op, b) in [(0, &stun), (1, &stun), (0, &dtls), (0, &rtp), (0, &rtcp), (2, &vec![50]), (0, &rtp)] {
            mix.extend(rec(op, b));
        }
        write("engine_datagrams", "mixed", &mix);
        write("engine_datagrams", "hangup", &[rec(0, &rtp), rec(3, &[])].concat());
        write("engine_datagrams", "time_passes", &[rec(2, &[200]), rec(2, &[255]), rec(0, &stun)].concat());
        // Recording: real Opus packets (each record relative to the previous one).
        let mut enc = opus::Encoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let mut out = vec![0u8; 255];
        let mut frames = Vec::new();
        for i in 0..20 {
            let pcm: Vec<i16> = (0..960).map(|j| ((f64::from(i * 960 + j) * 0.06).sin() * 8000.0) as i16).collect();
            let n = enc.encode(&pcm, &mut out).unwrap();
            frames.push(out[..n].to_vec());
        }
        let packet = |ops: &mut Vec<u8>, ds: i8, dr: i32, da: i16, frame: &[u8]| {
            ops.push(0u8);
            ops.push(ds as u8);
            ops.extend_from_slice(&dr.to_le_bytes());
            ops.extend_from_slice(&da.to_le_bytes());
            ops.push(frame.len() as u8);
            ops.extend_from_slice(frame);
        };
        // In order, one reordered pair, a gap, then finish.
        let mut ops = Vec::new();
        let mut prev = 0i32;
        for i in [0i32, 1, 3, 2, 5, 6, 7] {
            packet(&mut ops, (i - prev) as i8, (i - prev) * 960, ((i - prev) * 20).max(1) as i16, &frames[i as usize]);
            prev = i;
            if i == 3 {
                ops.extend_from_slice(&[1, 100, 0, 2]);
            }
        }
        ops.extend_from_slice(&[3, 0x2c, 0x01]);
        write("recording_ops", "opus_reordered_gap", &ops);
        // A slow clock (20 ms of audio every 23 ms), a stall with its backlog, a DTX jump,
        // and timestamps jumping back an hour.
        let mut ops = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            packet(&mut ops, 1, 960, 23, f);
            if i % 5 == 4 {
                ops.extend_from_slice(&[1, 0, 0, 2]);
            }
        }
        packet(&mut ops, 1, 960, 3_000, &frames[0]);
        for f in &frames[1..10] {
            packet(&mut ops, 1, 960, 0, f);
        }
        packet(&mut ops, 1, 48_000, 1_000, &frames[10]);
        packet(&mut ops, 1, -3_600 * 48_000, 20, &frames[11]);
        packet(&mut ops, 1, 960, 20, &frames[12]);
        ops.extend_from_slice(&[1, 0x88, 0x13, 3, 0x10, 0x27]);
        write("recording_ops", "opus_drift_stall_jumps", &ops);
        // Captures: the committed regression captures.
        for name in ["clean", "dtx"] {
            let data = std::fs::read(root.join(format!("../../tests/data/{name}.tdcap"))).unwrap();
            write("capture", name, &data);
        }
    }

    #[test]
    fn signalling_corpus() {
        for (_, data) in corpus("signalling") {
            signalling(&data);
        }
    }

    #[test]
    fn engine_datagrams_corpus() {
        assert!(crate::testkit::connected_pair(crate::media::Ptime::Ms20).is_some(), "no connected session");
        for (_, data) in corpus("engine_datagrams") {
            engine_datagrams(&data);
        }
    }

    #[test]
    fn recording_ops_corpus() {
        for (_, data) in corpus("recording_ops") {
            recording_ops(&data);
        }
    }

    #[test]
    fn capture_corpus() {
        for (_, data) in corpus("capture") {
            capture(&data);
        }
    }
}
