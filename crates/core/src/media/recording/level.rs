//! The caller's audio level, as the WAV hears it: the RMS of the decoded samples (silence
//! and concealment included) over windows of [`WINDOW`] samples. Only counting: it changes
//! nothing that is written.

/// Samples in a level window: 200 ms at 48 kHz (the pipeline publishes every 200 ms).
pub(super) const WINDOW: u32 = 9_600;

/// Sums the squares of the samples written; at the end of each window, keeps its RMS.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct LevelMeter {
    sum_squares: u64,
    samples: u32,
}

impl LevelMeter {
    /// Counts `samples`; returns the RMS (0 to 32768) of the window they complete, if any.
    pub(super) fn feed(&mut self, samples: &[i16]) -> Option<u16> {
        let squares: u64 = samples.iter().map(|&s| (i64::from(s) * i64::from(s)) as u64).sum();
        self.sum_squares = self.sum_squares.saturating_add(squares);
        self.count(samples.len())
    }

    /// Counts `len` samples of digital silence.
    pub(super) fn silence(&mut self, len: usize) -> Option<u16> {
        self.count(len)
    }

    fn count(&mut self, len: usize) -> Option<u16> {
        self.samples = self.samples.saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
        if self.samples < WINDOW {
            return None;
        }
        let rms = (self.sum_squares as f64 / f64::from(self.samples)).sqrt();
        *self = LevelMeter::default();
        // A mean of squares of i16 is at most 32768², so the root fits u16 but for -32768s.
        Some(rms.round().min(f64::from(u16::MAX)) as u16)
    }
}

/// An RMS (as [`LevelMeter`] gives it) in dBFS (0 for a full-scale square wave), floored
/// at −96 dBFS (what 16 bits can tell from silence).
pub fn rms_dbfs(rms: u16) -> f64 {
    if rms == 0 {
        return -96.0;
    }
    (20.0 * (f64::from(rms) / 32768.0).log10()).max(-96.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_of_a_tone_gives_its_rms() {
        let mut meter = LevelMeter::default();
        let tone: Vec<i16> =
            (0..960).map(|i| (f64::sin(i as f64 * 2.0 * std::f64::consts::PI / 96.0) * 16384.0) as i16).collect();
        for _ in 0..9 {
            assert_eq!(meter.feed(&tone), None, "a window is 200 ms");
        }
        let rms = meter.feed(&tone).expect("the window is full");
        assert!((11_580..=11_590).contains(&rms), "{rms}: a sine of amplitude 16384 has RMS 11585");
        assert!((rms_dbfs(rms) + 9.03).abs() < 0.05, "{}", rms_dbfs(rms));
        // The next window starts afresh: silence only.
        assert_eq!(meter.silence(9_599), None);
        assert_eq!(meter.silence(1), Some(0));
        assert_eq!(rms_dbfs(0), -96.0);
        assert!(rms_dbfs(1) >= -96.0);
    }

    #[test]
    fn silence_in_a_window_lowers_its_level() {
        let mut meter = LevelMeter::default();
        assert_eq!(meter.feed(&[1000; 4800]), None);
        assert_eq!(meter.silence(4800), Some(707));
    }
}
