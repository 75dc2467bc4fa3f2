//! The recordings folder as the console sees it: names checked to stay inside it, the
//! finished files listed (newest first) with their length and size, downloads with
//! `Range`, and waveforms ([`waveform`]). Runs on the HTTP request threads, never on an
//! event loop: everything here reads files.

pub mod range;
pub mod waveform;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::io::api::ApiError;

/// Longest name accepted (the name template's parts are bounded well below this).
const MAX_NAME: usize = 255;

/// A recording's name from a request path's last part: percent-decoded first, then a single
/// path component of letters, digits, `-`, `_` and `.` (what `--name-template` can make),
/// not starting with `.` (no `..`, no hidden or temporary files), ending `.wav` or `.ogg`.
/// A name that tries to leave the folder (`..`, `/`, `\`, `%2F`, an absolute path, NUL) or
/// is otherwise malformed is a 400; the caller answers 404 for a good name not on disk.
pub fn check_name(raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| Err(ApiError::BadRequest(format!("bad recording name: {why}")));
    let Some(name) = percent_decode(raw) else { return bad("it is not valid percent-encoded UTF-8") };
    if name.is_empty() || name.len() > MAX_NAME {
        return bad("it must be 1 to 255 characters");
    }
    if name.contains(['/', '\\']) || name.contains('\0') || name.contains("..") {
        return bad("it must be a file in the recordings folder (no '/', '\\', '..' or NUL)");
    }
    if name.starts_with('.') || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return bad("only letters, digits, '-', '_' and '.' (not first) are allowed");
    }
    if format_of(&name).is_none() {
        return bad("recordings end in .wav or .ogg");
    }
    Ok(name)
}

/// `wav` or `ogg`, from the name.
pub fn format_of(name: &str) -> Option<&'static str> {
    if name.ends_with(".wav") {
        Some("wav")
    } else if name.ends_with(".ogg") {
        Some("ogg")
    } else {
        None
    }
}

/// The content type a recording is served with.
pub fn content_type(name: &str) -> &'static str {
    match format_of(name) {
        Some("ogg") => "audio/ogg",
        _ => "audio/wav",
    }
}

/// A finished recording on disk.
#[derive(Debug, Clone)]
pub struct OnDisk {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
}

/// The recordings in `dir`, newest first (by modification time, then name), leaving out
/// `open` (being recorded), folders (`.uploads/`), hidden and temporary files.
pub fn list(dir: &Path, open: &[String]) -> std::io::Result<Vec<OnDisk>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(name) = entry.file_name().into_string() else { continue };
        if check_name(&name).is_err() || open.contains(&name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        files.push(OnDisk { name, path: entry.path(), size: meta.len(), modified });
    }
    files.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| b.name.cmp(&a.name)));
    Ok(files)
}

/// A recording's length in seconds, from its WAV header, or for an Ogg/Opus from its last
/// page's granule position less the pre-skip; `None` if the file does not say.
pub fn seconds(path: &Path) -> Option<f64> {
    match format_of(&path.file_name()?.to_string_lossy())? {
        "wav" => {
            let reader = hound::WavReader::open(path).ok()?;
            let spec = reader.spec();
            Some(f64::from(reader.duration()) / f64::from(spec.sample_rate))
        }
        _ => ogg_seconds(path),
    }
}

/// Ogg/Opus length: the granule position (48 kHz samples) of the last page, minus the
/// pre-skip from the `OpusHead` packet.
fn ogg_seconds(path: &Path) -> Option<f64> {
    let mut file = std::fs::File::open(path).ok()?;
    let head = read_at(&mut file, 0, 128)?;
    let at = find(&head, b"OpusHead")?;
    let pre_skip = u16::from_le_bytes([*head.get(at + 10)?, *head.get(at + 11)?]);
    let len = file.metadata().ok()?.len();
    let tail_from = len.saturating_sub(65_536);
    let tail = read_at(&mut file, tail_from, 65_536)?;
    let page = rfind(&tail, b"OggS")?;
    let granule = u64::from_le_bytes(tail.get(page + 6..page + 14)?.try_into().ok()?);
    Some(granule.saturating_sub(u64::from(pre_skip)) as f64 / 48_000.0)
}

fn read_at(file: &mut std::fs::File, offset: u64, len: usize) -> Option<Vec<u8>> {
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut buf).ok()?;
    Some(buf)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Percent-decodes a path part; `None` for a bad escape or bytes that are not UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Writes `samples` as a 48 kHz mono 16-bit WAV at `path` (for the tests here and in
/// [`waveform`]).
#[cfg(test)]
pub(crate) fn write_wav(path: &Path, samples: impl IntoIterator<Item = i16>) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_in_the_folder() {
        for good in ["abc_20261130T004847Z.wav", "a-b.c_d-002.ogg", "x%2Ewav.wav"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        assert_eq!(check_name("a%2Db.wav").unwrap(), "a-b.wav");
        for bad in [
            "..",
            "../x.wav",
            "..%2Fx.wav",
            "%2E%2E%2Fx.wav",
            "a%2Fb.wav",
            "a%5Cb.wav",
            "a\\b.wav",
            "/etc/passwd",
            "%2Fetc%2Fpasswd",
            "a%00.wav",
            "a\0.wav",
            ".hidden.wav",
            "x..wav",
            "",
            "a b.wav",
            "a.txt",
            "%zz.wav",
            "%C3.wav",
            "café.wav",
        ] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}");
        }
    }

    #[test]
    fn listing_is_newest_first_without_open_or_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, age_s: u64| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"x").unwrap();
            let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000 - age_s);
            std::fs::File::options().write(true).open(&path).unwrap().set_modified(t).unwrap();
        };
        write("old.wav", 30);
        write("new.ogg", 10);
        write("mid.wav", 20);
        write("open.wav", 0);
        write(".c.wav.json.tmp", 0);
        write("notes.txt", 0);
        std::fs::create_dir(dir.path().join(".uploads")).unwrap();
        let names: Vec<String> = list(dir.path(), &["open.wav".into()]).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["new.ogg", "mid.wav", "old.wav"]);
    }

    #[test]
    fn a_wavs_length_is_read_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        write_wav(&path, std::iter::repeat_n(0, 72_000));
        assert_eq!(seconds(&path), Some(1.5));
        std::fs::write(dir.path().join("b.ogg"), b"not an ogg").unwrap();
        assert_eq!(seconds(&dir.path().join("b.ogg")), None);
    }
}
