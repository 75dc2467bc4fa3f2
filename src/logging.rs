//! Logging: console at the chosen level, a file per start at debug, both through fern.
//!
//! Every line about a session carries its id. Code that works on one session wraps the work
//! in [`with_session`]; the formatter then prefixes the line with `[session <id>]`, also for
//! lines that str0m itself logs (through `tracing`'s `log` feature) while we are inside it.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use crate::engine::SessionId;

thread_local! {
    static CURRENT: Cell<Option<SessionId>> = const { Cell::new(None) };
}

/// Runs `f` with `id` as the session every log line on this thread is about.
pub fn with_session<R>(id: SessionId, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|c| c.replace(Some(id)));
    let out = f();
    CURRENT.with(|c| c.set(previous));
    out
}

fn session_prefix() -> String {
    CURRENT.with(Cell::get).map(|id| format!("[session {id}] ")).unwrap_or_default()
}

/// Sets up the console and file loggers; returns the log file's path.
pub fn init(dir: &Path, console: log::LevelFilter, stamp: &str) -> Result<PathBuf, std::io::Error> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("tapedeck_{stamp}.log"));
    let file = fern::log_file(&path)?;
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
        .chain(fern::Dispatch::new().level(console).chain(std::io::stderr()))
        .chain(fern::Dispatch::new().level(file_level).chain(file))
        .apply()
        .map_err(std::io::Error::other)?;
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
        let id = SessionId::from_u128(7);
        assert_eq!(session_prefix(), "");
        let inside = with_session(id, session_prefix);
        assert!(inside.contains(&id.to_string()), "{inside}");
        assert_eq!(session_prefix(), "");
    }
}
