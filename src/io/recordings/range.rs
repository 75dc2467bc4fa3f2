//! `Range: bytes=...` for downloads (RFC 9110 section 14): one range, as media players ask.

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    /// No (usable) range: the whole file, 200. A header in another unit, or with several
    /// ranges, is ignored as RFC 9110 allows.
    Whole,
    /// Bytes `start..=end`: 206 with `Content-Range`.
    Part { start: u64, end: u64 },
    /// Nothing of the file is in the range: 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Reads `bytes=a-b`, `bytes=a-` and `bytes=-n` (the last n bytes) against `len`.
pub fn parse(header: Option<&str>, len: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Ranged::Whole };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Ranged::Whole };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), number(first), number(last)) {
        // A suffix: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part { start: len.saturating_sub(n), end: len - 1 }
            }
        }
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            let end = end.unwrap_or(u64::MAX).min(len.saturating_sub(1));
            if start >= len {
                Ranged::Unsatisfiable
            } else if end < start {
                Ranged::Whole
            } else {
                Ranged::Part { start, end }
            }
        }
        _ => Ranged::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_players_send_them() {
        let part = |start, end| Ranged::Part { start, end };
        assert_eq!(parse(None, 100), Ranged::Whole);
        assert_eq!(parse(Some("bytes=0-9"), 100), part(0, 9));
        assert_eq!(parse(Some("bytes=10-"), 100), part(10, 99));
        assert_eq!(parse(Some("bytes=0-"), 100), part(0, 99));
        assert_eq!(parse(Some("bytes=-10"), 100), part(90, 99));
        assert_eq!(parse(Some("bytes=-500"), 100), part(0, 99));
        assert_eq!(parse(Some("bytes=90-500"), 100), part(90, 99));
        assert_eq!(parse(Some("bytes=100-"), 100), Ranged::Unsatisfiable);
        assert_eq!(parse(Some("bytes=200-300"), 100), Ranged::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 100), Ranged::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-"), 0), Ranged::Unsatisfiable);
        for ignored in ["items=0-1", "bytes=5-1", "bytes=a-b", "bytes=0-1,5-6", "bytes=-", "bytes=1"] {
            assert_eq!(parse(Some(ignored), 100), Ranged::Whole, "{ignored}");
        }
    }
}
