//! Audio measurements for the tests: WAV reading, dominant frequency, RMS, correlation.

use std::path::Path;

use rustfft::{num_complex::Complex, FftPlanner};

/// A WAV's spec and samples.
pub fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let samples = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    (spec, samples)
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

/// Where `piece` best matches inside the looped `sample`: (offset, correlation).
pub fn best_offset(sample: &[i16], piece: &[i16]) -> (usize, f64) {
    let looped: Vec<i16> = sample.iter().chain(sample.iter()).copied().collect();
    let mut best = (0, f64::MIN);
    for off in (0..sample.len()).step_by(24) {
        let c = correlation_at(&looped, piece, off);
        if c > best.1 {
            best = (off, c);
        }
    }
    // Refine around the coarse best.
    let (coarse, _) = best;
    for off in coarse.saturating_sub(24)..(coarse + 24).min(sample.len()) {
        let c = correlation_at(&looped, piece, off);
        if c > best.1 {
            best = (off, c);
        }
    }
    best
}
