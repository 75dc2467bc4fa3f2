//! What the recorder needs to know about an Opus packet without decoding it.

use super::{MAX_FRAME, PLC_STEP, SAMPLE_RATE_HZ};

/// Decoded length of an Opus packet, if it parses and is at most 120 ms.
pub(super) fn frame_len(payload: &[u8]) -> Option<usize> {
    opus::packet::get_nb_samples(payload, SAMPLE_RATE_HZ).ok().filter(|&n| n > 0 && n <= MAX_FRAME)
}

/// Rounds up to a valid PLC/FEC length (multiple of 2.5 ms, 2.5..=120 ms).
pub(super) fn plc_len(n: usize) -> usize {
    (n.div_ceil(PLC_STEP) * PLC_STEP).clamp(PLC_STEP, MAX_FRAME)
}

/// True if the packet carries in-band FEC (LBRR) data for the previous frame:
/// SILK or hybrid mode with the LBRR flag set (in libopus 1.5 this is
/// `opus_packet_has_lbrr`). The flag is the bit after the VAD flags at the
/// start of the first frame's range-coded data. Only called on losses.
pub(super) fn has_lbrr(payload: &[u8]) -> bool {
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
