//! The caller's media clock against the arrival times: how far the file has drifted from
//! the wall clock (to take it up in silent stretches) and the caller's clock rate (to
//! report it). Pure arithmetic on sample counts; time comes in as arguments.
//!
//! Each written packet gives a *delay* `arrival − rtp_time` (in 48 kHz samples), which does
//! not depend on where the packet went in the file. Network jitter only ever adds to it,
//! so the minimum over a window is the caller's clock seen through the fastest path: it
//! stays flat for a caller whose clock runs at the nominal rate, climbs for a slow one and
//! falls for a fast one. With `offset = position − rtp_time` of the current mapping,
//! `min delay − offset` is how far the file runs behind the wall clock (its *lateness*):
//! 0 right after the first packet, which the arrival placed.

use crate::media::SAMPLE_RATE_HZ;

/// Length of one minimum window: 1 s. Two windows (the current and the previous) give the
/// lateness estimate; for a caller at 0.90x it lags the truth by at most 0.2 s.
const WINDOW: u64 = SAMPLE_RATE_HZ as u64;
/// The rate is reported once the windows it compares lie this far apart: 10 s (network
/// jitter of 15 ms then costs at most 1500 ppm of error, shrinking as the call goes on).
const RATE_SPAN: u64 = 10 * WINDOW;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: u64,
    /// Smallest delay seen in the window, and when (arrival, samples).
    min: i128,
    at: u64,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct ClockTrack {
    /// `position − rtp_time` of the mapping the last packet was placed by.
    offset: i128,
    current: Option<Window>,
    previous: Option<Window>,
    /// The first and the latest completed windows since the last reset: the rate estimate.
    first: Option<Window>,
    latest: Option<Window>,
}

impl ClockTrack {
    /// A packet with `rtp_time` that arrived at `arrival` was written at `position`.
    pub(super) fn observe(&mut self, arrival: u64, rtp_time: u64, position: u64) {
        self.offset = i128::from(position) - i128::from(rtp_time);
        let delay = i128::from(arrival) - i128::from(rtp_time);
        match &mut self.current {
            Some(w) if arrival < w.start.saturating_add(WINDOW) => {
                if delay < w.min {
                    w.min = delay;
                    w.at = arrival;
                }
            }
            _ => {
                if let Some(done) = self.current.take() {
                    self.first.get_or_insert(done);
                    self.latest = Some(done);
                    self.previous = Some(done);
                }
                self.current = Some(Window { start: arrival, min: delay, at: arrival });
            }
        }
    }

    /// How far the file runs behind the wall clock, in samples (negative: ahead), by the
    /// packets of the last one to two seconds; 0 before any packet.
    pub(super) fn lateness(&self) -> i128 {
        let min = [self.current, self.previous].into_iter().flatten().map(|w| w.min).min();
        min.map_or(0, |m| m - self.offset)
    }

    /// The caller's clock rate in ppm off nominal, once enough of the call was seen.
    pub(super) fn ppm(&self) -> Option<i32> {
        let (first, latest) = (self.first?, self.latest?);
        let span = latest.at.checked_sub(first.at).filter(|&s| s >= RATE_SPAN)?;
        // delay = arrival − rtp/rate grows by (1 − rate) per second of arrival.
        let ppm = -((latest.min - first.min) as f64) / span as f64 * 1e6;
        Some(ppm.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32)
    }

    /// Forgets everything: the caller's timestamps jumped, earlier delays say nothing.
    pub(super) fn reset(&mut self) {
        *self = ClockTrack::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets every 20 ms of arrival from a caller whose clock runs at `rate`, with a
    /// repeating jitter pattern of up to 15 ms.
    fn feed(track: &mut ClockTrack, rate: f64, seconds: u64) {
        for i in 0..seconds * 50 {
            let jitter = (i * 7919 % 15) * 48;
            let arrival = i * 960 + jitter;
            let rtp = 1_000_000 + (i as f64 * 960.0 * rate) as u64;
            // Placed by RTP from the first packet, as a run of contiguous audio is.
            track.observe(arrival, rtp, rtp - 1_000_000);
        }
    }

    #[test]
    fn a_slow_clock_reads_slow_and_its_file_falls_behind() {
        let mut t = ClockTrack::default();
        feed(&mut t, 0.95, 30);
        let ppm = t.ppm().unwrap();
        assert!((ppm + 50_000).abs() < 1_500, "{ppm} ppm");
        // After 30 s at 0.95x the file is 1.5 s behind; the estimate may lag by 2 s × 5 %.
        let late = t.lateness();
        assert!((62_000..=73_000).contains(&late), "{late}");
    }

    #[test]
    fn a_fast_clock_reads_fast_and_its_file_runs_ahead() {
        let mut t = ClockTrack::default();
        feed(&mut t, 1.0003, 600);
        let ppm = t.ppm().unwrap();
        assert!((ppm - 300).abs() < 60, "{ppm} ppm");
        let late = t.lateness();
        // 600 s × 300 ppm = 180 ms ahead = −8640 samples, within jitter.
        assert!((-8_640 - 960..=-8_640 + 960).contains(&late), "{late}");
    }

    #[test]
    fn nothing_is_claimed_too_early() {
        let mut t = ClockTrack::default();
        assert_eq!((t.lateness(), t.ppm()), (0, None));
        feed(&mut t, 1.0, 5);
        assert_eq!(t.ppm(), None, "5 s is too short to tell a rate");
        assert!(t.lateness().abs() <= 15 * 48);
        t.reset();
        assert_eq!((t.lateness(), t.ppm()), (0, None));
    }
}
