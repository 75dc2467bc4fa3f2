//! Audio: the per-call recorder (jitter buffer, Opus decoding with concealment, WAV) and the
//! looped sample (conversion, Opus encoding). The recorder and the encoder are sans-IO:
//! callers pass the writers, the PCM and the time.

pub mod capture;
pub mod mem_file;
pub mod recording;
pub mod sample;

/// The audio sample rate everywhere in tapedeck: Opus's and WebRTC's 48 kHz.
pub const SAMPLE_RATE_HZ: u32 = 48_000;

/// An Opus packet time that Opus and browsers agree on: 10, 20, 40 or 60 ms. No other value
/// can be held, so nothing downstream has to check (a zero packet time would make the sample
/// clock spin forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ptime {
    Ms10,
    Ms20,
    Ms40,
    Ms60,
}

impl Ptime {
    /// Every packet time, shortest first.
    pub const ALL: [Ptime; 4] = [Ptime::Ms10, Ptime::Ms20, Ptime::Ms40, Ptime::Ms60];

    /// The packet time of `ms` milliseconds, if it is one of [`Ptime::ALL`].
    pub const fn from_millis(ms: u64) -> Option<Ptime> {
        match ms {
            10 => Some(Ptime::Ms10),
            20 => Some(Ptime::Ms20),
            40 => Some(Ptime::Ms40),
            60 => Some(Ptime::Ms60),
            _ => None,
        }
    }

    pub const fn millis(self) -> u64 {
        match self {
            Ptime::Ms10 => 10,
            Ptime::Ms20 => 20,
            Ptime::Ms40 => 40,
            Ptime::Ms60 => 60,
        }
    }

    pub const fn duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis())
    }

    /// Samples per channel in one packet at 48 kHz.
    pub const fn samples(self) -> usize {
        (self.millis() * SAMPLE_RATE_HZ as u64 / 1000) as usize
    }
}

impl std::fmt::Display for Ptime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ms", self.millis())
    }
}
