//! Logging: console at the chosen level, a file per start at debug, both through fern.
//!
//! Log files do not grow without bound: at start the oldest tapedeck log files beyond
//! `--log-max-files` are deleted ([`prune`]), and this start's file is rotated to `<name>.1`
//! when it would pass `--log-max-bytes` ([`RotatingFile`]), so the folder holds at most
//! `2 × max-files × max-bytes` of our logs.
//!
//! Every line about a session carries its id. Code that works on one session holds the
//! session's log scope (`let _scope = id.log_scope();`, see [`tapedeck_core::session_id`]);
//! the formatter then prefixes the line with `[session <id>]`, also for lines that str0m
//! itself logs (through `tracing`'s `log` feature) while we are inside it.

mod files;

use std::fs;
use std::io::{self, Write};
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};

pub use files::{prune, Pruned, RotatingFile};

fn session_prefix() -> String {
    tapedeck_core::session_id::current().map(|id| format!("[session {id}] ")).unwrap_or_default()
}

/// How many log files are kept and how large one grows.
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    /// Most log files kept, counting the current start's (a start's `.1` goes with it).
    pub max_files: NonZeroUsize,
    /// Size at which the current file is rotated.
    pub max_bytes: NonZeroU64,
}

/// Sets up the console and file loggers, after deleting the oldest log files beyond
/// `limits.max_files`; returns the log file's path.
pub fn init(dir: &Path, console: log::LevelFilter, stamp: &str, limits: FileLimits) -> Result<PathBuf, io::Error> {
    fs::create_dir_all(dir)?;
    let pruned = prune(dir, stamp, limits.max_files);
    let path = dir.join(files::file_name(stamp));
    let file = RotatingFile::open(path.clone(), limits.max_bytes)?;
    let format = |out: fern::FormatCallback, message: &std::fmt::Arguments, record: &log::Record| {
        #[allow(clippy::disallowed_methods)] // a log line's timestamp is read where it is written
        let t = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        out.finish(format_args!("{t} {:<5} {}: {}{message}", record.level(), record.target(), session_prefix()))
    };
    // str0m's per-packet chatter stays out of the file unless asked for.
    let file_level = log::LevelFilter::Debug.max(console);
    fern::Dispatch::new()
        .format(format)
        .level(file_level)
        .chain(fern::Dispatch::new().level(console).chain(io::stderr()))
        .chain(fern::Dispatch::new().level(file_level).chain(Box::new(file) as Box<dyn Write + Send>))
        .apply()
        .map_err(io::Error::other)?;
    for old in &pruned.removed {
        log::debug!("removed old log file {}", old.display());
    }
    for (old, e) in &pruned.failed {
        log::warn!("cannot remove old log file {}: {e}", old.display());
    }
    Ok(path)
}

/// A UTC timestamp usable in file names: `20261124T011019Z`.
pub fn file_stamp(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string().chars().filter(|c| *c != '-' && *c != ':').collect()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_is_compact_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        assert_eq!(file_stamp(t), "20261118T110640Z");
    }

    #[test]
    fn session_prefix_is_scoped() {
        let id = tapedeck_core::engine::SessionId::from_u128(7);
        assert_eq!(session_prefix(), "");
        let scope = id.log_scope();
        let inside = session_prefix();
        drop(scope);
        assert!(inside.contains(&id.to_string()), "{inside}");
        assert_eq!(session_prefix(), "");
    }
}
