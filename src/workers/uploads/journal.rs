//! The uploads journal: `<recordings>/.uploads/<file name>.json` holds the
//! `recording.finished` data of a recording whose upload is not confirmed yet. The recorder
//! writes it (temporary file, then rename: an entry is whole or absent) before it hands the
//! upload over; the uploader removes it once the upload is confirmed, and reads them all at
//! start, so a daemon killed with uploads pending resumes them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The folder of the journal, under the recordings folder.
pub const JOURNAL_DIR: &str = ".uploads";

/// The journal of one recordings folder.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

/// One pending upload: the recording's file name and its `recording.finished` data.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub file: String,
    pub data: serde_json::Value,
}

impl Journal {
    pub fn new(recordings: &Path) -> Journal {
        Journal { dir: recordings.join(JOURNAL_DIR) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records a pending upload (creating the folder if needed), atomically.
    pub fn write(&self, entry: &Entry) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{}.json.tmp", entry.file));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(serde_json::to_string(&entry.data).map_err(std::io::Error::other)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.path(&entry.file))
    }

    /// Forgets a pending upload (confirmed, or its file is gone).
    pub fn remove(&self, file: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(file)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Every pending upload, by file name; entries that cannot be read are logged and left
    /// in place (an operator can look at them), leftover temporary files are removed.
    pub fn scan(&self) -> Vec<Entry> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut entries = Vec::new();
        for item in dir.flatten() {
            let path = item.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if name.starts_with('.') && name.ends_with(".json.tmp") {
                let _ = std::fs::remove_file(&path); // a write cut short: the upload was never handed over
                continue;
            }
            let Some(file) = name.strip_suffix(".json") else { continue };
            let read = std::fs::read(&path).map_err(|e| e.to_string());
            match read.and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())) {
                Ok(data) => entries.push(Entry { file: file.to_owned(), data }),
                Err(e) => log::error!("upload journal entry {}: {e}; left in place", path.display()),
            }
        }
        entries.sort_by(|a, b| a.file.cmp(&b.file));
        entries
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(format!("{file}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_go_away() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path());
        assert_eq!(journal.scan(), vec![], "no folder yet");
        let a = Entry { file: "a_1.wav".into(), data: serde_json::json!({"session": "a", "file": "a_1.wav"}) };
        let b = Entry { file: "b_2.wav".into(), data: serde_json::json!({"session": "b", "duration_s": 1.5}) };
        journal.write(&b).unwrap();
        journal.write(&a).unwrap();
        assert!(dir.path().join(".uploads/a_1.wav.json").exists());
        std::fs::write(journal.dir().join(".c.wav.json.tmp"), "{\"cut").unwrap();
        std::fs::write(journal.dir().join("bad.wav.json"), "not json").unwrap();
        assert_eq!(journal.scan(), vec![a.clone(), b.clone()]);
        assert!(!journal.dir().join(".c.wav.json.tmp").exists(), "a leftover temporary file is removed");
        assert!(journal.dir().join("bad.wav.json").exists(), "an unreadable entry stays for an operator");
        journal.remove("a_1.wav").unwrap();
        journal.remove("a_1.wav").unwrap(); // already gone: fine
        assert_eq!(journal.scan(), vec![b]);
    }
}
