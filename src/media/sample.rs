//! The looped sample: loaded once, converted to 48 kHz mono s16, encoded frame by frame.
//!
//! The PCM is treated as an endless loop: a frame that crosses the end of the file takes
//! its tail from the start, so the encoder sees one continuous signal and the RTP time the
//! engine stamps stays continuous across loop boundaries.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// The only rate the daemon works at.
pub const RATE: u32 = 48_000;
/// Opus bitrate of the outgoing sample.
pub const SAMPLE_BITRATE: i32 = 48_000;
/// Largest Opus packet we produce (60 ms at 48 kb/s is 360 bytes).
const MAX_PACKET: usize = 1500;
/// A sample shorter than this is refused: it would loop audibly as a buzz.
const MIN_SAMPLE: Duration = Duration::from_millis(100);

/// Why the sample cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("cannot read the sample {path}: {source}")]
    Read { path: String, source: hound::Error },
    #[error("the sample is {0} Hz; tapedeck needs 48000 Hz (convert it, e.g. `sox in.wav -r 48000 out.wav`)")]
    Rate(u32),
    #[error("the sample has {0} channels; tapedeck takes mono or stereo")]
    Channels(u16),
    #[error("the sample format ({0:?}, {1} bits) is not supported")]
    Format(hound::SampleFormat, u16),
    #[error("the sample is shorter than {min:?}", min = MIN_SAMPLE)]
    TooShort,
    #[error("the Opus encoder failed: {0}")]
    Opus(#[from] opus::Error),
}

/// Reads a WAV file as 48 kHz mono s16 (stereo is mixed down; 8/16/24/32-bit and float accepted).
pub fn load(path: &std::path::Path) -> Result<Vec<i16>, SampleError> {
    let err = |source| SampleError::Read { path: path.display().to_string(), source };
    let file = std::fs::File::open(path).map_err(|e| err(hound::Error::IoError(e)))?;
    decode(std::io::BufReader::new(file)).map_err(|e| match e {
        SampleError::Read { source, .. } => err(source),
        other => other,
    })
}

/// Decodes WAV bytes from any reader; see [`load`].
pub fn decode<R: Read>(reader: R) -> Result<Vec<i16>, SampleError> {
    let read_err = |source| SampleError::Read { path: String::new(), source };
    let mut wav = hound::WavReader::new(reader).map_err(read_err)?;
    let spec = wav.spec();
    if spec.sample_rate != RATE {
        return Err(SampleError::Rate(spec.sample_rate));
    }
    if !(1..=2).contains(&spec.channels) {
        return Err(SampleError::Channels(spec.channels));
    }
    let raw: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => wav.samples::<f32>().collect::<Result<_, _>>().map_err(read_err)?,
        (hound::SampleFormat::Int, bits @ 8..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            wav.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect::<Result<_, _>>().map_err(read_err)?
        }
        (format, bits) => return Err(SampleError::Format(format, bits)),
    };
    let pcm: Vec<i16> = raw
        .chunks(spec.channels as usize)
        .map(|c| {
            let mean = c.iter().sum::<f32>() / c.len() as f32;
            (mean * 32767.0).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    if (pcm.len() as u64) < MIN_SAMPLE.as_millis() as u64 * u64::from(RATE) / 1000 {
        return Err(SampleError::TooShort);
    }
    Ok(pcm)
}

/// Encodes the looped sample into Opus frames of one packet time each.
pub struct LoopEncoder {
    pcm: Arc<[i16]>,
    pos: usize,
    frame: Vec<i16>,
    out: Vec<u8>,
    encoder: opus::Encoder,
}

impl LoopEncoder {
    /// A new encoder at the start of the loop; `ptime` must be 10, 20, 40 or 60 ms.
    pub fn new(pcm: Arc<[i16]>, ptime: Duration) -> Result<Self, SampleError> {
        let mut encoder = opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Audio)?;
        encoder.set_bitrate(opus::Bitrate::Bits(SAMPLE_BITRATE))?;
        let len = (ptime.as_micros() as usize) * RATE as usize / 1_000_000;
        if pcm.len() < len {
            return Err(SampleError::TooShort);
        }
        Ok(LoopEncoder { pcm, pos: 0, frame: vec![0; len], out: vec![0; MAX_PACKET], encoder })
    }

    /// Samples per frame.
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    /// The next frame of the loop, Opus-encoded.
    pub fn next_frame(&mut self) -> Result<Arc<[u8]>, SampleError> {
        let len = self.frame.len();
        let mut filled = 0;
        while filled < len {
            let take = (len - filled).min(self.pcm.len() - self.pos);
            self.frame[filled..filled + take].copy_from_slice(&self.pcm[self.pos..self.pos + take]);
            filled += take;
            self.pos = (self.pos + take) % self.pcm.len();
        }
        let n = self.encoder.encode(&self.frame, &mut self.out)?;
        Ok(Arc::from(&self.out[..n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(spec: hound::WavSpec, frames: usize, f: impl Fn(usize) -> f32) -> Vec<u8> {
        let mut cur = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for i in 0..frames {
            for _ in 0..spec.channels {
                let v = f(i);
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => w.write_sample(v).unwrap(),
                    (_, bits) => w.write_sample((v * ((1i64 << (bits - 1)) - 1) as f32) as i32).unwrap(),
                }
            }
        }
        w.finalize().unwrap();
        cur.into_inner()
    }

    fn spec(channels: u16, bits: u16, format: hound::SampleFormat, rate: u32) -> hound::WavSpec {
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: bits, sample_format: format }
    }

    #[test]
    fn stereo_24_bit_is_mixed_to_mono_s16() {
        let bytes = wav(spec(2, 24, hound::SampleFormat::Int, 48_000), 9600, |_| 0.5);
        let pcm = decode(&bytes[..]).unwrap();
        assert_eq!(pcm.len(), 9600);
        assert!((pcm[100] - 16383).abs() < 3, "{}", pcm[100]);
    }

    #[test]
    fn float_is_accepted() {
        let bytes = wav(spec(1, 32, hound::SampleFormat::Float, 48_000), 9600, |_| -0.25);
        let pcm = decode(&bytes[..]).unwrap();
        assert!((pcm[0] + 8192).abs() < 3, "{}", pcm[0]);
    }

    #[test]
    fn other_rates_and_garbage_are_refused_with_a_reason() {
        let bytes = wav(spec(1, 16, hound::SampleFormat::Int, 44_100), 9600, |_| 0.0);
        assert!(matches!(decode(&bytes[..]), Err(SampleError::Rate(44_100))));
        let err = decode(&b"this is not a wav file at all"[..]).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
        let short = wav(spec(1, 16, hound::SampleFormat::Int, 48_000), 100, |_| 0.0);
        assert!(matches!(decode(&short[..]), Err(SampleError::TooShort)));
    }

    #[test]
    fn the_loop_wraps_without_a_seam_and_frames_decode() {
        // 250 ms of ramp: a 20 ms frame crossing the end takes its tail from the start.
        let pcm: Arc<[i16]> = (0..12_000).map(|i| (i % 1000) as i16).collect();
        let mut enc = LoopEncoder::new(pcm, Duration::from_millis(20)).unwrap();
        assert_eq!(enc.frame_len(), 960);
        let mut dec = opus::Decoder::new(RATE, opus::Channels::Mono).unwrap();
        let mut out = vec![0i16; 960];
        for _ in 0..30 {
            let frame = enc.next_frame().unwrap();
            assert!(!frame.is_empty() && frame.len() < 400);
            assert_eq!(dec.decode(&frame, &mut out, false).unwrap(), 960);
        }
        // 30 frames of 960 = 28 800 samples = 2 loops + 4800.
        assert_eq!(enc.pos, 28_800 % 12_000);
    }
}
