//! Where the recorder pipeline's files go. The pipeline never opens a file itself: it asks a
//! [`Storage`] for a writer per recording (and per capture). The daemon's [`FileStorage`]
//! creates buffered files; [`MemStorage`] keeps every file in memory by path, for the
//! simulated network and the unit tests, which read each WAV and capture back from it (also
//! while it is still being written).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use tapedeck_core::media::mem_file::MemFile;

/// Bytes buffered per file before a write: a sixth of a second of audio, so a recording
/// costs six write calls a second instead of twelve, for 16 KiB of memory per caller.
pub const WRITE_BUFFER: usize = 16 * 1024;

/// Creates the writers the pipeline records into.
pub trait Storage {
    /// A recording's WAV file (hound seeks back to rewrite the header).
    type Wav: Write + Seek;
    /// A recording's capture (see `media::capture`).
    type Capture: Write;

    /// Creates (or truncates) the WAV file at `path`.
    fn create_wav(&mut self, path: &Path) -> io::Result<Self::Wav>;
    /// Creates (or truncates) the capture file at `path`.
    fn create_capture(&mut self, path: &Path) -> io::Result<Self::Capture>;
}

/// Files on disk, each behind a write buffer (WAVs: [`WRITE_BUFFER`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct FileStorage;

impl Storage for FileStorage {
    type Wav = BufWriter<File>;
    type Capture = BufWriter<File>;

    fn create_wav(&mut self, path: &Path) -> io::Result<Self::Wav> {
        Ok(BufWriter::with_capacity(WRITE_BUFFER, File::create(path)?))
    }

    fn create_capture(&mut self, path: &Path) -> io::Result<Self::Capture> {
        Ok(BufWriter::new(File::create(path)?))
    }
}

/// Files in memory, by path. Single-threaded (the simulation and unit tests).
#[derive(Default)]
pub struct MemStorage {
    files: BTreeMap<PathBuf, MemFile>,
}

impl MemStorage {
    /// A copy of the file's bytes as written so far (the file may still be open).
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        self.files.get(path).map(MemFile::bytes)
    }

    /// Removes the file and hands over its bytes (without copying them).
    pub fn take(&mut self, path: &Path) -> Option<Vec<u8>> {
        self.files.remove(path).map(|f| f.take())
    }

    fn create(&mut self, path: &Path) -> MemFile {
        let file = MemFile::default();
        self.files.insert(path.to_path_buf(), file.clone());
        file
    }
}

impl Storage for MemStorage {
    type Wav = MemFile;
    type Capture = MemFile;

    fn create_wav(&mut self, path: &Path) -> io::Result<MemFile> {
        Ok(self.create(path))
    }

    fn create_capture(&mut self, path: &Path) -> io::Result<MemFile> {
        Ok(self.create(path))
    }
}

#[cfg(test)]
mod tests {
    use std::io::SeekFrom;

    use super::*;

    #[test]
    fn memory_files_read_back_while_open_and_hand_over_when_taken() {
        let mut storage = MemStorage::default();
        let path = Path::new("a.wav");
        let mut file = storage.create_wav(path).unwrap();
        file.write_all(b"abcd").unwrap();
        file.seek(SeekFrom::Start(1)).unwrap();
        file.write_all(b"X").unwrap();
        assert_eq!(storage.read(path).unwrap(), b"aXcd");
        drop(file);
        assert_eq!(storage.take(path).unwrap(), b"aXcd");
        assert_eq!(storage.read(path), None, "taken files are gone");
    }

    #[test]
    fn files_on_disk_are_created_and_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut wav = FileStorage.create_wav(&path).unwrap();
        assert_eq!(wav.capacity(), WRITE_BUFFER);
        wav.write_all(b"RIFF").unwrap();
        drop(wav);
        assert_eq!(std::fs::read(&path).unwrap(), b"RIFF");
        assert!(FileStorage.create_capture(&dir.path().join("missing/x.tdcap")).is_err());
    }
}
