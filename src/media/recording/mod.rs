//! Sans-IO per-call recorder: jitter buffer → Opus decoder (with FEC/PLC
//! concealment) → 16-bit mono 48 kHz WAV.
//!
//! # Timeline model
//!
//! Every WAV sample index is a point on the call's timeline: index 0 is the
//! moment the call connected (`Duration::ZERO`), index `n` is `n / 48000` s
//! later. The recorder never reads a clock: the caller passes time in as a
//! `Duration` since the call connected (packet arrival times, [`Recording::advance`],
//! [`Recording::finish`]).
//!
//! * The first accepted packet *anchors* the mapping from RTP time to the
//!   timeline: it is placed at `round(arrival * 48000)` (or at the latest
//!   `now` seen, if that is later). Every later packet is placed at
//!   `anchor_pos + (rtp_time - anchor_rtp)`, i.e. purely by RTP time, so
//!   network jitter does not move audio around.
//! * Packets wait in a jitter buffer (ordered by timeline position) until they
//!   end at or before the *write limit* `pos(now) - jitter_depth`; then they are
//!   decoded and appended in order. A packet that directly follows the last
//!   one written (next sequence number) waits only until its end is no longer
//!   in the future (it ends by the latest arrival seen): in-order audio reaches
//!   the file within a packet time, so a killed process loses little; only a
//!   gap in the sequence holds the packets behind it for the full depth. The
//!   write cursor never passes the latest `now` or arrival, and never moves
//!   backwards; a sample is written exactly once.
//! * Gaps in front of a packet are concealed (FEC + PLC) when sequence numbers
//!   show that packets were lost, and filled with digital silence when they
//!   were not (DTX, muted microphone, sender paused). With nothing buffered,
//!   the file is padded with silence up to the limit; packets that arrive for
//!   an already written region are late and dropped.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::sync::Arc;
use std::time::Duration;

/// Sample rate of the decoder, the RTP clock and the WAV file.
pub const SAMPLE_RATE: u32 = 48_000;
/// Largest number of samples a 16-bit mono WAV can hold (the data chunk size
/// is a `u32`; some room is left for the header).
pub const MAX_SAMPLES: u64 = (u32::MAX as u64 - 4096) / 2;

const RATE: u64 = SAMPLE_RATE as u64;
/// Longest Opus packet: 120 ms.
const MAX_FRAME: usize = 5760;
/// PLC lengths must be multiples of 2.5 ms.
const PLC_STEP: usize = 120;
/// Maximum PLC per gap (about 120 ms); the rest of a gap is silence.
const MAX_PLC_PER_GAP: usize = MAX_FRAME;
/// Packets placed further than this beyond the cursor (plus the jitter depth) are dropped.
const MAX_AHEAD: u64 = 10 * 60 * RATE;
/// Default frame length assumed before anything was decoded: 20 ms.
const DEFAULT_FRAME: usize = 960;

static ZEROS: [i16; MAX_FRAME] = [0; MAX_FRAME];

/// One received RTP packet, as the network engine hands it over.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Extended (no wrap) RTP sequence number.
    pub seq: u64,
    /// Extended RTP timestamp, 48 kHz clock.
    pub rtp_time: u64,
    /// One Opus packet (may be stereo Opus; it is decoded to mono).
    pub payload: Arc<[u8]>,
    /// Arrival time since the call connected.
    pub arrival: Duration,
}

/// Recorder settings.
#[derive(Debug, Clone, Copy)]
pub struct RecordingConfig {
    /// How long packets are held for reordering before being written: a packet
    /// is written once it ends at or before `now - jitter_depth`. Packets
    /// arriving later than that are dropped as late.
    pub jitter_depth: Duration,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self { jitter_depth: Duration::from_millis(1000) }
    }
}

/// Counters describing what happened to the input. Sample counts are in
/// 48 kHz samples.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordingStats {
    /// Packets handed to [`Recording::push`].
    pub packets: u64,
    /// Packets dropped because the same sequence number (or RTP time) was
    /// already buffered or written.
    pub duplicates: u64,
    /// Packets dropped as late: they belong before audio already written in
    /// sequence order (a reordered packet that came after the jitter depth).
    pub late: u64,
    /// Packets dropped because the recording could not hold them: the jitter
    /// buffer was full, or they lay absurdly far ahead of the call (hostile input).
    pub overflow: u64,
    /// Packets whose audio is in the file (decoded, or concealed if undecodable).
    pub recorded: u64,
    /// Times the RTP-to-file mapping was reset because the caller's timestamps
    /// could not place a packet (they went backwards, or silence from the
    /// server's clock had already covered its place).
    pub reanchors: u64,
    /// Net silence (in samples) added (+) or taken out (−) of silent stretches
    /// to keep the file on the wall clock while the caller's clock drifts.
    pub drift_samples: i64,
    /// The caller's media clock rate against the arrival times, in parts per
    /// million off nominal (−50000: 0.95x), once there is enough to estimate it.
    pub clock_ppm: Option<i32>,
    /// Sequence numbers that were skipped when writing.
    pub lost: u64,
    /// Frames recovered with Opus in-band FEC.
    pub concealed_fec: u64,
    /// Frames synthesized by Opus packet loss concealment.
    pub concealed_plc: u64,
    /// Payloads that failed to decode (concealed instead).
    pub decode_errors: u64,
    /// Samples written from FEC or PLC.
    pub concealed_samples: u64,
    /// Samples written as digital silence.
    pub silence_samples: u64,
    /// Total samples in the file.
    pub samples_written: u64,
}

/// Errors that end (or refuse) a recording step. Bad packets are never an
/// error: they are counted in [`RecordingStats`].
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("WAV write failed: {0}")]
    Wav(#[from] hound::Error),
    #[error("Opus decoder error: {0}")]
    Opus(#[from] opus::Error),
    /// The requested time lies beyond what a WAV file can hold (~12.4 h);
    /// nothing was written for this call.
    #[error("recording would exceed the WAV size limit ({requested} > {MAX_SAMPLES} samples)")]
    TooLong { requested: u64 },
}

/// A buffered packet, keyed by its timeline position.
struct Buffered {
    seq: u64,
    /// Expected decoded length in samples.
    dur: usize,
    payload: Arc<[u8]>,
}

/// What kind of samples are being written (for the statistics).
#[derive(Clone, Copy)]
enum Kind {
    Audio,
    Concealed,
}

/// Per-call recorder writing a mono 48 kHz 16-bit WAV into `W`.
///
/// Feed packets with [`push`](Self::push), move time forward with
/// [`advance`](Self::advance), checkpoint with [`flush`](Self::flush) and end
/// with [`finish`](Self::finish). See the module docs for the timeline model.
pub struct Recording<W: Write + Seek> {
    wav: hound::WavWriter<W>,
    decoder: opus::Decoder,
    /// Jitter depth in samples.
    depth: u64,
    /// Most packets the jitter buffer may hold (bounds memory on hostile input).
    max_buffered: usize,
    /// Jitter buffer keyed by timeline position (= RTP order).
    buffer: BTreeMap<u64, Buffered>,
    /// (timeline position, rtp_time) of the anchoring packet.
    anchor: Option<(u64, u64)>,
    /// Next sample index to write (= samples in the file).
    cursor: u64,
    /// Highest write limit used so far (never decreases).
    limit: u64,
    /// Latest `now` seen, in samples.
    now_pos: u64,
    /// Latest packet arrival seen, in samples. In-order packets are written up to here
    /// without waiting for the jitter depth; a call never ends before its last arrival,
    /// so this never writes past the end.
    arrived: u64,
    /// Highest sequence number written, and a bitmap of written sequence
    /// numbers: bit `i` = `last_seq - i` was written.
    last_seq: Option<u64>,
    seq_mask: u128,
    /// Length of the last decoded frame (PLC chunk size).
    last_frame: usize,
    /// Reused decode buffer, as long as the longest frame decoded so far (20 ms for
    /// browsers; up to 120 ms), not the longest possible: memory per caller counts.
    pcm: Vec<i16>,
    stats: RecordingStats,
}

/// Floor of `t * 48000`, saturating.
fn samples_floor(t: Duration) -> u64 {
    u64::try_from(t.as_nanos() * u128::from(RATE) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// `t * 48000` rounded to nearest, saturating.
fn samples_round(t: Duration) -> u64 {
    u64::try_from((t.as_nanos() * u128::from(RATE) + 500_000_000) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// Decoded length of an Opus packet, if it parses and is at most 120 ms.
fn frame_len(payload: &[u8]) -> Option<usize> {
    opus::packet::get_nb_samples(payload, SAMPLE_RATE).ok().filter(|&n| n > 0 && n <= MAX_FRAME)
}

/// Rounds up to a valid PLC/FEC length (multiple of 2.5 ms, 2.5..=120 ms).
fn plc_len(n: usize) -> usize {
    (n.div_ceil(PLC_STEP) * PLC_STEP).clamp(PLC_STEP, MAX_FRAME)
}

/// True if the packet carries in-band FEC (LBRR) data for the previous frame:
/// SILK or hybrid mode with the LBRR flag set (in libopus 1.5 this is
/// `opus_packet_has_lbrr`). The flag is the bit after the VAD flags at the
/// start of the first frame's range-coded data. Only called on losses.
fn has_lbrr(payload: &[u8]) -> bool {
    let Some(&toc) = payload.first() else {
        return false;
    };
    let config = toc >> 3;
    if config >= 16 {
        return false; // CELT-only: no FEC
    }
    // SILK-only configs 0..=11 cycle 10/20/40/60 ms; hybrid 12..=15 are 10/20 ms.
    let silk_frames: u32 = if config < 12 { (u32::from(config % 4)).max(1) } else { 1 };
    let stereo = toc & 0x04 != 0;
    let Ok(parsed) = opus::packet::parse(payload) else {
        return false;
    };
    let Some(&first) = parsed.frames.first().and_then(|f| f.first()) else {
        return false;
    };
    let mut lbrr = (first >> (7 - silk_frames)) & 1 == 1;
    if stereo {
        lbrr |= (first >> (6 - 2 * silk_frames)) & 1 == 1;
    }
    lbrr
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
    /// Starts a recording: writes a WAV header (mono, 48 kHz, 16-bit signed)
    /// to `writer` (positioned at offset 0) and creates the Opus decoder.
    pub fn new(writer: W, config: RecordingConfig) -> Result<Self, RecordingError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let depth = samples_floor(config.jitter_depth);
        // Twice the packets of the shortest (2.5 ms) frames over the depth.
        let max_buffered = usize::try_from(depth / PLC_STEP as u64)
            .unwrap_or(usize::MAX)
            .saturating_mul(2)
            .saturating_add(64)
            .min(1 << 16);
        let wav = hound::WavWriter::new(writer, spec)?;
        let decoder = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)?;
        Ok(Self {
            wav,
            decoder,
            depth,
            max_buffered,
            buffer: BTreeMap::new(),
            anchor: None,
            cursor: 0,
            limit: 0,
            now_pos: 0,
            arrived: 0,
            last_seq: None,
            seq_mask: 0,
            last_frame: DEFAULT_FRAME,
            pcm: vec![0i16; DEFAULT_FRAME],
            stats: RecordingStats::default(),
        })
    }

    /// Buffers one packet, then calls [`advance`](Self::advance)`(packet.arrival)`.
    ///
    /// Duplicates, late packets and packets placed absurdly far away are
    /// counted and dropped; an empty payload is treated like a lost packet.
    /// Errors come only from writing the WAV (or from an arrival time beyond
    /// the WAV size limit).
    pub fn push(&mut self, packet: Packet) -> Result<(), RecordingError> {
        self.stats.packets += 1;
        if packet.payload.is_empty() {
            log::trace!("recording: empty payload seq {} treated as lost", packet.seq);
        } else {
            self.insert(packet.seq, packet.rtp_time, packet.payload, packet.arrival);
        }
        self.arrived = self.arrived.max(samples_floor(packet.arrival));
        self.advance(packet.arrival)
    }

    fn insert(&mut self, seq: u64, rtp_time: u64, payload: Arc<[u8]>, arrival: Duration) {
        if self.seq_written(seq) {
            self.stats.duplicates += 1;
            return;
        }
        let floor = self.now_pos.max(self.cursor);
        let (anchor_pos, anchor_rtp) =
            *self.anchor.get_or_insert_with(|| (samples_round(arrival).max(floor), rtp_time));
        let pos = i128::from(anchor_pos) + i128::from(rtp_time) - i128::from(anchor_rtp);
        let horizon = self.cursor.saturating_add(MAX_AHEAD).saturating_add(self.depth);
        let pos = match u64::try_from(pos) {
            Ok(p) if p >= self.cursor && p <= horizon => p,
            _ => {
                log::trace!("recording: late/out-of-range packet seq {seq} at {pos}");
                self.stats.late += 1;
                return;
            }
        };
        let dur = frame_len(&payload).unwrap_or(self.last_frame);
        let full = self.buffer.len() >= self.max_buffered;
        match self.buffer.entry(pos) {
            Entry::Occupied(_) => self.stats.duplicates += 1,
            Entry::Vacant(_) if full => {
                log::trace!("recording: jitter buffer full, seq {seq} dropped");
                self.stats.late += 1;
            }
            Entry::Vacant(v) => {
                v.insert(Buffered { seq, dur, payload });
            }
        }
    }

    /// Moves time forward to `now` (since the call connected): writes every
    /// buffered packet that ends at or before `now - jitter_depth`, and if the
    /// buffer is then empty, pads with silence up to that limit. Time going
    /// backwards is ignored. Does not flush the header (see [`flush`](Self::flush)).
    pub fn advance(&mut self, now: Duration) -> Result<(), RecordingError> {
        let now_pos = samples_floor(now);
        let limit = now_pos.saturating_sub(self.depth).max(self.limit);
        if limit > MAX_SAMPLES {
            return Err(RecordingError::TooLong { requested: limit });
        }
        self.now_pos = self.now_pos.max(now_pos);
        self.limit = limit;
        self.drain(limit, false)
    }

    /// Updates the WAV header and flushes the writer, so that what is on disk
    /// is a playable file. Call this periodically (not per packet).
    pub fn flush(&mut self) -> Result<(), RecordingError> {
        Ok(self.wav.flush()?)
    }

    /// Ends the recording at `end` (since the call connected): writes the
    /// buffered packets that start before `end`, pads with silence, and
    /// finalizes the file so that it holds exactly `floor(end * 48000)`
    /// samples. (If `end` is earlier than audio already written, which can
    /// only happen when `end` lies before an earlier `now - jitter_depth`, the
    /// file keeps its current length; a warning is logged.)
    pub fn finish(mut self, end: Duration) -> Result<RecordingStats, RecordingError> {
        let end_pos = samples_floor(end);
        if end_pos > MAX_SAMPLES {
            return Err(RecordingError::TooLong { requested: end_pos });
        }
        self.drain(end_pos, true)?;
        if self.cursor > end_pos {
            log::warn!("recording: end {end_pos} is before {} samples already written", self.cursor);
        }
        let stats = self.stats();
        self.wav.finalize()?;
        Ok(stats)
    }

    /// Current counters.
    pub fn stats(&self) -> RecordingStats {
        RecordingStats { samples_written: self.cursor, ..self.stats }
    }

    /// Samples in the file so far (= the write cursor on the timeline).
    pub fn samples_written(&self) -> u64 {
        self.cursor
    }

    /// Writes buffered packets up to `limit`. During the call a packet must
    /// end by the limit; when finishing it must start before it, the rest is
    /// discarded and everything is padded to the limit.
    fn drain(&mut self, limit: u64, finishing: bool) -> Result<(), RecordingError> {
        while let Some((&pos, b)) = self.buffer.first_key_value() {
            let end = pos.saturating_add(b.dur as u64);
            let (ready, cap) = if finishing {
                (pos < limit, limit)
            } else if end <= limit {
                (true, limit)
            } else {
                // The next packet in sequence has nothing to wait for: it is written as soon
                // as its time has come, not a jitter depth later.
                (self.is_next(b.seq) && pos >= self.cursor && end <= self.arrived, self.arrived)
            };
            if !ready {
                break;
            }
            let Some((pos, b)) = self.buffer.pop_first() else {
                break;
            };
            self.play(pos, b, cap)?;
        }
        if finishing {
            if !self.buffer.is_empty() {
                log::debug!("recording: {} packets beyond the end discarded", self.buffer.len());
            }
            self.buffer.clear();
        }
        if self.buffer.is_empty() {
            self.fill_silence(limit)?;
        }
        Ok(())
    }

    /// Conceals the gap in front of `b` (if any), then decodes and writes it.
    fn play(&mut self, pos: u64, b: Buffered, cap: u64) -> Result<(), RecordingError> {
        if self.seq_written(b.seq) {
            self.stats.duplicates += 1;
            return Ok(());
        }
        if pos.saturating_add(b.dur as u64) <= self.cursor {
            self.stats.late += 1;
            return Ok(());
        }
        let skipped = self.last_seq.map_or(0, |l| b.seq.saturating_sub(l).saturating_sub(1));
        self.stats.lost = self.stats.lost.saturating_add(skipped);
        if pos > self.cursor {
            if skipped > 0 {
                self.conceal_gap(pos.min(cap), &b)?;
            } else {
                // No sequence number missing: the sender paused (DTX / mute).
                self.fill_silence(pos.min(cap))?;
            }
        }
        match self.decode(&b.payload, b.dur, false) {
            Some(n) => {
                self.last_frame = n;
                self.put(pos, n, Kind::Audio, cap)?;
            }
            None => {
                self.stats.decode_errors += 1;
                self.conceal_plc(pos, b.dur, cap)?;
            }
        }
        self.mark_written(b.seq);
        Ok(())
    }

    /// Fills `[cursor, pos)` after a loss: PLC (at most ~120 ms, in chunks of
    /// the last frame size), then silence, then the frame right before `pos`
    /// recovered from `b`'s in-band FEC.
    fn conceal_gap(&mut self, pos: u64, b: &Buffered) -> Result<(), RecordingError> {
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
                if has_lbrr(&b.payload) {
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
    fn conceal_plc(&mut self, pos: u64, len: usize, cap: u64) -> Result<(), RecordingError> {
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
    fn decode(&mut self, input: &[u8], len: usize, fec: bool) -> Option<usize> {
        if len > MAX_FRAME {
            return None;
        }
        if self.pcm.len() < len {
            self.pcm.resize(len, 0);
        }
        let out = self.pcm.get_mut(..len)?;
        match self.decoder.decode(input, out, fec) {
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
    fn put(&mut self, pos: u64, n: usize, kind: Kind, cap: u64) -> Result<(), RecordingError> {
        let end = pos.saturating_add(n as u64).min(cap);
        let from = self.cursor.max(pos);
        if end <= from {
            return Ok(());
        }
        if from > self.cursor {
            self.fill_silence(from)?;
        }
        // Both are <= n <= MAX_FRAME, so the casts are lossless.
        let (off, len) = ((from - pos) as usize, (end - from) as usize);
        let Some(samples) = self.pcm.get(off..off + len) else {
            return Ok(());
        };
        write_block(&mut self.wav, samples)?;
        self.cursor += len as u64;
        if let Kind::Concealed = kind {
            self.stats.concealed_samples += len as u64;
        }
        Ok(())
    }

    /// Writes silence up to timeline position `to`.
    fn fill_silence(&mut self, to: u64) -> Result<(), RecordingError> {
        while self.cursor < to {
            // Blocks of one 20 ms frame keep hound's sample buffer small; the min makes the
            // cast lossless.
            let len = (to - self.cursor).min(DEFAULT_FRAME as u64) as usize;
            write_block(&mut self.wav, &ZEROS[..len])?;
            self.cursor += len as u64;
            self.stats.silence_samples += len as u64;
        }
        Ok(())
    }

    /// Whether `seq` directly follows the last written packet (or nothing was written yet).
    fn is_next(&self, seq: u64) -> bool {
        self.last_seq.is_none_or(|last| seq == last.wrapping_add(1))
    }

    fn seq_written(&self, seq: u64) -> bool {
        match self.last_seq {
            Some(last) if seq <= last => {
                let d = last - seq;
                d < 128 && (self.seq_mask >> d) & 1 == 1
            }
            _ => false,
        }
    }

    fn mark_written(&mut self, seq: u64) {
        match self.last_seq {
            Some(last) if seq <= last => {
                let d = last - seq;
                if d < 128 {
                    self.seq_mask |= 1 << d;
                }
            }
            Some(last) => {
                let d = seq - last;
                self.seq_mask = if d < 128 { self.seq_mask << d } else { 0 } | 1;
                self.last_seq = Some(seq);
            }
            None => {
                self.seq_mask = 1;
                self.last_seq = Some(seq);
            }
        }
    }
}

#[cfg(test)]
mod tests;
