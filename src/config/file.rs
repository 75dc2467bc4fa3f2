//! The config file (`--config FILE`): TOML, one key per long flag, same name and units.
//!
//! ```toml
//! http-addr = "0.0.0.0:8080"
//! max-sessions = 200
//! jitter-buffer = 500          # milliseconds, as --jitter-buffer
//! cors-origins = ["https://app.example.com"]
//! trusted-proxies = ["127.0.0.1", "10.0.0.0/8"]
//! ```
//!
//! Each key is read on its own (rather than through one derived struct) so that every error
//! names its key: an unknown key, or a value that does not parse.

use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};

use super::token::Token;
use super::{values, Cidr, Millis};
use super::{ConnectTimeout, DisconnectTimeout, JitterBuffer, MaxRecorderLag, StunTimeout};

/// The repeatable flags, and the key (and environment variable) that takes their list.
pub const LISTS: &[(&str, &str)] = &[("cors-origin", "cors-origins"), ("trusted-proxy", "trusted-proxies")];

/// The keys a config file may hold: the long flags without `--` (except `--config`), with
/// the plural of a repeatable flag ([`LISTS`]).
pub const KEYS: &[&str] = &[
    "http-addr",
    "udp-addr",
    "public-ip",
    "sample",
    "recordings",
    "logs",
    "ptime",
    "jitter-buffer",
    "max-sessions",
    "max-recorder-lag",
    "log-level",
    "disconnect-timeout",
    "connect-timeout",
    "stun-timeout",
    "max-connecting-per-client",
    "trusted-proxies",
    "recorder-threads",
    "capture",
    "http-threads",
    "token",
    "token-file",
    "cors-origins",
    "log-max-files",
    "log-max-bytes",
];

/// The settings a config file gave; `None` for every key it did not.
#[derive(Debug, Default)]
pub struct FileSettings {
    pub http_addr: Option<SocketAddr>,
    pub udp_addr: Option<SocketAddr>,
    pub public_ip: Option<IpAddr>,
    pub sample: Option<PathBuf>,
    pub recordings: Option<PathBuf>,
    pub logs: Option<PathBuf>,
    pub ptime: Option<u64>,
    pub jitter_buffer: Option<JitterBuffer>,
    pub max_sessions: Option<NonZeroUsize>,
    pub max_recorder_lag: Option<MaxRecorderLag>,
    pub log_level: Option<log::LevelFilter>,
    pub disconnect_timeout: Option<DisconnectTimeout>,
    pub connect_timeout: Option<ConnectTimeout>,
    pub stun_timeout: Option<StunTimeout>,
    pub max_connecting_per_client: Option<NonZeroUsize>,
    pub trusted_proxies: Option<Vec<Cidr>>,
    pub recorder_threads: Option<usize>,
    pub capture: Option<PathBuf>,
    pub http_threads: Option<NonZeroUsize>,
    /// Checked (not empty, header-safe) when the [`super::Config`] is built.
    pub token: Option<Token>,
    pub token_file: Option<PathBuf>,
    pub cors_origins: Option<Vec<String>>,
    pub log_max_files: Option<NonZeroUsize>,
    pub log_max_bytes: Option<NonZeroU64>,
}

/// A config file that cannot be used; [`super::ConfigError::File`] adds the file's path.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    #[error("{0}")]
    Syntax(toml::de::Error),
    #[error("unknown key `{0}` (the keys are the long flags without `--`: {keys})", keys = KEYS.join(", "))]
    UnknownKey(String),
    #[error("key `{key}`: {message}")]
    BadValue { key: String, message: String },
}

impl FileSettings {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<FileSettings, FileError> {
        let text = std::fs::read_to_string(path).map_err(FileError::Read)?;
        FileSettings::parse(&text)
    }

    /// Parses a config file's text.
    pub fn parse(text: &str) -> Result<FileSettings, FileError> {
        let table: toml::Table = text.parse().map_err(FileError::Syntax)?;
        let mut settings = FileSettings::default();
        for (key, value) in table {
            settings.set(&key, value).map_err(|message| match message {
                Unknown => FileError::UnknownKey(key.clone()),
                Bad(message) => FileError::BadValue { key: key.clone(), message },
            })?;
        }
        Ok(settings)
    }

    fn set(&mut self, key: &str, value: toml::Value) -> Result<(), KeyError> {
        match key {
            "http-addr" => self.http_addr = Some(typed(value)?),
            "udp-addr" => self.udp_addr = Some(typed(value)?),
            "public-ip" => self.public_ip = Some(typed(value)?),
            "sample" => self.sample = Some(typed(value)?),
            "recordings" => self.recordings = Some(typed(value)?),
            "logs" => self.logs = Some(typed(value)?),
            "ptime" => self.ptime = Some(values::check_ptime(typed(value)?).map_err(Bad)?),
            "jitter-buffer" => self.jitter_buffer = Some(millis(value)?),
            "max-sessions" => self.max_sessions = Some(typed(value)?),
            "max-recorder-lag" => self.max_recorder_lag = Some(millis(value)?),
            "log-level" => self.log_level = Some(values::parse_level(&typed::<String>(value)?).map_err(Bad)?),
            "disconnect-timeout" => self.disconnect_timeout = Some(millis(value)?),
            "connect-timeout" => self.connect_timeout = Some(millis(value)?),
            "stun-timeout" => self.stun_timeout = Some(millis(value)?),
            "max-connecting-per-client" => self.max_connecting_per_client = Some(typed(value)?),
            "trusted-proxies" => self.trusted_proxies = Some(cidrs(value)?),
            "recorder-threads" => self.recorder_threads = Some(typed(value)?),
            "capture" => self.capture = Some(typed(value)?),
            "http-threads" => self.http_threads = Some(typed(value)?),
            "token" => self.token = Some(Token::raw(typed(value)?)),
            "token-file" => self.token_file = Some(typed(value)?),
            "cors-origins" => self.cors_origins = Some(origins(value)?),
            "log-max-files" => self.log_max_files = Some(typed(value)?),
            "log-max-bytes" => self.log_max_bytes = Some(bytes(value)?),
            _ => return Err(Unknown),
        }
        Ok(())
    }
}

/// Why one key was refused.
enum KeyError {
    Unknown,
    Bad(String),
}
use KeyError::{Bad, Unknown};

/// The value as `T`, through serde.
fn typed<T: serde::de::DeserializeOwned>(value: toml::Value) -> Result<T, KeyError> {
    value.try_into().map_err(|e: toml::de::Error| Bad(e.message().to_owned()))
}

/// An array of origins, each checked as `--cors-origin` checks it.
fn origins(value: toml::Value) -> Result<Vec<String>, KeyError> {
    let list: Vec<String> = typed(value)?;
    list.iter().map(|o| values::parse_origin(o).map_err(|e| Bad(format!("{o:?} {e}")))).collect()
}

/// Milliseconds within the setting's range, an integer as the flag takes.
fn millis<const MIN: u64, const MAX: u64>(value: toml::Value) -> Result<Millis<MIN, MAX>, KeyError> {
    Millis::new(typed(value)?).map_err(Bad)
}

/// An array of address blocks, each checked as `--trusted-proxy` checks it.
fn cidrs(value: toml::Value) -> Result<Vec<Cidr>, KeyError> {
    let list: Vec<String> = typed(value)?;
    list.iter().map(|c| c.parse().map_err(|e| Bad(format!("{c:?} {e}")))).collect()
}

/// A byte count: an integer, or a string with a unit as `--log-max-bytes` takes (`"50MiB"`).
fn bytes(value: toml::Value) -> Result<NonZeroU64, KeyError> {
    match value {
        toml::Value::String(s) => values::parse_bytes(&s).map_err(Bad),
        other => typed(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_typed() {
        let f = FileSettings::parse(
            r#"
            http-addr = "0.0.0.0:8080"
            public-ip = "203.0.113.7"
            max-sessions = 200
            ptime = 20
            jitter-buffer = 500
            log-level = "debug"
            recordings = "/var/lib/tapedeck/recordings"
            token = "abc"
            cors-origins = ["https://App.example.com", "*"]
            log-max-files = 3
            log-max-bytes = "1MiB"
            "#,
        )
        .unwrap();
        assert_eq!(f.http_addr, Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(f.public_ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(f.max_sessions.map(NonZeroUsize::get), Some(200));
        assert_eq!((f.ptime, f.jitter_buffer.map(Millis::as_millis)), (Some(20), Some(500)));
        assert_eq!(f.log_level, Some(log::LevelFilter::Debug));
        assert_eq!(f.recordings, Some(PathBuf::from("/var/lib/tapedeck/recordings")));
        assert_eq!(f.token.as_ref().map(Token::expose), Some("abc"));
        assert_eq!(f.cors_origins, Some(vec!["https://app.example.com".to_owned(), "*".to_owned()]));
        assert_eq!(f.log_max_files.map(NonZeroUsize::get), Some(3));
        assert_eq!(f.log_max_bytes.map(NonZeroU64::get), Some(1 << 20));
        assert_eq!(FileSettings::parse("log-max-bytes = 4096").unwrap().log_max_bytes.map(NonZeroU64::get), Some(4096));
        assert!(f.udp_addr.is_none() && f.sample.is_none());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = FileSettings::parse("htp-addr = \"0.0.0.0:1\"").unwrap_err();
        assert!(matches!(&e, FileError::UnknownKey(k) if k == "htp-addr"), "{e}");
        assert!(e.to_string().contains("`htp-addr`"), "{e}");
        // A table is not a setting either.
        assert!(matches!(FileSettings::parse("[server]\nport = 1"), Err(FileError::UnknownKey(k)) if k == "server"));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("http-addr = \"nowhere\"", "http-addr"),
            ("http-addr = 8080", "http-addr"),
            ("ptime = 15", "ptime"),
            ("jitter-buffer = \"1000\"", "jitter-buffer"),
            ("max-sessions = 0", "max-sessions"),
            ("max-sessions = -3", "max-sessions"),
            ("log-level = \"loud\"", "log-level"),
            ("cors-origins = \"https://a.example\"", "cors-origins"),
            ("cors-origins = [\"https://a.example/app\"]", "cors-origins"),
            ("token = 1234", "token"),
            ("log-max-files = 0", "log-max-files"),
            ("log-max-bytes = 0", "log-max-bytes"),
            ("log-max-bytes = \"50MB\"", "log-max-bytes"),
            ("stun-timeout = \"5000\"", "stun-timeout"),
            ("max-connecting-per-client = 0", "max-connecting-per-client"),
            ("trusted-proxies = \"10.0.0.0/8\"", "trusted-proxies"),
            ("trusted-proxies = [\"10.0.0.1/8\"]", "trusted-proxies"),
            ("trusted-proxies = [\"proxy.local\"]", "trusted-proxies"),
        ] {
            let e = FileSettings::parse(text).unwrap_err();
            assert!(matches!(&e, FileError::BadValue { key: k, .. } if k == key), "{text}: {e}");
            assert!(e.to_string().starts_with(&format!("key `{key}`: ")), "{text}: {e}");
        }
    }

    #[test]
    fn durations_and_proxies_are_typed() {
        let f = FileSettings::parse(
            "disconnect-timeout = 1000\nconnect-timeout = 300000\nstun-timeout = 500\nmax-recorder-lag = 100\n\
             max-connecting-per-client = 3\ntrusted-proxies = [\"127.0.0.1\", \"fd00::/8\"]\n",
        )
        .unwrap();
        assert_eq!(f.disconnect_timeout.map(Millis::as_millis), Some(1000));
        assert_eq!(f.connect_timeout.map(Millis::as_millis), Some(300_000));
        assert_eq!(f.stun_timeout.map(Millis::get), Some(std::time::Duration::from_millis(500)));
        assert_eq!(f.max_recorder_lag.map(Millis::as_millis), Some(100));
        assert_eq!(f.max_connecting_per_client.map(NonZeroUsize::get), Some(3));
        let proxies: Vec<String> = f.trusted_proxies.unwrap().iter().map(Cidr::to_string).collect();
        assert_eq!(proxies, ["127.0.0.1/32", "fd00::/8"]);
    }

    #[test]
    fn durations_out_of_range_name_the_key_and_the_range() {
        for (text, key, range) in [
            ("disconnect-timeout = 0", "disconnect-timeout", "between 1000 and 300000 ms"),
            ("disconnect-timeout = 300001", "disconnect-timeout", "between 1000 and 300000 ms"),
            ("connect-timeout = 999", "connect-timeout", "between 1000 and 300000 ms"),
            ("stun-timeout = 0", "stun-timeout", "between 500 and 60000 ms"),
            ("stun-timeout = 60001", "stun-timeout", "between 500 and 60000 ms"),
            ("max-recorder-lag = 0", "max-recorder-lag", "between 100 and 600000 ms"),
            ("jitter-buffer = 19", "jitter-buffer", "between 20 and 10000 ms"),
        ] {
            let e = FileSettings::parse(text).unwrap_err().to_string();
            assert_eq!(e, format!("key `{key}`: must be {range}"), "{text}");
        }
        let e = FileSettings::parse("connect-timeout = -1").unwrap_err().to_string();
        assert!(e.starts_with("key `connect-timeout`: "), "{e}");
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = FileSettings::parse("http-addr = \n").unwrap_err();
        assert!(matches!(e, FileError::Syntax(_)));
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn every_key_is_known() {
        for key in KEYS {
            let e = FileSettings::parse(&format!("{key} = {{}}")).unwrap_err();
            assert!(matches!(e, FileError::BadValue { .. }), "{key}: {e}");
        }
    }
}
