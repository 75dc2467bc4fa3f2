//! Media captures: every operation the recorder applied to one call, so the call's WAV can be
//! rebuilt byte for byte (`tapedeck replay`), and so the recorder can be regression-tested
//! and fuzzed from files.
//!
//! # Format (version 1, little-endian)
//!
//! ```text
//! magic        6 bytes  "TDCAP\x01"
//! jitter depth u32      milliseconds (the recording's jitter buffer)
//! records, until the end of the file, each starting with a tag byte:
//!   1 packet   u64 seq, u64 rtp_time (48 kHz), u64 arrival (ns since connected),
//!              u16 length, then the Opus payload
//!   2 advance  u64 now (ns since connected): write what the jitter buffer released
//!   3 flush    (nothing): the WAV header was refreshed
//!   4 end      u64 end (ns since connected): the call ended; finalize
//! ```
//!
//! A capture cut short (the daemon was killed) ends without `end`; replay then finalizes at
//! the last time it saw.

use std::io::{Seek, Write};
use std::time::Duration;

use super::recording::{Packet, Recording, RecordingConfig, RecordingError, RecordingStats};

/// The first bytes of every capture.
pub const MAGIC: &[u8; 6] = b"TDCAP\x01";
const TAG_PACKET: u8 = 1;
const TAG_ADVANCE: u8 = 2;
const TAG_FLUSH: u8 = 3;
const TAG_END: u8 = 4;

/// One operation on a recording.
#[derive(Debug, Clone)]
pub enum Op {
    Packet(Packet),
    Advance(Duration),
    Flush,
    End(Duration),
}

/// Why a capture cannot be read or replayed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("not a tapedeck capture (bad magic)")]
    Magic,
    #[error("the capture is cut off inside a record at byte {0}")]
    Truncated(usize),
    #[error("unknown record tag {tag} at byte {at}")]
    Tag { tag: u8, at: usize },
    #[error("a payload of {0} bytes does not fit a capture record")]
    PayloadTooLarge(usize),
    #[error("recording failed: {0}")]
    Recording(#[from] RecordingError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Writes a capture as the recorder works.
pub struct CaptureWriter<W: Write> {
    out: W,
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture for a recording made with `config`.
    pub fn new(mut out: W, config: RecordingConfig) -> Result<Self, CaptureError> {
        out.write_all(MAGIC)?;
        let ms = u32::try_from(config.jitter_depth.as_millis()).unwrap_or(u32::MAX);
        out.write_all(&ms.to_le_bytes())?;
        Ok(CaptureWriter { out })
    }

    /// Appends one operation.
    pub fn record(&mut self, op: &Op) -> Result<(), CaptureError> {
        match op {
            Op::Packet(p) => {
                let len = u16::try_from(p.payload.len()).map_err(|_| CaptureError::PayloadTooLarge(p.payload.len()))?;
                self.out.write_all(&[TAG_PACKET])?;
                self.out.write_all(&p.seq.to_le_bytes())?;
                self.out.write_all(&p.rtp_time.to_le_bytes())?;
                self.out.write_all(&nanos(p.arrival).to_le_bytes())?;
                self.out.write_all(&len.to_le_bytes())?;
                self.out.write_all(&p.payload)?;
            }
            Op::Advance(t) => {
                self.out.write_all(&[TAG_ADVANCE])?;
                self.out.write_all(&nanos(*t).to_le_bytes())?;
            }
            Op::Flush => self.out.write_all(&[TAG_FLUSH])?,
            Op::End(t) => {
                self.out.write_all(&[TAG_END])?;
                self.out.write_all(&nanos(*t).to_le_bytes())?;
            }
        }
        Ok(())
    }

    /// Flushes buffered records to the underlying writer.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        Ok(self.out.flush()?)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Reads a capture: the recording's settings and its operations, in order.
pub fn parse(bytes: &[u8]) -> Result<(RecordingConfig, Vec<Op>), CaptureError> {
    if !bytes.starts_with(MAGIC) {
        return Err(CaptureError::Magic);
    }
    let mut r = Reader { bytes, at: MAGIC.len() };
    let depth = Duration::from_millis(u64::from(r.u32()?));
    let mut ops = Vec::new();
    while r.at < bytes.len() {
        let at = r.at;
        let op = match r.u8()? {
            TAG_PACKET => {
                let seq = r.u64()?;
                let rtp_time = r.u64()?;
                let arrival = Duration::from_nanos(r.u64()?);
                let len = usize::from(r.u16()?);
                let payload = r.take(len)?.into();
                Op::Packet(Packet { seq, rtp_time, payload, arrival })
            }
            TAG_ADVANCE => Op::Advance(Duration::from_nanos(r.u64()?)),
            TAG_FLUSH => Op::Flush,
            TAG_END => Op::End(Duration::from_nanos(r.u64()?)),
            tag => return Err(CaptureError::Tag { tag, at }),
        };
        ops.push(op);
    }
    Ok((RecordingConfig { jitter_depth: depth }, ops))
}

/// Rebuilds the WAV a capture describes into `out`; returns the recording's counters.
pub fn replay<W: Write + Seek>(bytes: &[u8], out: W) -> Result<RecordingStats, CaptureError> {
    let (config, ops) = parse(bytes)?;
    let mut recorder: Recorder<W, Vec<u8>> = Recorder::new(Recording::new(out, config)?, None);
    for op in ops {
        if let Op::End(t) = op {
            return Ok(recorder.finish(t)?.0);
        }
        recorder.apply(op)?;
    }
    let last = recorder.last;
    Ok(recorder.finish(last)?.0)
}

/// A recording and, optionally, a capture of every operation applied to it. The recorder
/// workers, `tapedeck replay` and the simulated-network tests all drive recordings through
/// this one type, so a replay applies exactly what the live recording did.
pub struct Recorder<W: Write + Seek, C: Write> {
    recording: Recording<W>,
    capture: Option<CaptureWriter<C>>,
    last: Duration,
}

impl<W: Write + Seek, C: Write> Recorder<W, C> {
    /// Wraps a recording; `capture`, if any, must be new (header written, nothing else).
    pub fn new(recording: Recording<W>, capture: Option<CaptureWriter<C>>) -> Self {
        Recorder { recording, capture, last: Duration::ZERO }
    }

    /// Applies one operation (`Op::End` is [`Recorder::finish`]'s job and is refused here).
    pub fn apply(&mut self, op: Op) -> Result<(), CaptureError> {
        self.tap(&op);
        match op {
            Op::Packet(p) => {
                self.last = self.last.max(p.arrival);
                self.recording.push(p)?;
            }
            Op::Advance(t) => {
                self.last = self.last.max(t);
                self.recording.advance(t)?;
            }
            Op::Flush => {
                self.recording.flush()?;
                if let Some(c) = &mut self.capture {
                    if let Err(e) = c.flush() {
                        log::warn!("capture stopped: {e}");
                        self.capture = None;
                    }
                }
            }
            Op::End(_) => return Err(CaptureError::Tag { tag: TAG_END, at: 0 }),
        }
        Ok(())
    }

    /// Finalizes the recording at `end`; hands back the capture's writer, if capturing.
    pub fn finish(mut self, end: Duration) -> Result<(RecordingStats, Option<C>), CaptureError> {
        self.tap(&Op::End(end));
        if let Some(c) = &mut self.capture {
            let _ = c.flush();
        }
        let stats = self.recording.finish(end)?;
        Ok((stats, self.capture.map(|c| c.out)))
    }

    /// The recording's counters so far.
    pub fn stats(&self) -> RecordingStats {
        self.recording.stats()
    }

    fn tap(&mut self, op: &Op) {
        if let Some(c) = &mut self.capture {
            if let Err(e) = c.record(op) {
                log::warn!("capture stopped: {e}");
                self.capture = None;
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CaptureError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(CaptureError::Truncated(self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CaptureError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, CaptureError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, CaptureError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, CaptureError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, CaptureError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::sync::Arc;

    use super::*;

    fn ops() -> Vec<Op> {
        let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let mut out = vec![0u8; 1500];
        let mut ops = Vec::new();
        for i in 0..100u64 {
            let pcm: Vec<i16> = (0..960).map(|j| (((i * 960 + j) as f64 * 0.0576).sin() * 9000.0) as i16).collect();
            let n = enc.encode(&pcm, &mut out).unwrap();
            let arrival = Duration::from_millis(20 * i + 3);
            ops.push(Op::Packet(Packet {
                seq: 1000 + i,
                rtp_time: 5000 + 960 * i,
                payload: Arc::from(&out[..n]),
                arrival,
            }));
            if i % 10 == 9 {
                ops.push(Op::Advance(arrival));
                ops.push(Op::Flush);
            }
        }
        ops.push(Op::End(Duration::from_millis(2010)));
        ops
    }

    fn capture(ops: &[Op]) -> Vec<u8> {
        let config = RecordingConfig { jitter_depth: Duration::from_millis(300) };
        let mut w = CaptureWriter::new(Vec::new(), config).unwrap();
        for op in ops {
            w.record(op).unwrap();
        }
        w.out
    }

    fn live(ops: &[Op]) -> Vec<u8> {
        let config = RecordingConfig { jitter_depth: Duration::from_millis(300) };
        let mut cur = Cursor::new(Vec::new());
        {
            let mut rec = Recording::new(&mut cur, config).unwrap();
            for op in ops.iter().cloned() {
                match op {
                    Op::Packet(p) => rec.push(p).unwrap(),
                    Op::Advance(t) => rec.advance(t).unwrap(),
                    Op::Flush => rec.flush().unwrap(),
                    Op::End(t) => {
                        rec.finish(t).unwrap();
                        break;
                    }
                }
            }
        }
        cur.into_inner()
    }

    #[test]
    fn a_recorder_captures_what_it_applies() {
        let ops = ops();
        let config = RecordingConfig { jitter_depth: Duration::from_millis(300) };
        let mut wav = Cursor::new(Vec::new());
        let mut capture_bytes = None;
        {
            let capture = CaptureWriter::new(Vec::new(), config).unwrap();
            let mut r = Recorder::new(Recording::new(&mut wav, config).unwrap(), Some(capture));
            for op in ops.iter().cloned() {
                match op {
                    Op::End(t) => {
                        capture_bytes = r.finish(t).unwrap().1;
                        break;
                    }
                    op => r.apply(op).unwrap(),
                }
            }
        }
        let capture_bytes = capture_bytes.expect("the capture");
        assert_eq!(capture_bytes, capture(&ops));
        let mut again = Cursor::new(Vec::new());
        replay(&capture_bytes, &mut again).unwrap();
        assert_eq!(again.into_inner(), wav.into_inner());
    }

    #[test]
    fn replay_equals_the_live_recording_and_itself() {
        let ops = ops();
        let bytes = capture(&ops);
        let mut a = Cursor::new(Vec::new());
        let stats = replay(&bytes, &mut a).unwrap();
        assert_eq!(stats.packets, 100);
        let mut b = Cursor::new(Vec::new());
        replay(&bytes, &mut b).unwrap();
        assert_eq!(a.get_ref(), b.get_ref(), "two replays differ");
        assert_eq!(a.into_inner(), live(&ops), "replay differs from the live recording");
    }

    #[test]
    fn a_capture_cut_short_still_replays_to_a_playable_wav() {
        let bytes = capture(&ops());
        let cut = &bytes[..bytes.len() / 2];
        let cut = &cut[..cut.len() - 5]; // inside a record
        assert!(matches!(parse(cut), Err(CaptureError::Truncated(_))));
        // Cut at a record boundary instead: no `end`, finalized at the last time seen.
        let (_, ops) = parse(&bytes).unwrap();
        let half = capture(&ops[..ops.len() / 2]);
        let mut out = Cursor::new(Vec::new());
        replay(&half, &mut out).unwrap();
        let wav = hound::WavReader::new(Cursor::new(out.into_inner())).unwrap();
        assert!(wav.duration() > 48_000 / 2);
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert!(matches!(parse(b"RIFF...."), Err(CaptureError::Magic)));
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&300u32.to_le_bytes());
        bytes.push(9);
        assert!(matches!(parse(&bytes), Err(CaptureError::Tag { tag: 9, .. })));
        bytes.pop();
        bytes.extend_from_slice(&[1, 0, 0]);
        assert!(matches!(parse(&bytes), Err(CaptureError::Truncated(_))));
    }
}
