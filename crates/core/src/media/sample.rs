//! The looped sample: decoded once, converted to 48 kHz mono s16, encoded frame by frame.
//!
//! Any WAV a user is likely to have is accepted: 8 to 384 kHz, 1 to 8 channels (averaged to
//! mono), 8/16/24/32-bit int or 32-bit float. Another rate is converted once, at start, with
//! rubato's FFT resampler; the file is resampled as the loop it will be played as (padded with
//! its own end before and its own start after), so the seam sounds like the rest.
//!
//! The PCM is treated as an endless loop: a frame that crosses the end of the file takes
//! its tail from the start, so the encoder sees one continuous signal and the RTP time the
//! engine stamps stays continuous across loop boundaries.
//!
//! The frames repeat once the loop and the frames line up again (after one loop when its
//! length is a whole number of frames, as the 4 s default is). When that happens within
//! [`MAX_LOOP_FRAMES`], the encoder keeps the second such cycle's frames and the sample is a
//! [`SampleLoop`] from then on, with no encoding at all. It sounds as continuous encoding
//! does (within about 45 dB: the encoder's adaptive state is not exactly periodic, so the
//! bytes differ), seams included: the kept cycle's first frame was encoded right after a
//! whole cycle, as every later seam is. The first cycle is not kept: it started from a
//! fresh encoder.

use crate::media::SAMPLE_RATE_HZ;
use std::fmt;
use std::io::Read;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

/// Opus bitrate of the outgoing sample.
pub const SAMPLE_BITRATE: i32 = 48_000;
/// Sample rates a sample file may have (telephone to studio); others are refused.
pub const SOURCE_RATES: RangeInclusive<u32> = 8_000..=384_000;
/// Most channels a sample file may have (7.1); they are averaged to mono.
pub const MAX_CHANNELS: u16 = 8;
/// Most frames a repeating cycle of the sample may have to be kept (10 minutes of 10 ms
/// frames, about 4 MB at [`SAMPLE_BITRATE`]); a longer one is encoded as it plays.
pub const MAX_LOOP_FRAMES: usize = 60_000;
/// Largest Opus packet we produce (60 ms at 48 kb/s is 360 bytes).
const MAX_PACKET: usize = 1500;
/// A sample shorter than this is refused: it would loop audibly as a buzz.
const MIN_SAMPLE: Duration = Duration::from_millis(100);
/// Input frames per FFT block of the resampler (rubato rounds it up to suit the ratio).
/// Longer blocks give a steeper anti-aliasing filter; the conversion runs once, at start.
const RESAMPLE_BLOCK: usize = 2048;

/// Why the sample cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("cannot open the sample {path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("the sample {path} is refused: {source}")]
    Refused { path: String, source: DecodeError },
    #[error("the sample is shorter than one packet")]
    TooShort,
    #[error("the Opus encoder failed: {0}")]
    Opus(#[from] opus::Error),
}

/// What is wrong with a sample file's bytes.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("it is not a WAV file ({0})")]
    NotWav(&'static str),
    #[error("it is a WAV file tapedeck cannot read ({0}); it takes 8/16/24/32-bit int or 32-bit float PCM")]
    Encoding(String),
    #[error("cannot read it: {0}")]
    Io(std::io::Error),
    #[error("it is a damaged or cut-short WAV file ({0})")]
    Damaged(hound::Error),
    #[error("it is {0} Hz; tapedeck converts {min} to {max} Hz", min = SOURCE_RATES.start(), max = SOURCE_RATES.end())]
    Rate(u32),
    #[error("it has {0} channels; tapedeck mixes down 1 to {MAX_CHANNELS}")]
    Channels(u16),
    #[error("it is shorter than {MIN_SAMPLE:?} and would loop as a buzz")]
    TooShort,
    #[error("resampling {0} Hz to 48000 Hz failed: {1}")]
    Resample(u32, String),
}

/// What a sample file held before conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub rate: u32,
    pub channels: u16,
    pub bits: u16,
    pub format: hound::SampleFormat,
    /// Frames (one sample per channel) read from the file.
    pub frames: usize,
}

/// A decoded sample: 48 kHz mono s16, and what it was converted from.
#[derive(Debug, Clone)]
pub struct Converted {
    pub pcm: Vec<i16>,
    pub source: Source,
}

/// Decodes WAV bytes from any reader and converts them to 48 kHz mono s16 (the daemon reads
/// the file and calls this once, at start).
pub fn decode<R: Read>(reader: R) -> Result<Converted, DecodeError> {
    let mut wav = wav_reader(reader)?;
    let spec = wav.spec();
    if !SOURCE_RATES.contains(&spec.sample_rate) {
        return Err(DecodeError::Rate(spec.sample_rate));
    }
    if !(1..=MAX_CHANNELS).contains(&spec.channels) {
        return Err(DecodeError::Channels(spec.channels));
    }
    let mono = read_mono(&mut wav)?;
    if (mono.len() as u128) * 1000 < MIN_SAMPLE.as_millis() * u128::from(spec.sample_rate) {
        return Err(DecodeError::TooShort);
    }
    let source = Source {
        rate: spec.sample_rate,
        channels: spec.channels,
        bits: spec.bits_per_sample,
        format: spec.sample_format,
        frames: mono.len(),
    };
    let pcm = resample_loop(mono, spec.sample_rate)?.into_iter().map(to_s16).collect();
    Ok(Converted { pcm, source })
}

impl fmt::Display for Source {
    /// "44100 Hz, 2 channels, 16-bit int, 3.2 s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.channels == 1 { "" } else { "s" };
        let format = match self.format {
            hound::SampleFormat::Int => "int",
            hound::SampleFormat::Float => "float",
        };
        let secs = self.frames as f64 / f64::from(self.rate);
        write!(f, "{} Hz, {} channel{plural}, {}-bit {format}, {secs:.1} s", self.rate, self.channels, self.bits)
    }
}

/// Encodes the looped sample into Opus frames of one packet time each.
pub struct LoopEncoder {
    pcm: Arc<[i16]>,
    pos: usize,
    frame: Vec<i16>,
    out: Vec<u8>,
    encoder: opus::Encoder,
    /// Frames until the loop and the frames line up again, if that is few enough to keep.
    cycle: Option<usize>,
    /// Frames encoded so far.
    encoded: usize,
    /// The second cycle's frames, as they are encoded.
    kept: Vec<Arc<[u8]>>,
}

/// The sample's frames once they repeat: a cycle played round and round.
#[derive(Debug, Clone)]
pub struct SampleLoop {
    frames: Arc<[Arc<[u8]>]>,
    next: usize,
}

impl SampleLoop {
    /// The next frame.
    pub fn next_frame(&mut self) -> Arc<[u8]> {
        let frame = self.frames[self.next].clone();
        self.next = (self.next + 1) % self.frames.len();
        frame
    }

    /// The frame `n` places after the next one (`ahead(0)` is what [`SampleLoop::next_frame`]
    /// returns next), without moving.
    pub fn ahead(&self, n: u64) -> Arc<[u8]> {
        let len = self.frames.len() as u64;
        let i = (self.next as u64 + n % len) % len;
        self.frames[i as usize].clone()
    }

    /// Frames in one cycle.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Never true: a loop has at least one frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl LoopEncoder {
    /// A new encoder at the start of the loop, making frames of `ptime`.
    pub fn new(pcm: Arc<[i16]>, ptime: super::Ptime) -> Result<Self, SampleError> {
        let mut encoder = opus::Encoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono, opus::Application::Audio)?;
        encoder.set_bitrate(opus::Bitrate::Bits(SAMPLE_BITRATE))?;
        let len = ptime.samples();
        if pcm.len() < len {
            return Err(SampleError::TooShort);
        }
        // The frames line up with the loop again after lcm(loop, frame) samples.
        let cycle = pcm.len() / gcd(pcm.len() as u64, len as u64) as usize;
        let cycle = (cycle <= MAX_LOOP_FRAMES).then_some(cycle);
        let frame = vec![0; len];
        Ok(LoopEncoder { pcm, pos: 0, frame, out: vec![0; MAX_PACKET], encoder, cycle, encoded: 0, kept: Vec::new() })
    }

    /// Once the frames repeat (the second cycle is encoded), the loop that plays on from
    /// here: its first frame is the one [`LoopEncoder::next_frame`] would return next.
    pub fn repeating(&self) -> Option<SampleLoop> {
        let cycle = self.cycle?;
        (self.encoded == 2 * cycle).then(|| SampleLoop { frames: self.kept.as_slice().into(), next: 0 })
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
        let frame: Arc<[u8]> = Arc::from(&self.out[..n]);
        if self.cycle.is_some_and(|c| (c..2 * c).contains(&self.encoded)) {
            self.kept.push(frame.clone());
        }
        self.encoded += 1;
        Ok(frame)
    }
}

/// Checks the RIFF/WAVE magic before hound sees the bytes, so that a file that is not a WAV at
/// all (text, MP3, empty) is told apart from a WAV that is damaged or in an unusual encoding.
fn wav_reader<R: Read>(mut reader: R) -> Result<hound::WavReader<impl Read>, DecodeError> {
    let mut head = Vec::with_capacity(12);
    reader.by_ref().take(12).read_to_end(&mut head).map_err(DecodeError::Io)?;
    if head.is_empty() {
        return Err(DecodeError::NotWav("the file is empty"));
    }
    if head.starts_with(b"RF64") || head.starts_with(b"BW64") {
        return Err(DecodeError::Encoding("64-bit RF64/BW64 container".into()));
    }
    if head.len() < 12 || &head[..4] != b"RIFF" || &head[8..] != b"WAVE" {
        return Err(DecodeError::NotWav("no RIFF/WAVE header"));
    }
    hound::WavReader::new(std::io::Cursor::new(head).chain(reader)).map_err(|e| match e {
        hound::Error::IoError(_) => read_error(e),
        other => DecodeError::Encoding(other.to_string()),
    })
}

/// A read that failed: the system's fault (an OS error), or the file's (hound reports a
/// file that ends early as an error without an OS code).
fn read_error(e: hound::Error) -> DecodeError {
    match e {
        hound::Error::IoError(io) if io.raw_os_error().is_some() => DecodeError::Io(io),
        other => DecodeError::Damaged(other),
    }
}

/// Reads every frame as f32 in -1..=1, averaging the channels.
fn read_mono<R: Read>(wav: &mut hound::WavReader<R>) -> Result<Vec<f32>, DecodeError> {
    let spec = wav.spec();
    let channels = usize::from(spec.channels);
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            // NaN or infinity would spread through the resampler's FFT blocks: silence it.
            let finite = |v: f32| if v.is_finite() { v.clamp(-1.0, 1.0) } else { 0.0 };
            mix_down(wav.samples::<f32>().map(|s| s.map(finite)), channels)
        }
        (hound::SampleFormat::Int, bits @ 8..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            mix_down(wav.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)), channels)
        }
        (format, bits) => Err(DecodeError::Encoding(format!("{bits}-bit {format:?}"))),
    }
}

/// Averages each frame of `channels` interleaved samples into one.
fn mix_down(samples: impl Iterator<Item = hound::Result<f32>>, channels: usize) -> Result<Vec<f32>, DecodeError> {
    let mut mono = Vec::new();
    let (mut sum, mut n) = (0.0f32, 0);
    for sample in samples {
        sum += sample.map_err(read_error)?;
        n += 1;
        if n == channels {
            mono.push(sum / channels as f32);
            (sum, n) = (0.0, 0);
        }
    }
    Ok(mono)
}

/// Resamples one loop of `mono` (non-empty, at `rate`) to 48 kHz. The resampler is fed the
/// loop with its own end before it and its own start after it, and only the middle is kept,
/// so the filter sees the signal the encoder will loop over, not silence, at both edges.
fn resample_loop(mono: Vec<f32>, rate: u32) -> Result<Vec<f32>, DecodeError> {
    if rate == SAMPLE_RATE_HZ {
        return Ok(mono);
    }
    let fail = |e: &dyn std::error::Error| DecodeError::Resample(rate, e.to_string());
    let mut resampler = Fft::<f32>::new_custom(
        rate as usize,
        SAMPLE_RATE_HZ as usize,
        RESAMPLE_BLOCK,
        1,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Both,
    )
    .map_err(|e| fail(&e))?;
    // The smallest run of input frames that becomes a whole number of output frames.
    let g = gcd(rate.into(), SAMPLE_RATE_HZ.into()) as u32;
    let (step_in, step_out) = ((rate / g) as usize, (SAMPLE_RATE_HZ / g) as usize);
    // Context on each side: two FFT blocks, rounded to whole steps so that the loop starts
    // exactly on an output frame.
    let pad = (2 * resampler.input_frames_max()).div_ceil(step_in) * step_in;
    let len = mono.len();
    let padded: Vec<f32> = (0..len + 2 * pad).map(|i| mono[(i + len - pad % len) % len]).collect();
    let input = InterleavedSlice::new(&padded, 1, padded.len()).map_err(|e| fail(&e))?;
    let out = resampler.process_all(&input, padded.len(), None).map_err(|e| fail(&e))?.take_data();
    let skip = pad / step_in * step_out;
    // The loop's length at 48 kHz, to the nearest frame (when it is not a whole number of
    // frames, the seam shifts the phase by less than one frame: inaudible).
    let keep = ((len as u64 * u64::from(SAMPLE_RATE_HZ) + u64::from(rate) / 2) / u64::from(rate)) as usize;
    match out.get(skip..skip + keep) {
        Some(kept) => Ok(kept.to_vec()),
        None => Err(DecodeError::Resample(rate, format!("{} frames out, {} expected", out.len(), skip + keep))),
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Full scale f32 to s16, clipping what the resampler's ringing took past full scale.
fn to_s16(v: f32) -> i16 {
    (v * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::audio::rms;
    use hound::SampleFormat::{Float, Int};

    fn wav(spec: hound::WavSpec, frames: usize, f: impl Fn(usize, u16) -> f32) -> Vec<u8> {
        let mut cur = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for i in 0..frames {
            for ch in 0..spec.channels {
                let v = f(i, ch);
                match (spec.sample_format, spec.bits_per_sample) {
                    (Float, _) => w.write_sample(v).unwrap(),
                    (_, bits) => w.write_sample((v * ((1i64 << (bits - 1)) - 1) as f32).round() as i32).unwrap(),
                }
            }
        }
        w.finalize().unwrap();
        cur.into_inner()
    }

    fn spec(channels: u16, bits: u16, format: hound::SampleFormat, rate: u32) -> hound::WavSpec {
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: bits, sample_format: format }
    }

    /// A sine of `hz` at `amplitude` (full scale 1), the same in every channel.
    fn tone(hz: f64, amplitude: f64, rate: u32) -> impl Fn(usize, u16) -> f32 {
        move |i, _| (amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin()) as f32
    }

    /// The frequency of a steady tone from its rising zero crossings, interpolated between
    /// samples: (crossings - 1) periods between the first and the last.
    fn zero_crossing_hz(pcm: &[i16], rate: u32) -> f64 {
        let crossings = crate::testkit::audio::rising_zero_crossings(pcm);
        assert!(crossings.len() > 10, "only {} zero crossings", crossings.len());
        (crossings.len() - 1) as f64 * f64::from(rate) / (crossings[crossings.len() - 1] - crossings[0])
    }

    /// Writes 2 s of a half-scale 440 Hz tone with `spec` and checks that it decodes to 2 s at
    /// 48 kHz, still 440 Hz, at the same level.
    fn converts_a_tone(spec: hound::WavSpec) {
        let bytes = wav(spec, 2 * spec.sample_rate as usize, tone(440.0, 0.5, spec.sample_rate));
        let converted = decode(&bytes[..]).unwrap();
        let expected = Source {
            rate: spec.sample_rate,
            channels: spec.channels,
            bits: spec.bits_per_sample,
            format: spec.sample_format,
            frames: 2 * spec.sample_rate as usize,
        };
        assert_eq!(converted.source, expected);
        let pcm = &converted.pcm;
        assert!(pcm.len().abs_diff(96_000) <= 2, "{spec:?}: {} samples", pcm.len());
        let hz = zero_crossing_hz(pcm, SAMPLE_RATE_HZ);
        assert!((hz - 440.0).abs() < 0.05, "{spec:?}: {hz} Hz");
        let level = rms(pcm) / (0.5 / 2f64.sqrt());
        assert!((level - 1.0).abs() < 0.01, "{spec:?}: level {level}");
        eprintln!("{expected} -> {} samples, {hz:.3} Hz, level {level:.4}", pcm.len());
    }

    #[test]
    fn stereo_44k1_16_bit_becomes_48k_mono_at_the_same_pitch_and_level() {
        converts_a_tone(spec(2, 16, Int, 44_100));
    }

    #[test]
    fn stereo_96k_24_bit_is_downsampled() {
        converts_a_tone(spec(2, 24, Int, 96_000));
    }

    #[test]
    fn mono_22k05_float_is_upsampled() {
        converts_a_tone(spec(1, 32, Float, 22_050));
    }

    #[test]
    fn eight_bit_and_48k_pass_through_at_the_same_level() {
        converts_a_tone(spec(1, 8, Int, 8_000));
        converts_a_tone(spec(2, 24, Int, SAMPLE_RATE_HZ));
        converts_a_tone(spec(1, 32, Int, SAMPLE_RATE_HZ));
    }

    #[test]
    fn channels_are_averaged() {
        let levels = [0.8, 0.4, 0.0, 0.0];
        let bytes = wav(spec(4, 16, Int, 44_100), 8820, |_, ch| levels[usize::from(ch)]);
        let pcm = decode(&bytes[..]).unwrap().pcm;
        assert_eq!(pcm.len(), 9600);
        // (0.8 + 0.4) / 4 = 0.3 of full scale, everywhere including the loop's edges.
        assert!(pcm.iter().all(|&s| (s - 9830).abs() <= 3), "{:?}", (pcm.iter().min(), pcm.iter().max()));
    }

    #[test]
    fn the_loop_seam_stays_smooth_after_resampling() {
        // 441 Hz for exactly 1 s at 44.1 kHz is 441 whole periods: a seamless loop. Resampled
        // as a loop, every sample, the first and last included, is the ideal 48 kHz sine.
        let bytes = wav(spec(1, 16, Int, 44_100), 44_100, tone(441.0, 0.5, 44_100));
        let pcm = decode(&bytes[..]).unwrap().pcm;
        assert_eq!(pcm.len(), SAMPLE_RATE_HZ as usize);
        let ideal = tone(441.0, 0.5 * 32767.0, SAMPLE_RATE_HZ);
        let worst = (0..pcm.len())
            .map(|i| (f64::from(pcm[i]) - f64::from(ideal(i, 0))).abs())
            .enumerate()
            .fold((0, 0.0), |a, (i, e)| if e > a.1 { (i, e) } else { a });
        assert!(worst.1 < 8.0, "sample {} is {} off the ideal sine", worst.0, worst.1);
    }

    #[test]
    fn downsampling_filters_out_what_48k_cannot_carry() {
        // 440 Hz plus as much 30 kHz, at 96 kHz: the 30 kHz would alias to 18 kHz if not filtered.
        let bytes = wav(spec(1, 24, Int, 96_000), 96_000, |i, _| {
            let t = i as f64 / 96_000.0;
            (0.25
                * ((2.0 * std::f64::consts::PI * 440.0 * t).sin() + (2.0 * std::f64::consts::PI * 30_000.0 * t).sin()))
                as f32
        });
        let pcm = decode(&bytes[..]).unwrap().pcm;
        let level = rms(&pcm) / (0.25 / 2f64.sqrt());
        assert!((level - 1.0).abs() < 0.01, "level {level}: only the 440 Hz should remain");
    }

    #[test]
    fn files_that_are_not_wav_are_refused_without_a_panic() {
        let not_wav: [&[u8]; 4] = [
            b"",
            b"this is not a wav file at all",
            b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64\x00\x00\x00\x00",
            b"RIFF\x24\x00\x00\x00AVI ",
        ];
        for bytes in not_wav {
            let err = decode(bytes).unwrap_err();
            assert!(matches!(err, DecodeError::NotWav(_)), "{bytes:?}: {err:?}");
            assert!(err.to_string().contains("not a WAV file"), "{err}");
        }
    }

    #[test]
    fn cut_short_or_unusual_wavs_are_refused_with_a_reason() {
        let good = wav(spec(1, 16, Int, 44_100), 8820, tone(440.0, 0.5, 44_100));
        let cut = decode(&good[..30]).unwrap_err();
        assert!(matches!(cut, DecodeError::Damaged(_)), "{cut:?}");
        assert!(matches!(decode(&good[..good.len() - 1001]), Err(DecodeError::Damaged(_))));
        let slow = wav(spec(1, 16, Int, 4_000), 4000, |_, _| 0.0);
        assert!(matches!(decode(&slow[..]), Err(DecodeError::Rate(4_000))));
        let fast = wav(spec(1, 16, Int, 400_000), 40_000, |_, _| 0.0);
        assert!(matches!(decode(&fast[..]), Err(DecodeError::Rate(400_000))));
        let wide = wav(spec(9, 16, Int, SAMPLE_RATE_HZ), 4800, |_, _| 0.0);
        assert!(matches!(decode(&wide[..]), Err(DecodeError::Channels(9))));
        let short = wav(spec(2, 16, Int, 44_100), 4000, |_, _| 0.0);
        assert!(matches!(decode(&short[..]), Err(DecodeError::TooShort)));
        let mut rf64 = good.clone();
        rf64[..4].copy_from_slice(b"RF64");
        assert!(matches!(decode(&rf64[..]), Err(DecodeError::Encoding(_))));
    }

    #[test]
    fn the_loop_wraps_without_a_seam_and_frames_decode() {
        // 250 ms of ramp: a 20 ms frame crossing the end takes its tail from the start.
        let pcm: Arc<[i16]> = (0..12_000).map(|i| (i % 1000) as i16).collect();
        let mut enc = LoopEncoder::new(pcm, crate::media::Ptime::Ms20).unwrap();
        assert_eq!(enc.frame_len(), 960);
        let mut dec = opus::Decoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono).unwrap();
        let mut out = vec![0i16; 960];
        for _ in 0..30 {
            let frame = enc.next_frame().unwrap();
            assert!(!frame.is_empty() && frame.len() < 400);
            assert_eq!(dec.decode(&frame, &mut out, false).unwrap(), 960);
        }
        // 30 frames of 960 = 28 800 samples = 2 loops + 4800.
        assert_eq!(enc.pos, 28_800 % 12_000);
    }

    #[test]
    fn once_the_frames_repeat_the_loop_sounds_as_continuous_encoding_does() {
        // 250 ms of two tones in 20 ms frames: the frames line up with the loop every 2 loops
        // (25 frames). A caller hears 2 cycles encoded, then the kept second cycle, round
        // and round; the reference encodes every frame anew.
        let tone = |i: usize| {
            let t = i as f64 / 48_000.0;
            (8000.0 * (std::f64::consts::TAU * 440.0 * t).sin() + 4000.0 * (std::f64::consts::TAU * 1000.0 * t).sin())
                as i16
        };
        let pcm: Arc<[i16]> = (0..12_000).map(tone).collect();
        let mut enc = LoopEncoder::new(pcm.clone(), crate::media::Ptime::Ms20).unwrap();
        let mut reference = LoopEncoder::new(pcm, crate::media::Ptime::Ms20).unwrap();
        reference.cycle = None;
        let (mut heard, mut expected) = (Vec::new(), Vec::new());
        for i in 0..50 {
            assert!(enc.repeating().is_none(), "a loop before the second cycle ended (frame {i})");
            heard.push(enc.next_frame().unwrap());
        }
        let mut played = enc.repeating().expect("the frames repeat after two cycles");
        assert_eq!(played.len(), 25);
        let looking_ahead: Vec<Arc<[u8]>> = (0..100).map(|n| played.ahead(n)).collect();
        heard.extend((0..100).map(|_| played.next_frame()));
        assert_eq!(looking_ahead, heard[50..], "ahead(n) is the frame n places on");
        expected.extend((0..150).map(|_| reference.next_frame().unwrap()));
        let decode = |frames: &[Arc<[u8]>]| {
            let mut dec = opus::Decoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono).unwrap();
            let mut pcm = vec![0i16; 960 * frames.len()];
            for (f, out) in frames.iter().zip(pcm.chunks_mut(960)) {
                assert_eq!(dec.decode(f, out, false).unwrap(), 960);
            }
            pcm
        };
        let (heard, expected) = (decode(&heard), decode(&expected));
        // Every frame of the four played cycles, seams included, sounds as the reference
        // does (not byte for byte: the encoder's state is not periodic).
        for (k, (h, e)) in heard.chunks(960).zip(expected.chunks(960)).enumerate().skip(50) {
            let signal: f64 = e.iter().map(|&v| f64::from(v).powi(2)).sum();
            let noise: f64 = h.iter().zip(e).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum();
            let snr = 10.0 * (signal / noise.max(1.0)).log10();
            // Two encodings of one signal differ by far less than this (about 45 dB here); a
            // loop out of step with the signal is near 0 dB.
            assert!(snr > 30.0, "frame {k} differs from continuous encoding: SNR {snr:.1} dB");
        }
    }

    #[test]
    fn a_sample_whose_frames_never_line_up_soon_is_encoded_as_it_plays() {
        // 60 001 samples share no factor with 480-sample frames: the frames would repeat
        // only after 60 001 of them, beyond the limit. 1001 samples repeat after 1001, within.
        let odd = MAX_LOOP_FRAMES + 1;
        let pcm: Arc<[i16]> = (0..odd).map(|i| (i % 300) as i16).collect();
        let mut enc = LoopEncoder::new(pcm, crate::media::Ptime::Ms10).unwrap();
        assert_eq!(enc.cycle, None);
        for _ in 0..10 {
            enc.next_frame().unwrap();
        }
        assert!(enc.repeating().is_none() && enc.kept.is_empty());
        let short: Arc<[i16]> = (0..1001).map(|i| (i % 300) as i16).collect();
        assert_eq!(LoopEncoder::new(short, crate::media::Ptime::Ms10).unwrap().cycle, Some(1001));
    }
}
