//! Which files a session's recording writes: one per format (`--format`), and, with
//! `--segment-duration`, a new set every segment. The loop names the recording
//! (`<name>.wav`, from `--name-template`); the first segment keeps that name (with each
//! format's extension), later ones add a number: `<name>-002.wav`, `<name>-003.ogg`, ...

use std::path::{Path, PathBuf};
use std::time::Duration;

use tapedeck_core::engine::SessionId;
use tapedeck_core::media::recording::Format;
use tapedeck_core::media::SAMPLE_RATE_HZ;

/// What each recording writes (`--format`) and how long a file runs (`--segment-duration`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Output {
    pub format: Format,
    /// A new file every this much audio (at a write boundary after it: up to one
    /// [`super::TICK`] more); `None`: one file for the whole call.
    pub segment: Option<Duration>,
}

impl Output {
    /// Samples per segment, if segmenting.
    pub fn segment_samples(&self) -> Option<u64> {
        let samples = self.segment?.as_millis() as u64 * u64::from(SAMPLE_RATE_HZ) / 1000;
        Some(samples.max(1))
    }

    /// The files of segment `n` (1-based) of the recording named `path`, each with its
    /// extension: the WAV first.
    pub fn paths(&self, path: &Path, n: u32) -> Vec<(&'static str, PathBuf)> {
        self.format.extensions().iter().map(|&ext| (ext, segment_path(path, n, ext))).collect()
    }
}

/// `path` with extension `ext`, numbered from the second segment on.
fn segment_path(path: &Path, n: u32, ext: &str) -> PathBuf {
    if n <= 1 {
        return path.with_extension(ext);
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{stem}-{n:03}.{ext}"))
}

/// The Ogg stream serial number of a session's segment `n`: from the session id, so two
/// files never share one by chance (players tell chained streams apart by it).
pub fn ogg_serial(session: SessionId, n: u32) -> u32 {
    let v = session.as_u128();
    ((v as u32) ^ ((v >> 32) as u32) ^ ((v >> 64) as u32) ^ ((v >> 96) as u32)).wrapping_add(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_segment_keeps_the_name_and_later_ones_are_numbered() {
        let both = Output { format: Format::Both, segment: Some(Duration::from_secs(60)) };
        let path = Path::new("rec/2026-12-07 call.wav");
        assert_eq!(
            both.paths(path, 1),
            vec![("wav", PathBuf::from("rec/2026-12-07 call.wav")), ("ogg", PathBuf::from("rec/2026-12-07 call.ogg"))]
        );
        assert_eq!(
            both.paths(path, 12),
            vec![
                ("wav", PathBuf::from("rec/2026-12-07 call-012.wav")),
                ("ogg", PathBuf::from("rec/2026-12-07 call-012.ogg"))
            ]
        );
        let ogg = Output { format: Format::Ogg, segment: None };
        assert_eq!(ogg.paths(path, 1), vec![("ogg", PathBuf::from("rec/2026-12-07 call.ogg"))]);
        assert_eq!(both.segment_samples(), Some(2_880_000));
        assert_ne!(ogg_serial(SessionId::from_u128(5), 1), ogg_serial(SessionId::from_u128(5), 2));
    }
}
