//! Durations with a valid range: what `--disconnect-timeout`, `--connect-timeout`,
//! `--stun-timeout`, `--max-recorder-lag` and `--jitter-buffer` become.
//!
//! A [`Millis`] can only be made by checking its range, so a [`super::Config`] cannot hold a
//! zero timeout that would end every call the turn it connects. The flag, the environment
//! variable (both through clap, by `FromStr`) and the config file key (by [`Millis::new`])
//! all go through the same check and so accept exactly the same values.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Whole milliseconds within `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Millis<MIN, MAX> {
    /// The smallest value allowed, in milliseconds.
    pub const MIN_MS: u64 = MIN;
    /// The largest value allowed, in milliseconds.
    pub const MAX_MS: u64 = MAX;

    /// `ms` milliseconds, if within the range; else a message naming the range.
    pub fn new(ms: u64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&ms) {
            Ok(Millis(ms))
        } else {
            Err(Self::range_message())
        }
    }

    /// For constants: evaluating it out of range in a `const` fails the build.
    pub const fn new_const(ms: u64) -> Self {
        assert!(MIN <= ms && ms <= MAX, "a Millis constant out of its range");
        Millis(ms)
    }

    /// The value in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The value as a `Duration`.
    pub const fn get(self) -> Duration {
        Duration::from_millis(self.0)
    }

    fn range_message() -> String {
        format!("must be between {MIN} and {MAX} ms")
    }
}

impl<const MIN: u64, const MAX: u64> FromStr for Millis<MIN, MAX> {
    type Err = String;

    /// A whole number of milliseconds, as the flags and environment variables take it.
    fn from_str(s: &str) -> Result<Self, String> {
        let ms = s
            .trim()
            .parse()
            .map_err(|_| format!("must be a whole number of milliseconds; {}", Self::range_message()))?;
        Self::new(ms)
    }
}

impl<const MIN: u64, const MAX: u64> fmt::Display for Millis<MIN, MAX> {
    /// The number of milliseconds, as a flag takes it (clap shows defaults this way).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Small = Millis<10, 20>;

    #[test]
    fn only_values_in_range_are_made() {
        assert_eq!(Small::new(10).map(Small::get), Ok(Duration::from_millis(10)));
        assert_eq!(Small::new(20).map(Small::as_millis), Ok(20));
        assert_eq!(Small::new(9), Err("must be between 10 and 20 ms".to_owned()));
        assert_eq!(Small::new(21), Err("must be between 10 and 20 ms".to_owned()));
        assert_eq!(Small::new(0), Err("must be between 10 and 20 ms".to_owned()));
    }

    #[test]
    fn strings_are_whole_milliseconds() {
        assert_eq!("15".parse::<Small>(), Ok(Small::new_const(15)));
        assert_eq!(" 15 ".parse::<Small>(), Ok(Small::new_const(15)));
        for bad in ["", "1.5", "-1", "15ms", "99999999999999999999999"] {
            let e = bad.parse::<Small>().unwrap_err();
            assert!(e.contains("between 10 and 20 ms"), "{bad:?}: {e}");
        }
        assert_eq!(Small::new_const(12).to_string(), "12");
    }
}
