//! Media captures: the file format of every operation the recorder applied to one call, so
//! the call's WAV can be rebuilt byte for byte (`tapedeck replay`, see
//! [`super::recording::replay`]), and so the recorder can be regression-tested and fuzzed
//! from files.
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

use std::io::Write;
use std::time::Duration;

use super::recording::{Packet, RecordingConfig, RecordingError};

/// The first bytes of every capture.
pub const MAGIC: &[u8; 6] = b"TDCAP\x01";
const TAG_PACKET: u8 = 1;
const TAG_ADVANCE: u8 = 2;
const TAG_FLUSH: u8 = 3;
pub(crate) const TAG_END: u8 = 4;

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

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
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
    use super::*;

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
