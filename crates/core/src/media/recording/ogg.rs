//! Ogg/Opus (RFC 7845) written straight from the caller's packets, without decoding: the
//! cheapest recording there is. It follows the WAV's timeline (see the module docs above):
//! the [`Recording`](super::Recording) tells it where each packet's audio starts in the file,
//! and it fills what lies between with Opus frames of its own, so the two files play the
//! same audio at the same time and last exactly as long.
//!
//! * **Gaps.** Opus frames come in steps of 2.5 ms (120 samples), the timeline in samples:
//!   a gap is filled with whole frames up to the packet's place or just before it, so a
//!   packet may start up to 2.5 ms earlier than in the WAV; the error never accumulates (each
//!   packet is placed against the WAV's position; see also the start, below). A gap behind a loss is concealed by the
//!   player's decoder: frames without data (a 1-byte packet, which decoders conceal as lost),
//!   at most [`MAX_PLC`] of them, as the WAV's own concealment; the rest of a gap is silence
//!   (CELT frames that decode to digital zero; the player's decoder fades into the first
//!   of them over a frame where the WAV stops at once). The WAV rebuilds the last lost frame from the
//!   next packet's in-band FEC; the Ogg cannot (FEC is only reachable through a decoder), so
//!   there the player conceals it.
//! * **Pages.** A packet is held until the next one or a flush, so a flush can end the page
//!   with it: after [`OggTrack::flush`], everything written is on complete pages, and a
//!   killed process leaves a file that plays up to there.
//! * **The end.** [`OggTrack::finish`] fills to the end with silence frames, rounding up, and
//!   gives the last page the exact end as its granule position: players trim the rest
//!   (RFC 7845, section 4.5), so the stream is exactly as long as the WAV.
//!
//! * **The start.** The headers wait for the first packet (or the first flush): the
//!   identification header's pre-skip (2.5 ms of silence, and under 2.5 ms more) then makes the first packet start
//!   exactly where it does in the WAV, and with it every packet that follows by whole frames
//!   (a continuous call is sample-exact; only drift taken up in a pause shifts it again).
//!
//! The stream is mono (channel count 1, mapping family 0; stereo packets are downmixed by
//! the player's decoder). The caller's encoder delay is part of the audio it sent, as it is
//! in the WAV, so nothing else is skipped.

use std::borrow::Cow;
use std::io::{self, Write};

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

use super::frames::frame_len;
use super::{MAX_FRAME, PLC_STEP, SAMPLE_RATE_HZ};

/// The least pre-skip written: players (and `opusinfo`) take a smaller one for a broken
/// stream, since every encoder has a delay of at least this (2.5 ms). One silence frame of
/// it comes first and is skipped.
const MIN_PRE_SKIP: u64 = PLC_STEP as u64;

/// Most concealment frames in one gap (about 120 ms, as the WAV's PLC): then silence.
pub const MAX_PLC: u64 = MAX_FRAME as u64;

/// CELT-only, full-band, mono frames of 20, 10, 5 and 2.5 ms whose range-coded data says
/// "silence": they decode to digital zero.
const SILENCE: [(u64, &[u8]); 4] =
    [(960, &[0xF8, 0xFF, 0xFE]), (480, &[0xF0, 0xFF, 0xFE]), (240, &[0xE8, 0xFF, 0xFE]), (120, &[0xE0, 0xFF, 0xFE])];
/// The same lengths as a bare table-of-contents byte: a frame with no data, which a decoder
/// treats as lost and conceals from the audio before it.
const CONCEAL: [(u64, &[u8]); 4] = [(960, &[0xF8]), (480, &[0xF0]), (240, &[0xE8]), (120, &[0xE0])];

/// One Ogg/Opus stream being written into `W`. See the module docs.
pub struct OggTrack<W: Write> {
    writer: PacketWriter<'static, W>,
    serial: u32,
    /// The timeline position of the stream's first played sample (a segment starts mid-call).
    origin: u64,
    /// Samples the player skips at the start; `None` until the headers are written.
    pre_skip: Option<u64>,
    /// Samples in the stream so far, pre-skip included (the granule position after the last
    /// packet).
    granule: u64,
    /// The last packet, not yet handed to the page writer, and the granule after it.
    held: Option<(Cow<'static, [u8]>, u64)>,
    /// Concealment frames left for the current gap.
    conceal_left: u64,
}

impl<W: Write> OggTrack<W> {
    /// A stream with serial number `serial` whose first sample is timeline position
    /// `origin`. Nothing is written before the first packet or flush (see the module docs).
    pub fn new(out: W, serial: u32, origin: u64) -> Self {
        let writer = PacketWriter::new(out);
        OggTrack { writer, serial, origin, pre_skip: None, granule: 0, held: None, conceal_left: 0 }
    }

    /// Writes a packet whose audio starts at timeline position `at` and lasts `len` samples,
    /// after filling the gap in front of it (concealed if `after_loss`). A payload that is not
    /// a well-formed Opus packet of `len` samples (`decodable` false, or its framing does not
    /// parse) is written as concealment instead: players must not choke on it.
    pub fn audio(&mut self, at: u64, payload: &[u8], len: usize, after_loss: bool, decodable: bool) -> io::Result<()> {
        let step = PLC_STEP as u64;
        self.start(MIN_PRE_SKIP + (step - at.saturating_sub(self.origin) % step) % step)?;
        self.conceal_left = if after_loss { MAX_PLC } else { 0 };
        self.fill(at)?;
        self.conceal_left = 0;
        let well_formed = decodable && frame_len(payload) == Some(len) && opus::packet::parse(payload).is_ok();
        if well_formed {
            self.push(Cow::Owned(payload.to_vec()), len as u64)
        } else {
            self.conceal_left = len as u64;
            let end = self.position() + len as u64;
            let filled = self.fill(end);
            self.conceal_left = 0;
            filled
        }
    }

    /// Fills with silence up to timeline position `cursor` (as far as whole frames go), ends
    /// the page and flushes the writer: what was written plays if the process dies now.
    pub fn flush(&mut self, cursor: u64) -> io::Result<()> {
        self.start(MIN_PRE_SKIP)?;
        self.fill(cursor)?;
        self.end_page(PacketWriteEndInfo::EndPage)?;
        self.writer.inner_mut().flush()
    }

    /// Ends the stream at timeline position `end`: silence up to it (the last frame may run
    /// past it, and the last page's granule position trims it back), then the last page.
    /// Hands back the writer.
    pub fn finish(mut self, end: u64) -> io::Result<W> {
        self.start(MIN_PRE_SKIP)?;
        self.fill(end)?;
        let target = self.target(end);
        while self.granule < target {
            self.push(Cow::Borrowed(SILENCE[3].1), SILENCE[3].0)?;
        }
        if let Some((_, granule)) = &mut self.held {
            *granule = target.min(*granule);
        } else {
            // Nothing after the headers (or all of it flushed): an empty last page would be
            // odd; one silence frame carries the end instead.
            let trimmed = target.min(self.granule + SILENCE[3].0);
            self.granule += SILENCE[3].0;
            self.held = Some((Cow::Borrowed(SILENCE[3].1), trimmed));
        }
        self.end_page(PacketWriteEndInfo::EndStream)?;
        let mut out = self.writer.into_inner();
        out.flush()?;
        Ok(out)
    }

    /// The timeline position the stream has reached.
    pub fn position(&self) -> u64 {
        (self.origin + self.granule).saturating_sub(self.pre_skip.unwrap_or(0))
    }

    /// Writes the headers, once, with `pre_skip`.
    fn start(&mut self, pre_skip: u64) -> io::Result<()> {
        if self.pre_skip.is_some() {
            return Ok(());
        }
        self.pre_skip = Some(pre_skip);
        let head = opus_head(pre_skip as u16);
        self.writer.write_packet(head, self.serial, PacketWriteEndInfo::EndPage, 0)?;
        self.writer.write_packet(opus_tags(), self.serial, PacketWriteEndInfo::EndPage, 0)
    }

    /// The granule position of timeline position `to`.
    fn target(&self, to: u64) -> u64 {
        (to + self.pre_skip.unwrap_or(0)).saturating_sub(self.origin)
    }

    /// Fills up to timeline position `to` with whole frames: concealment while
    /// `conceal_left` lasts, then silence. Stops short of `to` by less than 2.5 ms.
    fn fill(&mut self, to: u64) -> io::Result<()> {
        let target = self.target(to);
        while self.granule + PLC_STEP as u64 <= target {
            let room = target - self.granule;
            let table = if self.conceal_left >= PLC_STEP as u64 { &CONCEAL } else { &SILENCE };
            let limit = if self.conceal_left >= PLC_STEP as u64 { room.min(self.conceal_left) } else { room };
            // The largest frame that fits; 2.5 ms always does (room >= 120 here).
            let &(len, bytes) = table.iter().find(|(len, _)| *len <= limit).unwrap_or(&table[3]);
            self.conceal_left = self.conceal_left.saturating_sub(len);
            self.push(Cow::Borrowed(bytes), len)?;
        }
        Ok(())
    }

    fn push(&mut self, packet: Cow<'static, [u8]>, len: u64) -> io::Result<()> {
        self.granule += len;
        if let Some((held, granule)) = self.held.replace((packet, self.granule)) {
            self.writer.write_packet(held, self.serial, PacketWriteEndInfo::NormalPacket, granule)?;
        }
        Ok(())
    }

    fn end_page(&mut self, how: PacketWriteEndInfo) -> io::Result<()> {
        match self.held.take() {
            Some((held, granule)) => self.writer.write_packet(held, self.serial, how, granule),
            None => Ok(()),
        }
    }
}

/// The identification header: version 1, one channel, `pre_skip`, 48 kHz, no gain,
/// mapping family 0.
fn opus_head(pre_skip: u16) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(1);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&SAMPLE_RATE_HZ.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

/// The comment header: the vendor, no comments.
fn opus_tags() -> Vec<u8> {
    let vendor = concat!("tapedeck ", env!("CARGO_PKG_VERSION"), " (packets as received)");
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor.as_bytes());
    tags.extend_from_slice(&0u32.to_le_bytes());
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every filler frame is a valid Opus packet of its length; silence decodes to zeros,
    /// concealment to what the decoder makes of a lost frame.
    #[test]
    fn filler_frames_decode_to_their_length() {
        let mut decoder = opus::Decoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono).unwrap();
        let mut pcm = vec![1i16; MAX_FRAME];
        for &(len, bytes) in SILENCE.iter().chain(&CONCEAL) {
            assert_eq!(frame_len(bytes), Some(len as usize), "{bytes:02x?}");
            let n = decoder.decode(bytes, &mut pcm, false).unwrap();
            assert_eq!(n as u64, len, "{bytes:02x?}");
        }
        for &(len, bytes) in &SILENCE {
            let n = decoder.decode(bytes, &mut pcm, false).unwrap();
            assert_eq!(n as u64, len);
            assert!(pcm[..n].iter().all(|&s| s == 0), "{bytes:02x?} is not silent");
        }
    }

    /// Reads the pages back: (granule position, packets, flags) per page.
    fn pages(bytes: &[u8]) -> Vec<(u64, Vec<Vec<u8>>)> {
        let mut reader = ogg::reading::PacketReader::new(io::Cursor::new(bytes.to_vec()));
        let mut out: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
        let mut page = Vec::new();
        while let Some(p) = reader.read_packet().unwrap() {
            page.push(p.data.clone());
            if p.last_in_page() {
                out.push((p.absgp_page(), std::mem::take(&mut page)));
            }
        }
        out
    }

    #[test]
    fn gaps_are_filled_to_the_packet_and_the_end_is_exact() {
        let audio = [0xF8u8, 0x01, 0x02, 0x03]; // a 20 ms CELT packet
        let mut track = OggTrack::new(Vec::new(), 7, 0);
        // The first packet at 1000: a pre-skip of 200 (80, and the least of 120) puts it
        // there exactly, after 1200 of stream (960 + 2 * 120 of silence).
        track.audio(1000, &audio, 960, false, true).unwrap();
        assert_eq!(track.position(), 1960);
        track.audio(1960 + 3000, &audio, 960, true, true).unwrap(); // after a loss
        assert_eq!(track.position(), 5920, "whole frames: exactly in place");
        track.audio(5920 + 50, &audio, 960, false, true).unwrap(); // 50 later: 50 early
        assert_eq!(track.position(), 6880);
        track.flush(8000).unwrap();
        let bytes = track.finish(9001).unwrap();
        let pages = pages(&bytes);
        assert_eq!(&pages[0].1[0][..8], b"OpusHead");
        assert_eq!(u16::from_le_bytes([pages[0].1[0][10], pages[0].1[0][11]]), 200, "pre-skip");
        assert_eq!(&pages[1].1[0][..8], b"OpusTags");
        let packets: Vec<&Vec<u8>> = pages[2..].iter().flat_map(|(_, p)| p).collect();
        let total: usize = packets.iter().map(|p| frame_len(p).unwrap()).sum();
        // Concealment for the loss: bare TOC bytes for the 3000 samples of the gap.
        let conceal: usize = packets.iter().filter(|p| p.len() == 1).map(|p| frame_len(p).unwrap()).sum();
        assert_eq!(conceal, 3000);
        assert_eq!(pages.last().unwrap().0, 9001 + 200, "the last page trims to the end");
        assert!((9201..9201 + 120).contains(&total), "{total}");
        // The flush ended a page at 8160 of the stream (7960 of the timeline, whole frames
        // short of 8000).
        assert!(pages.iter().any(|(g, _)| *g == 8160), "{:?}", pages.iter().map(|p| p.0).collect::<Vec<_>>());
    }

    #[test]
    fn a_packet_that_does_not_parse_becomes_concealment() {
        let mut track = OggTrack::new(Vec::new(), 7, 0);
        track.audio(0, &[0xFB, 0xFF], 960, false, true).unwrap(); // code 3 without a count
        let bytes = track.finish(960).unwrap();
        let packets: Vec<Vec<u8>> = pages(&bytes)[2..].iter().flat_map(|(_, p)| p.clone()).collect();
        assert_eq!(packets, vec![SILENCE[3].1.to_vec(), vec![0xF8]], "the least pre-skip, then concealment");
    }
}
