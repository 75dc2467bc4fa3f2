//! The log files: one per start, the oldest deleted beyond a count ([`prune`]), the
//! current one rotated at a size cap ([`RotatingFile`]).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};

/// The log file of the start at `stamp`.
pub(super) fn file_name(stamp: &str) -> String {
    format!("tapedeck_{stamp}.log")
}

/// The start stamp of one of our log file names, `tapedeck_<stamp>.log` or
/// `tapedeck_<stamp>.log.1`, where the stamp is [`super::file_stamp`]'s `20261124T011019Z`.
fn stamp_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("tapedeck_")?;
    let stamp = rest.strip_suffix(".log").or_else(|| rest.strip_suffix(".log.1"))?;
    let b = stamp.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() == 16 && digits(0..8) && b[8] == b'T' && digits(9..15) && b[15] == b'Z';
    ok.then_some(stamp)
}

/// What [`prune`] did.
#[derive(Debug, Default)]
pub struct Pruned {
    pub removed: Vec<PathBuf>,
    pub failed: Vec<(PathBuf, io::Error)>,
}

/// Deletes the log files of the oldest starts so that, with the start at `current`, at most
/// `max_files` starts' logs remain in `dir`. Only regular files named as ours are touched:
/// anything else in the folder (other files, folders, links) stays.
pub fn prune(dir: &Path, current: &str, max_files: NonZeroUsize) -> Pruned {
    let mut pruned = Pruned::default();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            pruned.failed.push((dir.to_owned(), e));
            return pruned;
        }
    };
    // Stamps sort as times, so the map runs from the oldest start to the newest.
    let mut starts: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(stamp) = name.to_str().and_then(stamp_of) else { continue };
        // file_type does not follow links: a link named like ours is not ours.
        if stamp != current && entry.file_type().is_ok_and(|t| t.is_file()) {
            starts.entry(stamp.to_owned()).or_default().push(entry.path());
        }
    }
    let excess = starts.len().saturating_sub(max_files.get() - 1);
    for path in starts.into_values().take(excess).flatten() {
        match fs::remove_file(&path) {
            Ok(()) => pruned.removed.push(path),
            Err(e) => pruned.failed.push((path, e)),
        }
    }
    pruned
}

/// The current log file, rotated at a size cap: when a record would take it past
/// `max_bytes`, it is renamed to `<name>.1` (replacing an earlier one) and a new file begun,
/// so one start leaves at most `2 × max_bytes`.
///
/// Records are gathered until `flush` (fern writes a record in pieces, then flushes), so a
/// file always ends at a record's end; a record larger than the cap is cut to it (bytes
/// written past the cap before a flush are dropped, and the kept part ends in a newline). I/O
/// errors never reach the caller, which would panic in fern's fallback: the record is
/// dropped, the first error of a run is reported on stderr, and the next record tries
/// again. Not shared itself: fern holds it behind a mutex, so threads take turns.
pub struct RotatingFile {
    path: PathBuf,
    rotated: PathBuf,
    file: Option<File>,
    written: u64,
    max: NonZeroU64,
    pending: Vec<u8>,
    /// The pending record reached the cap and lost its end.
    cut: bool,
    failing: bool,
    /// Where failures are reported: stderr (tests listen here instead).
    report_to: fn(&str),
}

impl RotatingFile {
    /// Opens (appending to) the file at `path`.
    pub fn open(path: PathBuf, max_bytes: NonZeroU64) -> io::Result<RotatingFile> {
        let file = open_append(&path)?;
        let written = file.metadata()?.len();
        let mut rotated = path.clone().into_os_string();
        rotated.push(".1");
        Ok(RotatingFile {
            path,
            rotated: rotated.into(),
            file: Some(file),
            written,
            max: max_bytes,
            pending: Vec::new(),
            cut: false,
            failing: false,
            report_to: to_stderr,
        })
    }

    /// Writes the gathered record, rotating first if it would pass the cap.
    fn commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut record = std::mem::take(&mut self.pending);
        if std::mem::take(&mut self.cut) {
            if let Some(last) = record.last_mut() {
                *last = b'\n'; // the line was cut: end it
            }
        }
        let len = record.len() as u64;
        let result = if self.written > 0 && self.written + len > self.max.get() {
            self.rotate().and_then(|()| self.append(&record))
        } else {
            self.append(&record)
        };
        match result {
            Ok(()) => self.failing = false,
            Err(e) => self.report(&e),
        }
        record.clear();
        self.pending = record; // keeps the allocation
    }

    /// Renames the file to `<name>.1` and begins a new one.
    fn rotate(&mut self) -> io::Result<()> {
        match fs::rename(&self.path, &self.rotated) {
            // Someone removed the file: there is nothing to keep, just begin a new one.
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.file = None;
        self.written = 0;
        self.reopen()
    }

    fn reopen(&mut self) -> io::Result<()> {
        let file = open_append(&self.path)?;
        self.written = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn append(&mut self, record: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.reopen()?;
        }
        let file = self.file.as_mut().expect("reopen leaves a file open");
        let result = file.write_all(record);
        // After a partial write, trust the file's length rather than our count.
        self.written = match &result {
            Ok(()) => self.written + record.len() as u64,
            Err(_) => file.metadata().map_or(self.written, |m| m.len()),
        };
        result
    }

    /// Says on stderr, once per run of failures, that log lines are being lost.
    fn report(&mut self, e: &io::Error) {
        if !self.failing {
            self.failing = true;
            (self.report_to)(&format!("tapedeck: log file {}: {e}; dropping log lines", self.path.display()));
        }
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A record is cut at the cap anyway: gather no more than that.
        let room = usize::try_from(self.max.get()).unwrap_or(usize::MAX).saturating_sub(self.pending.len());
        let take = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..take]);
        self.cut |= take < buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.commit();
        Ok(())
    }
}

impl Drop for RotatingFile {
    fn drop(&mut self) {
        self.commit();
    }
}

/// Writes a line on stderr; a failure there has nowhere left to go.
fn to_stderr(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

fn open_append(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn n(v: u64) -> NonZeroU64 {
        NonZeroU64::new(v).unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    fn size(path: &Path) -> u64 {
        fs::metadata(path).map_or(0, |m| m.len())
    }

    /// Writes one record as fern does: in pieces, then a flush.
    fn record(w: &mut impl Write, i: usize, len: usize) {
        let body = "x".repeat(len - 12);
        write!(w, "line {i:05} ").unwrap();
        w.write_all(body.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        w.flush().unwrap();
    }

    #[test]
    fn our_names_only() {
        assert_eq!(stamp_of("tapedeck_20261124T011019Z.log"), Some("20261124T011019Z"));
        assert_eq!(stamp_of("tapedeck_20261124T011019Z.log.1"), Some("20261124T011019Z"));
        for foreign in [
            "tapedeck_20261124T011019Z.log.2",
            "tapedeck_20261124T011019Z.log.bak",
            "tapedeck_latest.log",
            "tapedeck_2026112xT011019Z.log",
            "tapedeck_20261124T011019.log",
            "other_20261124T011019Z.log",
            "tapedeck_20261124T011019Z.txt",
        ] {
            assert_eq!(stamp_of(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn prune_deletes_the_oldest_starts_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for day in 10..22 {
            fs::write(d.join(format!("tapedeck_202611{day}T000000Z.log")), "old").unwrap();
        }
        fs::write(d.join("tapedeck_20261110T000000Z.log.1"), "older part").unwrap();
        fs::write(d.join("tapedeck_20261121T000000Z.log.1"), "newest's older part").unwrap();
        let foreign =
            ["notes.txt", "tapedeck_latest.log", "tapedeck_20261101T000000Z.log.2", "app_20261101T000000Z.log"];
        for name in foreign {
            fs::write(d.join(name), "not ours").unwrap();
        }
        fs::create_dir(d.join("tapedeck_20261001T000000Z.log")).unwrap();
        std::os::unix::fs::symlink(d.join("notes.txt"), d.join("tapedeck_20261002T000000Z.log")).unwrap();

        let pruned = prune(d, "20261124T000000Z", NonZeroUsize::new(3).unwrap());
        assert!(pruned.failed.is_empty(), "{:?}", pruned.failed);
        assert_eq!(pruned.removed.len(), 11, "ten starts, one with a .1");
        let mut expected: Vec<String> = foreign.iter().map(|s| s.to_string()).collect();
        expected.extend(
            [
                "tapedeck_20261001T000000Z.log",
                "tapedeck_20261002T000000Z.log",
                "tapedeck_20261120T000000Z.log",
                "tapedeck_20261121T000000Z.log",
                "tapedeck_20261121T000000Z.log.1",
            ]
            .map(String::from),
        );
        expected.sort();
        assert_eq!(names(d), expected);
        assert!(d.join("notes.txt").is_file(), "the link's target stays");
    }

    #[test]
    fn prune_spares_the_current_start_and_keeps_one_file_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for stamp in ["20261120T000000Z", "20261121T000000Z", "20261124T000000Z"] {
            fs::write(d.join(format!("tapedeck_{stamp}.log")), "x").unwrap();
        }
        let pruned = prune(d, "20261124T000000Z", NonZeroUsize::MIN);
        assert_eq!(pruned.removed.len(), 2);
        assert_eq!(names(d), ["tapedeck_20261124T000000Z.log"]);
        // Fewer files than the limit: nothing to do.
        assert!(prune(d, "20261125T000000Z", NonZeroUsize::new(10).unwrap()).removed.is_empty());
    }

    #[test]
    fn rotation_happens_at_the_cap_between_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tapedeck_20261124T000000Z.log");
        let rotated = dir.path().join("tapedeck_20261124T000000Z.log.1");
        let mut w = RotatingFile::open(path.clone(), n(1000)).unwrap();
        for i in 0..10 {
            record(&mut w, i, 100);
        }
        assert_eq!(size(&path), 1000, "exactly at the cap: no rotation yet");
        assert!(!rotated.exists());
        record(&mut w, 10, 100);
        assert_eq!(size(&rotated), 1000);
        assert_eq!(fs::read_to_string(&path).unwrap().lines().next().map(|l| &l[..10]), Some("line 00010"));
        for i in 11..25 {
            record(&mut w, i, 100);
        }
        // The second rotation replaced the first .1: records 10 to 19 there, 20 to 24 here.
        let old = fs::read_to_string(&rotated).unwrap();
        assert!(old.starts_with("line 00010") && old.lines().count() == 10, "{old}");
        assert!(fs::read_to_string(&path).unwrap().starts_with("line 00020"));
    }

    #[test]
    fn total_bytes_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tapedeck_20261124T000000Z.log");
        let mut w = RotatingFile::open(path.clone(), n(4096)).unwrap();
        for i in 0..20_000 {
            record(&mut w, i, 20 + i % 150);
        }
        record(&mut w, 99_999, 10_000); // larger than the cap: cut to it
        drop(w);
        let files = names(dir.path());
        assert_eq!(files, ["tapedeck_20261124T000000Z.log", "tapedeck_20261124T000000Z.log.1"]);
        let total: u64 = files.iter().map(|f| size(&dir.path().join(f))).sum();
        assert!(total <= 2 * 4096, "{total} bytes");
        let last = fs::read_to_string(&path).unwrap();
        assert_eq!(last.len(), 4096, "the oversized record alone, cut to the cap");
        assert!(last.starts_with("line 99999") && last.ends_with('\n'));
        let previous = fs::read_to_string(dir.path().join(&files[1])).unwrap();
        assert!(previous.lines().all(|l| l.starts_with("line ")), "records are never split");
        assert!(previous.lines().last().is_some_and(|l| l.starts_with("line 19999")), "the record before the big one");
    }

    #[test]
    fn a_restart_appends_and_counts_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tapedeck_20261124T000000Z.log");
        fs::write(&path, "x".repeat(950)).unwrap();
        let mut w = RotatingFile::open(path.clone(), n(1000)).unwrap();
        record(&mut w, 0, 100);
        assert_eq!(size(&dir.path().join("tapedeck_20261124T000000Z.log.1")), 950);
        assert_eq!(size(&path), 100);
    }

    thread_local! {
        static REPORTS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    fn note(line: &str) {
        REPORTS.with(|r| r.borrow_mut().push(line.to_owned()));
    }

    fn reports() -> Vec<String> {
        REPORTS.with(|r| r.take())
    }

    #[test]
    fn io_errors_lose_lines_but_never_fail_or_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tapedeck_20261124T000000Z.log");
        let rotated = dir.path().join("tapedeck_20261124T000000Z.log.1");
        // A non-empty folder where the rotated file should go: the rename fails.
        fs::create_dir_all(rotated.join("blocker")).unwrap();
        let mut w = RotatingFile::open(path.clone(), n(1000)).unwrap();
        w.report_to = note;
        for i in 0..50 {
            record(&mut w, i, 100);
        }
        assert_eq!(size(&path), 1000, "the cap holds while rotation fails");
        let said = reports();
        assert_eq!(said.len(), 1, "one report for a run of failures: {said:?}");
        assert!(said[0].contains("tapedeck_20261124T000000Z.log") && said[0].contains("dropping"), "{said:?}");
        fs::remove_dir_all(&rotated).unwrap();
        record(&mut w, 50, 100);
        assert_eq!((size(&rotated), size(&path)), (1000, 100), "rotation resumes");
        // The file removed under it (by hand or by logrotate): a new one is begun.
        fs::remove_file(&path).unwrap();
        for i in 51..62 {
            record(&mut w, i, 100);
        }
        let begun = fs::read_to_string(&path).unwrap();
        assert!(begun.starts_with("line 00060") && begun.lines().count() == 2, "{begun}");
        // The whole folder gone: nothing can be written, and nothing fails.
        assert!(reports().is_empty(), "no failure there");
        drop(w);
        let mut w = RotatingFile::open(path.clone(), n(1000)).unwrap();
        w.report_to = note;
        fs::remove_dir_all(dir.path()).unwrap();
        for i in 0..30 {
            record(&mut w, i, 100);
        }
        assert!(!path.exists());
        assert_eq!(reports().len(), 1);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // threads share the logger, as the daemon's do
    fn fern_writes_whole_records_through_it() {
        fn assert_send<T: Send>(_: &T) {}
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tapedeck_20261124T000000Z.log");
        let file = RotatingFile::open(path.clone(), n(2000)).unwrap();
        assert_send(&file);
        let (_, logger) = fern::Dispatch::new()
            .format(|out, message, record| {
                out.finish(format_args!("{} {}: {message}", record.level(), record.target()))
            })
            .chain(Box::new(file) as Box<dyn Write + Send>)
            .into_log();
        let logger: Arc<dyn log::Log> = Arc::from(logger);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let logger = logger.clone();
                std::thread::Builder::new()
                    .spawn(move || {
                        for i in 0..200 {
                            let args = format_args!("thread {t} record {i:03} {}", "y".repeat(40));
                            logger.log(&log::Record::builder().args(args).level(log::Level::Info).target("t").build());
                        }
                    })
                    .unwrap()
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(logger);
        let rotated = fs::read_to_string(dir.path().join("tapedeck_20261124T000000Z.log.1")).unwrap();
        let current = fs::read_to_string(&path).unwrap();
        assert!(rotated.len() <= 2000 && current.len() <= 2000 && !current.is_empty());
        for line in rotated.lines().chain(current.lines()) {
            assert!(line.starts_with("INFO t: thread ") && line.ends_with(&"y".repeat(40)), "{line:?}");
        }
    }
}
