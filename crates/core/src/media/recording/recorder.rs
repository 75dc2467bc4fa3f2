//! The recorder: a [`Recording`] and, optionally, a capture of every operation applied to
//! it; and [`replay`], which rebuilds a recording from its capture through the same type.

use std::io::{Seek, Write};
use std::time::Duration;

use super::{Files, Recording, RecordingStats};
use crate::media::capture::{parse, CaptureError, CaptureWriter, Op, TAG_END};

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
        Ok((stats, self.capture.map(CaptureWriter::into_inner)))
    }

    /// Ends the current files and goes on into `next` (see [`Recording::split`]). The
    /// capture does not see it: a replay rebuilds the whole recording as one file, which is
    /// the segments end to end.
    pub fn split(&mut self, next: Files<W>) -> Result<(), CaptureError> {
        Ok(self.recording.split(next)?)
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

#[cfg(test)]
mod tests {
    use crate::media::SAMPLE_RATE_HZ;
    use std::io::Cursor;
    use std::sync::Arc;

    use super::*;
    use crate::media::recording::{Packet, RecordingConfig};

    fn ops() -> Vec<Op> {
        let mut enc = opus::Encoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono, opus::Application::Voip).unwrap();
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
        w.into_inner()
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
}
