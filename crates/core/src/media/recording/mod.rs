//! Sans-IO per-call recorder: jitter buffer → Opus decoder (with FEC/PLC
//! concealment) → 16-bit mono 48 kHz WAV, and/or the packets themselves → Ogg/Opus
//! ([`ogg`]: no decoding, on the same timeline). A recording can be cut into segments
//! ([`Recording::split`]) between two writes, so no sample is lost between files.
//!
//! # Timeline model
//!
//! **Every frame the caller sent and the network delivered is in the file**, once, in
//! sequence order. The file follows the caller's media clock, which is never exactly
//! the server's (sound cards drift by tens to hundreds of ppm, a CPU-starved sender falls
//! behind real time, a phone app resumed from the background sends its backlog at once).
//! The server's clock only fills what the caller's timestamps cannot say, and bounds what
//! they may claim. The recorder never reads a clock: time comes in as a `Duration` since
//! the call connected (packet arrivals, [`Recording::advance`], [`Recording::finish`]).
//!
//! * **Placing audio.** The first packet goes where it arrived (sample
//!   `floor(arrival × 48000)`); the rest of the call is read from the caller's RTP
//!   timestamps. Each packet is placed after the last one written, by the RTP gap
//!   between them: a packet that directly follows in RTP time is written right after
//!   the previous one, whatever the arrival times say. So continuous speech never gets a
//!   hole, however slow or bursty the sender, and nothing is dropped for arriving "late"
//!   against the server's clock.
//! * **Waiting.** Packets wait in a jitter buffer ordered by sequence number. The next
//!   packet in sequence is written at once (a killed process loses little); a packet
//!   behind a sequence gap waits until the oldest waiting packet has waited the jitter
//!   depth, then the gap is declared lost. A packet arriving after audio later in sequence
//!   was written is *late* and dropped; a sequence number seen before is a duplicate.
//! * **Gaps.** A sequence gap (loss) is concealed: Opus PLC for up to 120 ms, silence,
//!   then the last frame rebuilt from the next packet's in-band FEC. A timestamp jump with
//!   no sequence gap (DTX, a muted microphone, a paused sender) is silence. A timestamp
//!   that goes backwards places the packet right after the previous one (a *re-anchor*).
//! * **Drift.** [`clock::ClockTrack`] compares the caller's timestamps with the arrival
//!   times and estimates how far the file runs behind (or ahead of) the wall clock. A
//!   silent stretch of at least [`ABSORB_MIN`] (a pause or an outage) takes up that
//!   difference: it is lengthened for a slow caller and shortened, down to nothing, for a
//!   fast one; and it never places audio later than it arrived. So a long call with
//!   pauses stays within about a second of the wall clock. Without silence to take it up
//!   (continuous speech), **the audio wins**: a slow caller's file falls behind the call
//!   (and is padded with silence at the end), a fast caller's file runs ahead of it (and
//!   ends up longer than the call). Nothing is dropped or stretched to stay on time.
//! * **A sender that stops.** When nothing has arrived for [`STALL_HOLD`] (or the jitter
//!   depth, if longer), silence from the server's clock is written behind the last audio,
//!   that much behind real time, so the file keeps growing through a long pause or
//!   outage. A shorter stall writes nothing until the caller is heard again, so a backlog
//!   sent after it (contiguous timestamps) joins the audio before it without a hole. If
//!   the server's silence has already covered a late backlog's place, the backlog is
//!   written right after it (a re-anchor), never dropped.
//! * **The end.** [`Recording::finish`] writes everything still buffered, gaps and all,
//!   then pads with silence to the end of the call. The file is as long as the call, or
//!   longer when the caller's audio runs past it.
//! * **Bounds.** The jitter buffer holds a bounded number of packets; a gap is never
//!   filled past the point where the file would run more than [`MAX_LEAD`] plus a quarter
//!   of the call ahead of the wall clock, and audio beyond it is refused (a hostile or
//!   broken sender cannot make the file grow much faster than the call).
//!
//! The write cursor never moves backwards and a sample is written exactly once.

mod clock;
mod files;
mod frames;
mod level;
pub mod ogg;
mod recorder;
mod write;

use crate::media::SAMPLE_RATE_HZ;
use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::sync::Arc;
use std::time::Duration;

use clock::ClockTrack;
use files::open_files;
use frames::frame_len;
use ogg::OggTrack;
use write::Kind;

pub use files::{Files, Format};
pub use level::rms_dbfs;
pub use recorder::{replay, Recorder};

/// Sample rate of the decoder, the RTP clock and the WAV file.
/// Largest number of samples a 16-bit mono WAV can hold (the data chunk size
/// is a `u32`; some room is left for the header).
pub const MAX_SAMPLES: u64 = (u32::MAX as u64 - 4096) / 2;
/// A sender heard from within this long is stalled, not gone: no silence is written for
/// it yet, so a backlog it sends afterwards joins its audio without a hole.
pub const STALL_HOLD: Duration = Duration::from_secs(5);
/// Silent stretches (timestamp jumps, long losses) at least this long take up drift.
pub const ABSORB_MIN: Duration = Duration::from_millis(100);
/// How far ahead of the wall clock the file may run, beyond a quarter of the call's time,
/// before gaps stop being filled and audio is refused.
pub const MAX_LEAD: Duration = Duration::from_secs(10);

const RATE: u64 = SAMPLE_RATE_HZ as u64;
/// Longest Opus packet: 120 ms.
const MAX_FRAME: usize = 5760;
/// PLC lengths must be multiples of 2.5 ms.
const PLC_STEP: usize = 120;
/// Maximum PLC per gap (about 120 ms); the rest of a gap is silence.
const MAX_PLC_PER_GAP: usize = MAX_FRAME;
/// A sequence jump larger than this is a restart, not a loss (str0m extends 16-bit
/// sequence numbers to the nearest value, so real gaps are shorter).
const MAX_SEQ_GAP: u64 = 1 << 15;
/// Default frame length assumed before anything was decoded: 20 ms.
const DEFAULT_FRAME: usize = 960;
/// Drift smaller than this (20 ms, about network jitter) is left alone: a caller on time
/// keeps the exact pauses its timestamps say.
const DEADBAND: i128 = 960;

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
    /// How long a packet behind a sequence gap waits for the missing ones before they
    /// are declared lost and concealed. A missing packet arriving later than that is late.
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
    /// Sequence numbers that were skipped when writing: packets that never arrived (or
    /// arrived too late to be placed).
    pub lost: u64,
    /// Packets without audio (an empty payload: RTP padding only, as Firefox sends when it
    /// probes bandwidth, repeating the last timestamp). They take their sequence number, so
    /// they are not counted lost, and add nothing to the file.
    pub padding: u64,
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
    /// RMS (0 to 32768; see [`rms_dbfs`]) of the last full 200 ms written to the WAV,
    /// audio, concealment and silence alike; `None` before the first 200 ms and without a
    /// WAV (an Ogg-only recording decodes nothing).
    pub level_rms: Option<u16>,
    /// Total samples in the file.
    pub samples_written: u64,
}

/// Errors that end (or refuse) a recording step. Bad packets are never an
/// error: they are counted in [`RecordingStats`].
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("WAV write failed: {0}")]
    Wav(#[from] hound::Error),
    #[error("Ogg write failed: {0}")]
    Ogg(#[from] std::io::Error),
    #[error("a recording needs a file to write")]
    NoFile,
    #[error("Opus decoder error: {0}")]
    Opus(#[from] opus::Error),
    /// The requested time lies beyond what a WAV file can hold (~12.4 h);
    /// nothing was written for this call.
    #[error("recording would exceed the WAV size limit ({requested} > {MAX_SAMPLES} samples)")]
    TooLong { requested: u64 },
}

/// A packet waiting in the jitter buffer (keyed by sequence number).
struct Buffered {
    rtp_time: u64,
    /// Arrival, in samples since the call connected.
    arrival: u64,
    /// Expected decoded length in samples.
    dur: usize,
    payload: Arc<[u8]>,
}

/// The last packet written.
#[derive(Clone, Copy)]
struct Written {
    seq: u64,
    /// RTP time right after its audio.
    rtp_end: u64,
    /// File position right after its audio.
    end: u64,
}

/// Per-call recorder writing a mono 48 kHz 16-bit WAV into `W`.
///
/// Feed packets with [`push`](Self::push), move time forward with
/// [`advance`](Self::advance), checkpoint with [`flush`](Self::flush) and end
/// with [`finish`](Self::finish). See the module docs for the timeline model.
pub struct Recording<W: Write + Seek> {
    /// The WAV, and the decoder that feeds it (none without a WAV: the Ogg needs no decoding).
    wav: Option<(hound::WavWriter<W>, opus::Decoder)>,
    ogg: Option<OggTrack<W>>,
    /// Jitter depth in samples.
    depth: u64,
    /// Silence after the last arrival that is held back (a stall), in samples.
    hold: u64,
    /// Most packets the jitter buffer may hold (bounds memory on hostile input).
    max_buffered: usize,
    /// Jitter buffer keyed by sequence number.
    buffer: BTreeMap<u64, Buffered>,
    /// Arrival of the oldest packet waiting behind a sequence gap (None: recompute).
    waiting_since: Option<u64>,
    /// Next sample index to write (= samples in the file).
    cursor: u64,
    /// Latest time seen (`now` or an arrival), in samples.
    now_pos: u64,
    /// Latest arrival, in samples: the caller was last heard then.
    heard: u64,
    /// The last packet written, and a bitmap of written sequence numbers:
    /// bit `i` = `last.seq - i` was written.
    last: Option<Written>,
    seq_mask: u128,
    clock: ClockTrack,
    /// Length of the last decoded frame (PLC chunk size).
    last_frame: usize,
    /// Reused decode buffer, as long as the longest frame decoded so far (20 ms for
    /// browsers; up to 120 ms), not the longest possible: memory per caller counts.
    pcm: Vec<i16>,
    /// The decoder of a WAV that ended at a split, for the next segment's WAV.
    keep_decoder: Option<opus::Decoder>,
    /// The WAV's level over the current 200 ms (see [`RecordingStats::level_rms`]).
    level: level::LevelMeter,
    stats: RecordingStats,
}

/// Floor of `t * 48000`, saturating.
fn samples_floor(t: Duration) -> u64 {
    u64::try_from(t.as_nanos() * u128::from(RATE) / 1_000_000_000).unwrap_or(u64::MAX)
}

impl<W: Write + Seek> Recording<W> {
    /// Starts a WAV recording: writes a WAV header (mono, 48 kHz, 16-bit signed)
    /// to `writer` (positioned at offset 0) and creates the Opus decoder.
    pub fn new(writer: W, config: RecordingConfig) -> Result<Self, RecordingError> {
        Self::with_files(Files { wav: Some(writer), ogg: None }, config)
    }

    /// Starts a recording into `files` (at least one): the WAV's header and decoder, the
    /// Ogg stream's headers.
    pub fn with_files(files: Files<W>, config: RecordingConfig) -> Result<Self, RecordingError> {
        let (wav, ogg) = open_files(files, 0)?;
        let depth = samples_floor(config.jitter_depth);
        // Twice the packets of the shortest (2.5 ms) frames over the depth.
        let max_buffered = usize::try_from(depth / PLC_STEP as u64)
            .unwrap_or(usize::MAX)
            .saturating_mul(2)
            .saturating_add(64)
            .min(1 << 16);
        Ok(Self {
            wav,
            ogg,
            depth,
            hold: depth.max(samples_floor(STALL_HOLD)),
            max_buffered,
            buffer: BTreeMap::new(),
            waiting_since: None,
            cursor: 0,
            now_pos: 0,
            heard: 0,
            last: None,
            seq_mask: 0,
            clock: ClockTrack::default(),
            last_frame: DEFAULT_FRAME,
            pcm: vec![0i16; DEFAULT_FRAME],
            keep_decoder: None,
            level: level::LevelMeter::default(),
            stats: RecordingStats::default(),
        })
    }

    /// Buffers one packet, then calls [`advance`](Self::advance)`(packet.arrival)`.
    ///
    /// Duplicates, late packets and packets the buffer cannot hold are counted and
    /// dropped; an empty payload (padding) holds its place in the sequence and adds no
    /// audio. Errors come only from writing the WAV (or from a time beyond the WAV size
    /// limit).
    pub fn push(&mut self, packet: Packet) -> Result<(), RecordingError> {
        self.stats.packets += 1;
        let arrival = samples_floor(packet.arrival);
        self.insert(packet.seq, packet.rtp_time, packet.payload, arrival);
        self.heard = self.heard.max(arrival);
        self.advance(packet.arrival)
    }

    fn insert(&mut self, seq: u64, rtp_time: u64, payload: Arc<[u8]>, arrival: u64) {
        if self.seq_written(seq) || self.buffer.contains_key(&seq) {
            self.stats.duplicates += 1;
        } else if self.last.is_some_and(|l| seq <= l.seq) {
            log::trace!("recording: late packet seq {seq}");
            self.stats.late += 1;
        } else if self.buffer.len() >= self.max_buffered {
            log::trace!("recording: jitter buffer full, seq {seq} dropped");
            self.stats.overflow += 1;
        } else {
            let dur = frame_len(&payload).unwrap_or(self.last_frame);
            self.buffer.insert(seq, Buffered { rtp_time, arrival, dur, payload });
        }
    }

    /// Moves time forward to `now` (since the call connected): writes the buffered
    /// packets that are due, and silence for a caller not heard from for the stall hold.
    /// Time going backwards is ignored. Does not flush the header (see [`flush`](Self::flush)).
    pub fn advance(&mut self, now: Duration) -> Result<(), RecordingError> {
        let now_pos = samples_floor(now);
        if now_pos > MAX_SAMPLES {
            return Err(RecordingError::TooLong { requested: now_pos });
        }
        self.now_pos = self.now_pos.max(now_pos);
        self.drain(false)?;
        if self.buffer.is_empty() {
            // The caller went quiet: silence from the server's clock, the hold behind it.
            let quiet = self.now_pos.saturating_sub(self.heard);
            if quiet > self.hold {
                let from = self.last.map_or(self.heard, |l| l.end);
                self.fill_silence(from.saturating_add(quiet - self.hold).min(self.lead_limit()))?;
            }
        }
        Ok(())
    }

    /// Updates the WAV header and flushes the writer, so that what is on disk
    /// is a playable file. Call this periodically (not per packet).
    pub fn flush(&mut self) -> Result<(), RecordingError> {
        if let Some((wav, _)) = &mut self.wav {
            wav.flush()?;
        }
        if let Some(ogg) = &mut self.ogg {
            ogg.flush(self.cursor)?;
        }
        Ok(())
    }

    /// Ends the recording at `end` (since the call connected): writes every buffered
    /// packet (gaps concealed as usual), pads with silence up to `floor(end * 48000)`
    /// samples, and finalizes the file. The file is longer than that only when the
    /// caller's audio runs past the end (a fast clock): audio is never cut.
    pub fn finish(mut self, end: Duration) -> Result<RecordingStats, RecordingError> {
        let end_pos = samples_floor(end);
        if end_pos > MAX_SAMPLES {
            return Err(RecordingError::TooLong { requested: end_pos });
        }
        self.now_pos = self.now_pos.max(end_pos);
        self.drain(true)?;
        self.fill_silence(end_pos)?;
        let stats = self.stats();
        self.close_files()?;
        Ok(stats)
    }

    /// Current counters.
    pub fn stats(&self) -> RecordingStats {
        RecordingStats { samples_written: self.cursor, clock_ppm: self.clock.ppm(), ..self.stats }
    }

    /// Samples in the file so far (= the write cursor on the timeline).
    pub fn samples_written(&self) -> u64 {
        self.cursor
    }

    /// Packets waiting in the jitter buffer.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Most packets the jitter buffer will hold.
    pub fn max_buffered(&self) -> usize {
        self.max_buffered
    }

    /// Writes buffered packets in sequence order: the next in sequence at once, one behind
    /// a gap once the oldest waiting packet has waited the jitter depth; all when finishing.
    fn drain(&mut self, finishing: bool) -> Result<(), RecordingError> {
        while let Some(&seq) = self.buffer.keys().next() {
            if !finishing && !self.is_next(seq) {
                let since = match self.waiting_since {
                    Some(t) => t,
                    None => *self.waiting_since.insert(self.oldest_waiting()),
                };
                if self.now_pos < since.saturating_add(self.depth) {
                    break;
                }
            }
            let Some(b) = self.buffer.remove(&seq) else { break };
            self.waiting_since = None;
            self.play(seq, b)?;
        }
        Ok(())
    }

    fn oldest_waiting(&self) -> u64 {
        self.buffer.values().map(|b| b.arrival).min().unwrap_or(u64::MAX)
    }

    /// Places `b` on the timeline, fills the gap in front of it, decodes and writes it.
    fn play(&mut self, seq: u64, b: Buffered) -> Result<(), RecordingError> {
        let mut skipped = self.last.map_or(0, |l| seq.saturating_sub(l.seq).saturating_sub(1));
        if skipped > MAX_SEQ_GAP {
            // Not a loss: the sender restarted its sequence (str0m's extended sequence
            // numbers never jump this far otherwise). Nothing to conceal.
            self.stats.reanchors += 1;
            skipped = 0;
        }
        if b.payload.is_empty() {
            self.skip_padding(seq, skipped);
            return Ok(());
        }
        let Some(pos) = self.place(&b) else {
            log::trace!("recording: seq {seq} lies too far ahead of the call, dropped");
            self.stats.overflow += 1;
            return Ok(());
        };
        self.stats.lost = self.stats.lost.saturating_add(skipped);
        if pos > self.cursor {
            if skipped > 0 {
                self.conceal_gap(pos, &b)?;
            } else {
                self.fill_silence(pos)?;
            }
        }
        let at = self.cursor;
        let (len, decoded) = match self.decode(&b.payload, b.dur, false) {
            Some(n) => {
                self.last_frame = n;
                self.put(at, n, Kind::Audio, u64::MAX)?;
                (n, true)
            }
            None => {
                self.stats.decode_errors += 1;
                self.conceal_plc(at, b.dur, u64::MAX)?;
                (b.dur, false)
            }
        };
        if let Some(ogg) = &mut self.ogg {
            ogg.audio(at, &b.payload, len, skipped > 0, decoded)?;
        }
        self.stats.recorded += 1;
        self.mark_written(seq);
        self.last = Some(Written { seq, rtp_end: b.rtp_time.saturating_add(len as u64), end: self.cursor });
        self.clock.observe(b.arrival, b.rtp_time, at);
        Ok(())
    }

    /// A packet without audio takes its sequence number and nothing else: the timeline, the
    /// clock estimate and the cursor stay as the last audio left them. Packets missing before
    /// it are counted lost; the next audio's timestamp places it, with silence in between.
    fn skip_padding(&mut self, seq: u64, skipped: u64) {
        self.stats.padding += 1;
        self.stats.lost = self.stats.lost.saturating_add(skipped);
        self.mark_written(seq);
        if let Some(last) = &mut self.last {
            last.seq = seq;
        }
    }

    /// Where `b`'s audio starts in the file (at or after the cursor), or None if that is
    /// beyond what the file may hold. See the module docs.
    fn place(&mut self, b: &Buffered) -> Option<u64> {
        let limit = self.lead_limit();
        if self.cursor > limit {
            return None;
        }
        let Some(last) = self.last else {
            // The first packet: the wall clock places it.
            return Some(self.cursor.max(b.arrival).min(limit));
        };
        let gap = i128::from(b.rtp_time) - i128::from(last.rtp_end);
        if gap < 0 {
            // The caller's timestamps went backwards: carry on right after the last audio.
            self.stats.reanchors += 1;
            self.clock.reset();
            return Some(self.cursor);
        }
        let by_rtp = i128::from(last.end) + gap;
        let mut target = by_rtp;
        if gap >= i128::from(samples_floor(ABSORB_MIN)) {
            // A silent stretch takes up drift, and never places audio after it arrived.
            let late = self.clock.lateness();
            if late.abs() > DEADBAND {
                target += late;
            }
            target = target.min(i128::from(b.arrival.max(last.end)));
        }
        if target < i128::from(self.cursor) && by_rtp < i128::from(self.cursor) {
            // Silence from the server's clock already covers its place.
            self.stats.reanchors += 1;
        }
        let pos = u64::try_from(target).unwrap_or(0).clamp(self.cursor, limit);
        let drift = (i128::from(pos) - by_rtp).clamp(i64::MIN.into(), i64::MAX.into()) as i64;
        self.stats.drift_samples = self.stats.drift_samples.saturating_add(drift);
        Some(pos)
    }

    /// The furthest the file may reach now: [`MAX_LEAD`] plus a quarter of the call's
    /// time ahead of the wall clock.
    fn lead_limit(&self) -> u64 {
        let lead = samples_floor(MAX_LEAD).saturating_add(self.now_pos / 4);
        self.now_pos.saturating_add(lead).min(MAX_SAMPLES)
    }

    /// Whether `seq` directly follows the last written packet (or nothing was written yet).
    fn is_next(&self, seq: u64) -> bool {
        self.last.is_none_or(|last| seq == last.seq.wrapping_add(1))
    }

    fn seq_written(&self, seq: u64) -> bool {
        match self.last {
            Some(last) if seq <= last.seq => {
                let d = last.seq - seq;
                d < 128 && (self.seq_mask >> d) & 1 == 1
            }
            _ => false,
        }
    }

    /// Marks `seq` written; it is always past the last one written (sequence order).
    fn mark_written(&mut self, seq: u64) {
        self.seq_mask = match self.last {
            Some(last) if seq > last.seq && seq - last.seq < 128 => self.seq_mask << (seq - last.seq) | 1,
            _ => 1,
        };
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_formats;
