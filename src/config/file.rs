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
//! names its key: an unknown key, or a value that does not parse. The keys, and which parser
//! below reads each, are rows of the table of settings in `config.rs`.

use std::num::NonZeroU64;
use std::path::Path;

use super::token::Token;
use super::{values, Cidr, Millis};
pub use super::{FileSettings, KEYS, LISTS};

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
}

/// Why one key was refused.
pub(super) enum KeyError {
    Unknown,
    Bad(String),
}
use KeyError::{Bad, Unknown};

// The parsers of the keys' values, named in the table of settings (`config.rs`): each takes
// what its flag takes, checked as the flag checks it, in the TOML type that fits (a number
// of milliseconds is an integer, not a string).

/// The value as `T`, through serde.
pub(super) fn typed<T: serde::de::DeserializeOwned>(value: toml::Value) -> Result<T, KeyError> {
    value.try_into().map_err(|e: toml::de::Error| Bad(e.message().to_owned()))
}

/// A packet time, as `--ptime` takes it.
pub(super) fn ptime(value: toml::Value) -> Result<u64, KeyError> {
    values::check_ptime(typed(value)?).map_err(Bad)
}

/// A log level, as `--log-level` takes it.
pub(super) fn level(value: toml::Value) -> Result<log::LevelFilter, KeyError> {
    values::parse_level(&typed::<String>(value)?).map_err(Bad)
}

/// The token as given; checked (not empty, header-safe) when the [`super::Config`] is built.
pub(super) fn token(value: toml::Value) -> Result<Token, KeyError> {
    Ok(Token::raw(typed(value)?))
}

/// An array of origins, each checked as `--cors-origin` checks it.
pub(super) fn origins(value: toml::Value) -> Result<Vec<String>, KeyError> {
    let list: Vec<String> = typed(value)?;
    list.iter().map(|o| values::parse_origin(o).map_err(|e| Bad(format!("{o:?} {e}")))).collect()
}

/// A node id, as `--node-id` takes it.
pub(super) fn node_id(value: toml::Value) -> Result<String, KeyError> {
    values::parse_node_id(&typed::<String>(value)?).map_err(Bad)
}

/// An array of webhook URLs, each checked as `--webhook` checks it.
pub(super) fn webhook_urls(value: toml::Value) -> Result<Vec<String>, KeyError> {
    let list: Vec<String> = typed(value)?;
    list.iter().map(|u| values::parse_webhook_url(u).map_err(|e| Bad(format!("{u:?} {e}")))).collect()
}

/// A string parsed as the flag parses it (`--name-template`, `--format`).
pub(super) fn parsed<T: std::str::FromStr<Err = String>>(value: toml::Value) -> Result<T, KeyError> {
    typed::<String>(value)?.parse().map_err(Bad)
}

/// A public URL, as `--public-url` takes it.
pub(super) fn public_url(value: toml::Value) -> Result<String, KeyError> {
    values::parse_public_url(&typed::<String>(value)?).map_err(Bad)
}

/// Milliseconds within the setting's range, an integer as the flag takes.
pub(super) fn millis<const MIN: u64, const MAX: u64>(value: toml::Value) -> Result<Millis<MIN, MAX>, KeyError> {
    Millis::new(typed(value)?).map_err(Bad)
}

/// An array of address blocks, each checked as `--trusted-proxy` checks it.
pub(super) fn cidrs(value: toml::Value) -> Result<Vec<Cidr>, KeyError> {
    let list: Vec<String> = typed(value)?;
    list.iter().map(|c| c.parse().map_err(|e| Bad(format!("{c:?} {e}")))).collect()
}

/// A byte count: an integer, or a string with a unit as `--log-max-bytes` takes (`"50MiB"`).
pub(super) fn bytes(value: toml::Value) -> Result<NonZeroU64, KeyError> {
    match value {
        toml::Value::String(s) => values::parse_bytes(&s).map_err(Bad),
        other => typed(other),
    }
}

/// An object storage URL, as `--upload` takes it.
pub(super) fn s3_url(value: toml::Value) -> Result<super::S3Url, KeyError> {
    super::S3Url::parse(&typed::<String>(value)?).map_err(Bad)
}

/// An S3 endpoint, as `--upload-endpoint` takes it.
pub(super) fn endpoint(value: toml::Value) -> Result<String, KeyError> {
    values::parse_endpoint(&typed::<String>(value)?).map_err(Bad)
}

/// A region, as `--upload-region` takes it.
pub(super) fn region(value: toml::Value) -> Result<String, KeyError> {
    values::parse_region(&typed::<String>(value)?).map_err(Bad)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::path::PathBuf;

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
