//! Which files a recording writes ([`Format`]), opening them, and cutting a recording into
//! segments ([`Recording::split`]) between two writes.

use std::io::{Seek, Write};

use super::ogg::OggTrack;
use super::{Recording, RecordingError, SAMPLE_RATE_HZ};

/// Which files a recording writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// 16-bit mono 48 kHz WAV, decoded (concealment by FEC and PLC).
    #[default]
    Wav,
    /// Ogg/Opus from the packets as received: no decoding at all.
    Ogg,
    /// Both, on the same timeline.
    Both,
}

impl Format {
    /// Whether a WAV file is written.
    pub fn wav(self) -> bool {
        matches!(self, Format::Wav | Format::Both)
    }

    /// Whether an Ogg/Opus file is written.
    pub fn ogg(self) -> bool {
        matches!(self, Format::Ogg | Format::Both)
    }

    /// The file name extensions written, WAV first.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Wav => &["wav"],
            Format::Ogg => &["ogg"],
            Format::Both => &["wav", "ogg"],
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "wav" => Ok(Format::Wav),
            "ogg" => Ok(Format::Ogg),
            "both" => Ok(Format::Both),
            _ => Err(format!("'{s}' is not a format: wav, ogg or both")),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Wav => "wav",
            Format::Ogg => "ogg",
            Format::Both => "both",
        })
    }
}

/// The writers of one recording (or one segment of it): a WAV (hound seeks back to rewrite
/// its header) and/or an Ogg/Opus stream with its serial number.
pub struct Files<W> {
    pub wav: Option<W>,
    pub ogg: Option<(W, u32)>,
}

pub(super) type OpenFiles<W> = (Option<(hound::WavWriter<W>, opus::Decoder)>, Option<OggTrack<W>>);

/// Writes the headers of `files`, whose timeline starts at `origin`.
pub(super) fn open_files<W: Write + Seek>(files: Files<W>, origin: u64) -> Result<OpenFiles<W>, RecordingError> {
    if files.wav.is_none() && files.ogg.is_none() {
        return Err(RecordingError::NoFile);
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE_HZ,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let wav = match files.wav {
        Some(w) => Some((hound::WavWriter::new(w, spec)?, opus::Decoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono)?)),
        None => None,
    };
    let ogg = files.ogg.map(|(w, serial)| OggTrack::new(w, serial, origin));
    Ok((wav, ogg))
}

impl<W: Write + Seek> Recording<W> {
    /// Ends the current files here, between two writes, and goes on into `next`: every
    /// sample so far is in the files that end, every later one in the new ones (whose
    /// timeline starts at [`samples_written`](Self::samples_written)). The jitter buffer,
    /// the decoder and the clock estimate carry on as if nothing happened.
    pub fn split(&mut self, next: Files<W>) -> Result<(), RecordingError> {
        self.close_files()?;
        let (wav, ogg) = open_files(next, self.cursor)?;
        let kept = self.keep_decoder.take();
        self.wav = wav.map(|(w, fresh)| (w, kept.unwrap_or(fresh)));
        self.ogg = ogg;
        Ok(())
    }

    /// Finalizes the WAV (keeping its decoder for what follows) and ends the Ogg stream at
    /// the cursor.
    pub(super) fn close_files(&mut self) -> Result<(), RecordingError> {
        if let Some(ogg) = self.ogg.take() {
            ogg.finish(self.cursor)?;
        }
        if let Some((wav, decoder)) = self.wav.take() {
            self.keep_decoder = Some(decoder);
            wav.finalize()?;
        }
        Ok(())
    }
}
