//! What goes into the file: decoded audio, concealment (Opus FEC and PLC) and silence, always
//! at the write cursor, each sample once.

use std::io::{Seek, Write};

use super::frames::{frame_len, has_lbrr, plc_len};
use super::{Buffered, Recording, RecordingError, DEFAULT_FRAME, MAX_FRAME, MAX_PLC_PER_GAP, MAX_SAMPLES};

static ZEROS: [i16; MAX_FRAME] = [0; MAX_FRAME];

/// What kind of samples are being written (for the statistics).
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Audio,
    Concealed,
}

/// Appends samples through hound's buffered 16-bit writer (one write call).
fn write_block<W: Write + Seek>(wav: &mut hound::WavWriter<W>, samples: &[i16]) -> hound::Result<()> {
    // get_i16_writer panics only for non-16-bit-int specs; ours is always
    // 16-bit int (see `Recording::new`). `samples.len() <= MAX_FRAME` fits u32.
    let mut w = wav.get_i16_writer(samples.len() as u32);
    for &s in samples {
        w.write_sample(s);
    }
    // Exactly `samples.len()` samples were written, so flush cannot panic.
    w.flush()
}

impl<W: Write + Seek> Recording<W> {
    /// Fills `[cursor, pos)` after a loss: PLC (at most ~120 ms, in chunks of
    /// the last frame size), then silence, then the frame right before `pos`
    /// recovered from `b`'s in-band FEC.
    pub(super) fn conceal_gap(&mut self, pos: u64, b: &Buffered) -> Result<(), RecordingError> {
        let fec_len = plc_len(b.dur);
        let fec_start = pos.saturating_sub(fec_len as u64).max(self.cursor);
        let mut budget = MAX_PLC_PER_GAP;
        while self.cursor < fec_start && budget > 0 {
            let want = (fec_start - self.cursor).min(self.last_frame as u64) as usize;
            let chunk = plc_len(want.min(budget));
            budget = budget.saturating_sub(chunk);
            match self.decode(&[], chunk, false) {
                Some(n) => {
                    self.stats.concealed_plc += 1;
                    self.put(self.cursor, n, Kind::Concealed, fec_start)?;
                }
                None => break,
            }
        }
        self.fill_silence(fec_start)?;
        match self.decode(&b.payload, fec_len, true) {
            Some(n) => {
                // Without a WAV nothing is decoded: the Ogg leaves the frame to the player.
                if self.wav.is_some() && has_lbrr(&b.payload) {
                    self.stats.concealed_fec += 1;
                } else {
                    self.stats.concealed_plc += 1;
                }
                self.put(pos.saturating_sub(n as u64), n, Kind::Concealed, pos)
            }
            None => self.conceal_plc(pos.saturating_sub(fec_len as u64), fec_len, pos),
        }
    }

    /// Writes `len` samples of PLC at `pos` (silence if PLC fails).
    pub(super) fn conceal_plc(&mut self, pos: u64, len: usize, cap: u64) -> Result<(), RecordingError> {
        match self.decode(&[], plc_len(len), false) {
            Some(n) => {
                self.stats.concealed_plc += 1;
                self.put(pos, n.min(len), Kind::Concealed, cap)
            }
            None => self.fill_silence(pos.saturating_add(len as u64).min(cap)),
        }
    }

    /// Decodes `input` (empty = PLC) into the first `len` samples of the
    /// scratch buffer (grown if needed; `len` is at most 120 ms); returns the decoded length.
    pub(super) fn decode(&mut self, input: &[u8], len: usize, fec: bool) -> Option<usize> {
        if len > MAX_FRAME {
            return None;
        }
        let Some((_, decoder)) = &mut self.wav else {
            // No WAV, no decoding: the packet's own framing says how long it is.
            let fits = input.is_empty() || fec || frame_len(input) == Some(len);
            return fits.then_some(len);
        };
        if self.pcm.len() < len {
            self.pcm.resize(len, 0);
        }
        let out = self.pcm.get_mut(..len)?;
        match decoder.decode(input, out, fec) {
            Ok(n) if n > 0 && n <= len => Some(n),
            Ok(_) => None,
            Err(e) => {
                log::trace!("recording: opus decode failed: {e}");
                None
            }
        }
    }

    /// Writes `pcm[..n]`, which belongs at timeline position `pos`, clipped
    /// to `[cursor, cap)`: samples before the cursor are skipped (never
    /// written twice), a hole before `pos` is filled with silence.
    pub(super) fn put(&mut self, pos: u64, n: usize, kind: Kind, cap: u64) -> Result<(), RecordingError> {
        let end = pos.saturating_add(n as u64).min(cap);
        let from = self.cursor.max(pos);
        if end <= from {
            return Ok(());
        }
        if end > MAX_SAMPLES {
            return Err(RecordingError::TooLong { requested: end });
        }
        if from > self.cursor {
            self.fill_silence(from)?;
        }
        // Both are <= n <= MAX_FRAME, so the casts are lossless.
        let (off, len) = ((from - pos) as usize, (end - from) as usize);
        if let Some((wav, _)) = &mut self.wav {
            let Some(samples) = self.pcm.get(off..off + len) else {
                return Ok(());
            };
            write_block(wav, samples)?;
            if let Some(rms) = self.level.feed(samples) {
                self.stats.level_rms = Some(rms);
            }
        }
        self.cursor += len as u64;
        if let Kind::Concealed = kind {
            self.stats.concealed_samples += len as u64;
        }
        Ok(())
    }

    /// Writes silence up to timeline position `to`.
    pub(super) fn fill_silence(&mut self, to: u64) -> Result<(), RecordingError> {
        if to > MAX_SAMPLES {
            return Err(RecordingError::TooLong { requested: to });
        }
        let Some((wav, _)) = &mut self.wav else {
            // The Ogg fills its gaps itself when the next packet (or a flush) comes.
            self.stats.silence_samples += to.saturating_sub(self.cursor);
            self.cursor = self.cursor.max(to);
            return Ok(());
        };
        while self.cursor < to {
            // Blocks of one 20 ms frame keep hound's sample buffer small; the min makes the
            // cast lossless.
            let len = (to - self.cursor).min(DEFAULT_FRAME as u64) as usize;
            write_block(wav, &ZEROS[..len])?;
            if let Some(rms) = self.level.silence(len) {
                self.stats.level_rms = Some(rms);
            }
            self.cursor += len as u64;
            self.stats.silence_samples += len as u64;
        }
        Ok(())
    }
}
