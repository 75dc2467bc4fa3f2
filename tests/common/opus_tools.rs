//! Debian's `opus-tools` as a player would use them on the daemon's Ogg/Opus recordings:
//! `opusinfo` checks a file's structure, `opusdec` decodes it (pre-skip and end trimming
//! applied, as RFC 7845 says a player must).

use std::path::Path;
use std::process::Command;

/// `opusinfo`'s report on `path`: panics if it exits non-zero or reports an error or warning
/// (a missing end of stream is a warning: pass `complete: false` for a file cut off by a crash).
pub fn opusinfo(path: &Path, complete: bool) -> String {
    let out = Command::new("opusinfo").arg(path).output().expect("opusinfo (opus-tools) runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let cut_off = |l: &str| !complete && l.contains("WARNING: EOS not set");
    let problems: Vec<&str> =
        text.lines().filter(|l| (l.contains("ERROR") || l.contains("WARNING")) && !cut_off(l)).collect();
    assert!(problems.is_empty(), "opusinfo {}:\n{text}", path.display());
    // It exits 1 on any warning, the expected one included.
    assert!(out.status.success() || !complete, "opusinfo {}: {}\n{text}", path.display(), out.status);
    text
}

/// The samples `opusdec` decodes from `path` at 48 kHz (mono, s16).
pub fn opusdec(path: &Path) -> Vec<i16> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let wav = dir.path().join("decoded.wav");
    let out = Command::new("opusdec")
        .args(["--quiet", "--rate", "48000", "--no-dither"])
        .arg(path)
        .arg(&wav)
        .output()
        .expect("opusdec (opus-tools) runs");
    assert!(out.status.success(), "opusdec {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let (spec, samples) = tapedeck_core::testkit::audio::read_wav(&wav);
    assert_eq!((spec.channels, spec.sample_rate), (1, 48_000), "opusdec's output");
    samples
}
