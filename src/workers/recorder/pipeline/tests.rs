//! Tests of the pipeline: header refreshes, captures, shutdown, write errors, segments.

use std::cell::Cell;
use std::io::{self, Cursor, Seek, SeekFrom, Write};
use std::rc::Rc;
use std::sync::Arc;

use super::*;
use crate::workers::recorder::storage::MemStorage;
use tapedeck_core::media::mem_file::MemFile;
use tapedeck_core::media::recording::Format;

const SESSION: SessionId = SessionId::from_u128(3);

fn tone() -> Vec<Arc<[u8]>> {
    tapedeck_core::testkit::audio::encode_tone(440, Duration::from_millis(20))
}

/// Packet `i` of a caller sending 20 ms frames, arriving 5 ms after it was sent.
fn packet(i: u64, tone: &[Arc<[u8]>]) -> RecorderMsg {
    let arrival = Duration::from_millis(20 * i + 5);
    let payload = tone[i as usize % tone.len()].clone();
    RecorderMsg::Packet { session: SESSION, packet: Packet { seq: i, rtp_time: i * 960, payload, arrival } }
}

fn end(duration: Duration) -> RecorderMsg {
    let summary = Summary { reason: EndReason::Hangup, counters: Some(SessionCounters::default()) };
    RecorderMsg::End { session: SESSION, duration, summary }
}

/// The WAV's declared length in samples, and the bytes in front of its samples.
fn declared(wav: &[u8]) -> (u64, u64) {
    let samples = u64::from(hound::WavReader::new(Cursor::new(wav)).expect("a WAV").len());
    (samples, wav.len() as u64 - 2 * samples)
}

#[test]
#[allow(clippy::disallowed_methods)] // one real instant as the test's time origin
fn the_header_covers_the_whole_file_after_every_tick() {
    let telemetry = Arc::new(Telemetry::new());
    let mut p = Pipeline::new(RecordingConfig::default(), None, MemStorage::default(), telemetry.clone());
    let (t0, path, tone) = (Instant::now(), PathBuf::from("call.wav"), tone());
    p.handle_batch(t0, vec![RecorderMsg::Start { session: SESSION, at: t0, path: path.clone() }]);
    let mut ticks = Vec::new();
    for i in 0..150 {
        let now = t0 + Duration::from_millis(20 * i + 5);
        let ticking = p.next_tick().is_some_and(|t| t <= now);
        p.handle_batch(now, vec![packet(i, &tone)]);
        if !ticking {
            continue;
        }
        // Read back mid-call, as after a kill: the header covers every sample written.
        let (samples, header) = declared(&p.storage().read(&path).unwrap());
        assert_eq!(header, 44, "at {:?}: the header is stale", now - t0);
        assert_eq!(samples, telemetry.recording(SESSION).unwrap().samples, "published progress");
        ticks.push((now - t0, samples));
    }
    // A tick (and a header refresh) every 200 ms of the given time: 205, 405, ... 2805 ms.
    assert_eq!(ticks.len(), 14, "{ticks:?}");
    assert!(ticks.windows(2).all(|w| w[1].0 - w[0].0 == TICK), "{ticks:?}");
    // In-order audio reaches the file within a packet time, jitter buffer or not.
    let (at, samples) = ticks[ticks.len() - 1];
    assert!(samples as f64 >= (at.as_secs_f64() - 0.05) * f64::from(SAMPLE_RATE_HZ), "{samples} samples at {at:?}");

    let ended = p.handle_batch(t0 + Duration::from_secs(3), vec![end(Duration::from_secs(3))]);
    let stats = ended[0].stats.expect("finalized");
    assert_eq!((ended.len(), ended[0].session, stats.packets, stats.lost), (1, SESSION, 150, 0));
    let wav = p.storage_mut().take(&path).unwrap();
    // The call's length, and the last frame whole: it runs 5 ms past the hang-up.
    assert_eq!(declared(&wav), (144_240, 44), "the call's length and the last frame");
    assert!(telemetry.recording(SESSION).is_none(), "the view is removed with the summary");
}

#[test]
#[allow(clippy::disallowed_methods)] // one real instant as the test's time origin
fn captures_go_to_the_storage_and_shutdown_finalizes_open_recordings() {
    let telemetry = Arc::new(Telemetry::new());
    let capture_dir = Some(PathBuf::from("captures"));
    let mut p = Pipeline::new(RecordingConfig::default(), capture_dir, MemStorage::default(), telemetry);
    let (t0, path, tone) = (Instant::now(), PathBuf::from("rec/call.wav"), tone());
    let start = RecorderMsg::Start { session: SESSION, at: t0, path: path.clone() };
    p.handle_batch(t0, vec![start]);
    let packets = (0..50).map(|i| packet(i, &tone)).collect();
    p.handle_batch(t0 + Duration::from_millis(1005), packets);
    let ended = p.shutdown();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].duration, Duration::from_millis(1005), "ended at the last time handed over");
    let wav = p.storage_mut().take(&path).unwrap();
    assert_eq!(declared(&wav).0, 48_240);
    let capture = p.storage_mut().take(Path::new("captures/call.tdcap")).expect("the capture");
    let mut replayed = Cursor::new(Vec::new());
    let stats = tapedeck_core::media::recording::replay(&capture, &mut replayed).unwrap();
    assert_eq!(stats.packets, 50);
    assert!(replayed.into_inner() == wav, "the capture replays to the recording");
    assert!(p.shutdown().is_empty(), "nothing left open");
}

/// A storage whose WAV files cannot grow past `limit` bytes (a full disk).
struct SmallDisk {
    files: MemStorage,
    limit: u64,
    refused: Rc<Cell<u32>>,
}

struct Capped {
    file: MemFile,
    limit: u64,
    refused: Rc<Cell<u32>>,
}

impl Storage for SmallDisk {
    type Wav = Capped;
    type Capture = MemFile;
    fn create_wav(&mut self, path: &Path) -> io::Result<Capped> {
        Ok(Capped { file: self.files.create_wav(path)?, limit: self.limit, refused: self.refused.clone() })
    }
    fn create_capture(&mut self, path: &Path) -> io::Result<MemFile> {
        self.files.create_capture(path)
    }
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.stream_position()? + buf.len() as u64 > self.limit {
            self.refused.set(self.refused.get() + 1);
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
        }
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Capped {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

#[test]
#[allow(clippy::disallowed_methods)] // one real instant as the test's time origin
fn a_write_error_keeps_the_file_and_counts_once() {
    let telemetry = Arc::new(Telemetry::new());
    let refused = Rc::new(Cell::new(0));
    let disk = SmallDisk { files: MemStorage::default(), limit: 44 + 96_000, refused: refused.clone() };
    let mut p = Pipeline::new(RecordingConfig::default(), None, disk, telemetry.clone());
    let (t0, path, tone) = (Instant::now(), PathBuf::from("call.wav"), tone());
    p.handle_batch(t0, vec![RecorderMsg::Start { session: SESSION, at: t0, path: path.clone() }]);
    for i in 0..150 {
        p.handle_batch(t0 + Duration::from_millis(20 * i + 5), vec![packet(i, &tone)]);
    }
    assert_eq!(refused.get(), 1, "the recorder stopped writing at the first error");
    assert_eq!(telemetry.recording_errors.load(Relaxed), 1);
    assert!(telemetry.recording(SESSION).unwrap().error.is_some(), "the error is shown");

    let ended = p.handle_batch(t0 + Duration::from_secs(3), vec![end(Duration::from_secs(3))]);
    assert!(ended[0].stats.is_none(), "a failed recording has no final counters");
    assert_eq!(telemetry.recording_errors.load(Relaxed), 1, "counted once");
    // The file keeps what was written, under a header that says so.
    let wav = p.storage().files.read(&path).unwrap();
    let (samples, header) = declared(&wav);
    assert_eq!(header, 44);
    assert!(samples > 40_000 && samples <= 48_000, "{samples} samples kept");
}

/// With segments, each file ends at a tick once it holds the segment's length, the next
/// starts where it ended, and one `Ended` per file and format says where each file lies.
#[test]
#[allow(clippy::disallowed_methods)] // one real instant as the test's time origin
fn segments_follow_each_other_without_a_gap() {
    let telemetry = Arc::new(Telemetry::new());
    let output = Output { format: Format::Both, segment: Some(Duration::from_secs(1)) };
    let mut p = Pipeline::new(RecordingConfig::default(), None, MemStorage::default(), telemetry).with_output(output);
    let (t0, path, tone) = (Instant::now(), PathBuf::from("rec/call.wav"), tone());
    p.handle_batch(t0, vec![RecorderMsg::Start { session: SESSION, at: t0, path: path.clone() }]);
    let mut ended = Vec::new();
    for i in 0..175 {
        ended.extend(p.handle_batch(t0 + Duration::from_millis(20 * i + 5), vec![packet(i, &tone)]));
    }
    ended.extend(p.handle_batch(t0 + Duration::from_millis(3500), vec![end(Duration::from_millis(3500))]));
    let names: Vec<String> = ended.iter().map(|e| e.path.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "rec/call.wav",
            "rec/call.ogg",
            "rec/call-002.wav",
            "rec/call-002.ogg",
            "rec/call-003.wav",
            "rec/call-003.ogg",
            "rec/call-004.wav",
            "rec/call-004.ogg"
        ]
    );
    let mut next = 0;
    for pair in ended.chunks(2) {
        let (wav, ogg) = (&pair[0], &pair[1]);
        assert_eq!((wav.format, ogg.format, wav.offset, ogg.offset), ("wav", "ogg", next, next));
        let samples = declared(&p.storage().read(&wav.path).unwrap()).0;
        assert_eq!(samples, wav.samples, "{}: the file holds what its Ended says", wav.path.display());
        assert_eq!(ogg.samples, wav.samples);
        // At least the segment's length, at most a tick more (the last one: the rest).
        let last = wav.segment == 4;
        assert!(last || (48_000..48_000 + 9_600 + 960).contains(&samples), "segment {}: {samples}", wav.segment);
        assert_eq!(wav.reason.is_some(), last, "only the last segment ends the call");
        next += samples;
    }
    assert_eq!(next, 168_240, "the segments hold the whole call, 3.5 s (and the last frame whole)");
    let joined: Vec<i16> = ended
        .iter()
        .filter(|e| e.format == "wav")
        .flat_map(|e| tapedeck_core::testkit::audio::wav_from_bytes(&p.storage().read(&e.path).unwrap()).1)
        .collect();
    assert_eq!(joined.len(), 168_240);
    assert!(joined[..165_000].chunks(960).all(|b| tapedeck_core::testkit::audio::rms(b) > 0.1), "no hole at a cut");
}
