//! Audio for tests and tools: a tone encoded as a browser would, WAV reading, and the
//! measurements the tests judge recordings by (dominant frequency, RMS, tone share,
//! correlation, zero crossings).

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustfft::{num_complex::Complex, FftPlanner};

use crate::media::SAMPLE_RATE_HZ;

/// A WAV file's spec and samples.
pub fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (r.spec(), r.into_samples::<i16>().map(|s| s.expect("sample")).collect())
}

/// A WAV's spec and samples, from its bytes.
pub fn wav_from_bytes(bytes: &[u8]) -> (hound::WavSpec, Vec<i16>) {
    let r = hound::WavReader::new(Cursor::new(bytes)).expect("a WAV");
    (r.spec(), r.into_samples::<i16>().map(|s| s.expect("sample")).collect())
}

/// An Ogg/Opus file's samples as a player gives them (RFC 7845): every packet decoded in
/// order, the header's pre-skip dropped from the front and the stream cut at the last
/// page's granule position. Panics on anything that is not a mono Opus stream.
pub fn decode_ogg_opus(bytes: &[u8]) -> Vec<i16> {
    let mut reader = ogg::reading::PacketReader::new(Cursor::new(bytes.to_vec()));
    let head = reader.read_packet().expect("readable").expect("an identification header");
    assert_eq!(&head.data[..8], b"OpusHead", "not Opus");
    assert_eq!(head.data[9], 1, "not mono");
    let pre_skip = usize::from(u16::from_le_bytes([head.data[10], head.data[11]]));
    let tags = reader.read_packet().expect("readable").expect("a comment header");
    assert_eq!(&tags.data[..8], b"OpusTags", "no comment header");
    let mut decoder = opus::Decoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono).expect("a decoder");
    let (mut pcm, mut frame, mut end) = (Vec::new(), vec![0i16; 5760], None);
    while let Some(packet) = reader.read_packet().expect("readable") {
        let n = decoder.decode(&packet.data, &mut frame, false).expect("a decodable packet");
        pcm.extend_from_slice(&frame[..n]);
        if packet.last_in_stream() {
            end = Some(packet.absgp_page());
        }
    }
    let end = end.expect("no end of stream: the file is cut off");
    let end = usize::try_from(end).expect("fits").min(pcm.len());
    pcm.get(pre_skip..end).map(<[i16]>::to_vec).unwrap_or_default()
}

/// A steady sine tone at 0.3 of full scale, Opus-encoded frame by frame as a browser does
/// (voice mode, in-band FEC, 10 % expected loss): the audio every test caller sends.
#[derive(Debug, Clone, Copy)]
pub struct Tone {
    pub hz: f64,
    pub ptime: Duration,
    /// Two identical channels instead of one.
    pub stereo: bool,
    /// The Opus bitrate; `None`: libopus's own default (about 50 kbit/s for mono voice).
    pub bitrate: Option<i32>,
}

impl Tone {
    /// A mono tone of `hz` in 20 ms frames at libopus's default bitrate.
    pub fn new(hz: f64) -> Self {
        Tone { hz, ptime: Duration::from_millis(20), stereo: false, bitrate: None }
    }

    /// Frames `skip .. skip + count` of the tone, its phase continuous from the first frame
    /// (the skipped ones warm the encoder up). Empty if libopus refuses the settings.
    pub fn frames(&self, skip: usize, count: usize) -> Vec<Arc<[u8]>> {
        let len = (self.ptime.as_micros() * u128::from(SAMPLE_RATE_HZ) / 1_000_000) as usize;
        let (channels, n) = if self.stereo { (opus::Channels::Stereo, 2) } else { (opus::Channels::Mono, 1) };
        let Ok(mut enc) = opus::Encoder::new(SAMPLE_RATE_HZ, channels, opus::Application::Voip) else {
            return Vec::new();
        };
        let _ = enc.set_inband_fec(true);
        let _ = enc.set_packet_loss_perc(10);
        if let Some(bits) = self.bitrate {
            let _ = enc.set_bitrate(opus::Bitrate::Bits(bits));
        }
        let mut out = vec![0u8; 4000];
        let mut pcm = vec![0i16; len * n];
        (0..skip + count)
            .map(|f| {
                for (i, frame) in pcm.chunks_mut(n).enumerate() {
                    let t = (f * len + i) as f64 / f64::from(SAMPLE_RATE_HZ);
                    let v = ((std::f64::consts::TAU * self.hz * t).sin() * 0.3 * 32767.0) as i16;
                    frame.fill(v);
                }
                let written = enc.encode(&pcm, &mut out).unwrap_or(0);
                Arc::from(&out[..written])
            })
            .skip(skip)
            .collect()
    }
}

/// One second of a tone (integer Hz, so the second loops seamlessly), Opus-encoded in
/// `ptime` frames as a browser would, after a second of warm-up: Chrome's (libwebrtc's)
/// settings for mono Opus, voice mode at 32 kbit/s with in-band FEC. (libopus's own default
/// bitrate, about 50 kbit/s, makes frames that cost half as much again to decode.)
pub fn encode_tone(hz: u32, ptime: Duration) -> Vec<Arc<[u8]>> {
    let tone = Tone { hz: f64::from(hz), ptime, stereo: false, bitrate: Some(32_000) };
    let len = (ptime.as_micros() * u128::from(SAMPLE_RATE_HZ) / 1_000_000) as usize;
    let per_second = SAMPLE_RATE_HZ as usize / len.max(1);
    tone.frames(per_second, per_second)
}

/// The frequency with the most energy, in Hz, with parabolic interpolation between bins.
/// Looks at most at the middle 2 s (a 0.2 Hz grid), which keeps it fast in debug builds.
pub fn dominant_hz(samples: &[i16], rate: u32) -> f64 {
    let max = 2 * rate as usize;
    let skip = samples.len().saturating_sub(max) / 2;
    let samples = &samples[skip..samples.len().min(skip + max)];
    let n = samples.len().next_power_of_two() * 2;
    let mut buf: Vec<Complex<f64>> = samples
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / samples.len() as f64).cos();
            Complex::new(f64::from(s) * w, 0.0)
        })
        .collect();
    buf.resize(n, Complex::new(0.0, 0.0));
    FftPlanner::new().plan_fft_forward(n).process(&mut buf);
    let mags: Vec<f64> = buf[..n / 2].iter().map(|c| c.norm()).collect();
    let (k, _) = mags.iter().enumerate().skip(1).fold((0, 0.0), |a, (i, &m)| if m > a.1 { (i, m) } else { a });
    let (a, b, c) = (mags[k.saturating_sub(1)], mags[k], mags[(k + 1).min(mags.len() - 1)]);
    let shift = if a - 2.0 * b + c != 0.0 { 0.5 * (a - c) / (a - 2.0 * b + c) } else { 0.0 };
    (k as f64 + shift) * f64::from(rate) / n as f64
}

/// Root mean square, in full-scale units (0..1).
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| (f64::from(s) / 32768.0).powi(2)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// Energy at `hz` relative to total energy (0..1): how much of the signal is that tone.
pub fn tone_share(samples: &[i16], hz: f64, rate: u32) -> f64 {
    let (mut re, mut im, mut total) = (0.0, 0.0, 0.0);
    for (i, &s) in samples.iter().enumerate() {
        let x = f64::from(s);
        let ph = 2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate);
        re += x * ph.cos();
        im += x * ph.sin();
        total += x * x;
    }
    if total == 0.0 {
        return 0.0;
    }
    2.0 * (re * re + im * im) / (samples.len() as f64 * total)
}

/// The normalised cross-correlation of `a` and `b` at the given offset of `b` into `a`.
pub fn correlation_at(a: &[i16], b: &[i16], offset: usize) -> f64 {
    let n = b.len().min(a.len().saturating_sub(offset));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (x, y) = (f64::from(a[offset + i]), f64::from(b[i]));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

/// How long a piece of received audio must be for [`best_offset`] to find one place for it
/// in the default sample: that sample repeats some stretches exactly (a 100 ms or 300 ms
/// piece from 1.5 s matches 0.25 s as well), so a shorter piece can put a caller 1.25 s off.
/// A second of it is nowhere closer than 0.71 to another second.
pub const LOCATE_SAMPLES: usize = SAMPLE_RATE_HZ as usize;

/// Where `piece` best matches inside the looped `sample`: (offset, correlation). Every
/// offset is tried (the cross-correlation by FFT, each offset normalised by its window's
/// energy), so the answer is exact to a sample.
pub fn best_offset(sample: &[i16], piece: &[i16]) -> (usize, f64) {
    let (len, n) = (sample.len(), piece.len());
    if len == 0 || n == 0 {
        return (0, 0.0);
    }
    // The loop, long enough that a piece starting at any offset fits.
    let looped: Vec<f64> = sample.iter().cycle().take(len + n).map(|&s| f64::from(s)).collect();
    let size = len + 2 * n;
    let mut planner = FftPlanner::new();
    let padded = |x: &mut dyn Iterator<Item = f64>| -> Vec<Complex<f64>> {
        let mut v: Vec<Complex<f64>> = x.map(|s| Complex::new(s, 0.0)).collect();
        v.resize(size, Complex::new(0.0, 0.0));
        v
    };
    let mut a = padded(&mut looped.iter().copied());
    let mut b = padded(&mut piece.iter().map(|&s| f64::from(s)));
    let forward = planner.plan_fft_forward(size);
    forward.process(&mut a);
    forward.process(&mut b);
    for (x, y) in a.iter_mut().zip(&b) {
        *x *= y.conj();
    }
    planner.plan_fft_inverse(size).process(&mut a);
    // Sliding window energy of the loop, and the piece's energy.
    let mut energy = vec![0.0; looped.len() + 1];
    for (i, x) in looped.iter().enumerate() {
        energy[i + 1] = energy[i] + x * x;
    }
    let piece_energy: f64 = piece.iter().map(|&s| f64::from(s).powi(2)).sum();
    let mut best = (0, f64::MIN);
    for (off, c) in a.iter().take(len).enumerate() {
        let window = energy[off + n] - energy[off];
        let corr =
            if window > 0.0 && piece_energy > 0.0 { c.re / size as f64 / (window * piece_energy).sqrt() } else { 0.0 };
        if corr > best.1 {
            best = (off, corr);
        }
    }
    best
}

/// Where a steady tone crosses zero going up, in samples, interpolated between samples. The
/// gaps between crossings are its periods: a dropped stretch or a jump in phase shows as one
/// period that is too short or too long.
pub fn rising_zero_crossings(samples: &[i16]) -> Vec<f64> {
    samples
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0 && w[1] >= 0)
        .map(|(i, w)| {
            let (a, b) = (f64::from(w[0]), f64::from(w[1]));
            i as f64 + a / (a - b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every point of the default sample is found where it is from a piece of
    /// [`LOCATE_SAMPLES`], whatever the sample repeats (a 100 ms piece from 1.5 s was found
    /// at 0.25 s, and made callers who heard the same point seem 1.25 s apart).
    #[test]
    fn a_piece_of_the_default_sample_is_found_where_it_is() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/sample.wav");
        let (_, sample) = read_wav(&path);
        let looped: Vec<i16> = sample.iter().chain(&sample).copied().collect();
        for at in (0..sample.len()).step_by(SAMPLE_RATE_HZ as usize / 20) {
            let (found, corr) = best_offset(&sample, &looped[at..at + LOCATE_SAMPLES]);
            assert_eq!(found, at, "a piece from {at} found at {found} ({corr:.3})");
            assert!(corr > 0.999, "{corr}");
        }
    }
}
