//! Command line, environment, config file, and the typed configuration they become.
//!
//! Every setting has a long flag (a contract that scripts rely on, see DESIGN.md), an
//! environment variable `TAPEDECK_<FLAG_IN_UPPER_SNAKE>`, and a key of the same name in the
//! TOML file named by `--config` ([`file`]). Precedence: command line > environment > config
//! file > built-in default. They are parsed once, at start, into [`Config`], whose fields
//! carry types (`SocketAddr`, [`Millis`], `NonZero*`, [`Cidr`]) rather than strings: a value
//! out of its range is refused where it is read, with a message naming the setting.

mod cidr;
pub mod file;
mod millis;
mod token;
mod values;

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

pub use cidr::{Cidr, CidrError};
pub use file::{FileError, FileSettings};
pub use millis::Millis;
pub use token::{Token, TokenError};

/// `--jitter-buffer`: 20 ms (one packet) to 10 s.
pub type JitterBuffer = Millis<20, 10_000>;
/// `--max-recorder-lag`: 100 ms (a scheduling hiccup is not overload) to 10 min.
pub type MaxRecorderLag = Millis<100, 600_000>;
/// `--disconnect-timeout`: 1 s (below that, a lost packet or two would end calls) to 5 min.
pub type DisconnectTimeout = Millis<1_000, 300_000>;
/// `--connect-timeout`: 1 s (a handshake takes a few round trips) to 5 min.
pub type ConnectTimeout = Millis<1_000, 300_000>;
/// `--stun-timeout`: 500 ms (a browser sends its first check within a round trip of the
/// answer) to 60 s; never longer than the connect timeout.
pub type StunTimeout = Millis<500, 60_000>;

/// Default HTTP (signalling) address.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// Default UDP (media) address; port 0 picks any free port.
pub const DEFAULT_UDP_ADDR: &str = "127.0.0.1:50000";
/// Default sample played to every caller.
pub const DEFAULT_SAMPLE: &str = "assets/sample.wav";
/// Default folder for recordings.
pub const DEFAULT_RECORDINGS: &str = "recordings";
/// Default folder for log files.
pub const DEFAULT_LOGS: &str = "logs";
/// Default outgoing packet time in milliseconds (the Python server's).
pub const DEFAULT_PTIME_MS: u64 = 10;
/// Default jitter buffer depth (the Python server's).
pub const DEFAULT_JITTER_BUFFER: JitterBuffer = Millis::new_const(1000);
/// Default session limit: about a third of what one core carries, far below memory limits.
pub const DEFAULT_MAX_SESSIONS: usize = 1000;
/// How far the recorders may fall behind the event loop before offers are refused.
pub const DEFAULT_MAX_RECORDER_LAG: MaxRecorderLag = Millis::new_const(3000);
/// Default time an ICE disconnection may last before the session is ended.
pub const DEFAULT_DISCONNECT_TIMEOUT: DisconnectTimeout = Millis::new_const(5000);
/// Default time a session may take from answer to connected.
pub const DEFAULT_CONNECT_TIMEOUT: ConnectTimeout = Millis::new_const(15_000);
/// Default time a new session may wait for its first STUN check: a browser sends one
/// within a round trip of the answer, so 5 s is generous and still frees the slot of an
/// offer nobody follows up three times sooner than the connect timeout.
pub const DEFAULT_STUN_TIMEOUT: StunTimeout = Millis::new_const(5000);
/// Default number of sessions not yet connected that one client address may hold: enough
/// for a NAT or an office full of callers dialling at once, few enough that one address
/// cannot fill `--max-sessions` with offers it never follows up.
pub const DEFAULT_MAX_CONNECTING_PER_CLIENT: usize = 20;
/// Default number of log files kept, counting the current start's.
pub const DEFAULT_LOG_MAX_FILES: usize = 10;
/// Default size at which the current log file is rotated: 50 MiB.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 50 << 20;
/// Packet times Opus and browsers agree on.
pub const PTIMES_MS: [u64; 4] = [10, 20, 40, 60];

/// tapedeck: a WebRTC audio daemon. Records every caller to a WAV file and plays one looped
/// sample back to all callers at once.
///
/// Every flag can also come from the environment variable shown, or from the config file
/// (`--config`, keys named as the flags); a flag wins over the environment, which wins over
/// the file.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Without a subcommand, tapedeck runs the daemon.
    #[command(subcommand)]
    pub command: Option<Subcommand>,

    /// TOML file with any of the settings below, keys named as the long flags
    /// (`http-addr = "0.0.0.0:8080"`); flags and environment variables override it.
    #[arg(long, env = "TAPEDECK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address the HTTP signalling server binds (port 0: any free port).
    #[arg(long, env = "TAPEDECK_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,

    /// Address of the one UDP socket that carries all media (port 0: any free port).
    #[arg(long, env = "TAPEDECK_UDP_ADDR", default_value = DEFAULT_UDP_ADDR)]
    pub udp_addr: SocketAddr,

    /// IP address advertised in the ICE candidate; required when --udp-addr is 0.0.0.0 or ::.
    #[arg(long, env = "TAPEDECK_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,

    /// WAV file played in a loop to every caller (any rate 8-384 kHz, 1-8 channels; converted to 48 kHz mono).
    #[arg(long, env = "TAPEDECK_SAMPLE", default_value = DEFAULT_SAMPLE)]
    pub sample: PathBuf,

    /// Folder for recordings, named <session>_<UTC timestamp>.wav (created if missing).
    #[arg(long, env = "TAPEDECK_RECORDINGS", default_value = DEFAULT_RECORDINGS)]
    pub recordings: PathBuf,

    /// Folder for log files, one per start (created if missing).
    #[arg(long, env = "TAPEDECK_LOGS", default_value = DEFAULT_LOGS)]
    pub logs: PathBuf,

    /// Packet time of the outgoing audio in milliseconds: 10, 20, 40 or 60.
    #[arg(long, env = "TAPEDECK_PTIME", default_value_t = DEFAULT_PTIME_MS, value_parser = values::parse_ptime)]
    pub ptime: u64,

    /// Depth of each recording's jitter buffer in milliseconds (20 to 10000).
    #[arg(long, env = "TAPEDECK_JITTER_BUFFER", value_name = "MS", default_value_t = DEFAULT_JITTER_BUFFER)]
    pub jitter_buffer: JitterBuffer,

    /// Most sessions at once; further offers get 503 with Retry-After.
    #[arg(long, env = "TAPEDECK_MAX_SESSIONS",
          default_value_t = NonZeroUsize::new(DEFAULT_MAX_SESSIONS).expect("non-zero constant"))]
    pub max_sessions: NonZeroUsize,

    /// Milliseconds the recorder threads may fall behind the event loop (the cores are
    /// overloaded) before further offers get 503 with Retry-After; admitted calls go on and
    /// keep every packet, but their audio waits in memory until the recorders catch up
    /// (100 to 600000).
    #[arg(long, env = "TAPEDECK_MAX_RECORDER_LAG", value_name = "MS", default_value_t = DEFAULT_MAX_RECORDER_LAG)]
    pub max_recorder_lag: MaxRecorderLag,

    /// Console log level (off, error, warn, info, debug, trace); the log file always gets debug.
    #[arg(long, env = "TAPEDECK_LOG_LEVEL", default_value = "info", value_parser = values::parse_level)]
    pub log_level: log::LevelFilter,

    /// Milliseconds an ICE disconnection may last before the session is ended (a caller that
    /// sends nothing at all is ended after twice this); 1000 to 300000.
    #[arg(long, env = "TAPEDECK_DISCONNECT_TIMEOUT", value_name = "MS", default_value_t = DEFAULT_DISCONNECT_TIMEOUT)]
    pub disconnect_timeout: DisconnectTimeout,

    /// Milliseconds a session may take from the answer to connected before it is dropped
    /// (1000 to 300000).
    #[arg(long, env = "TAPEDECK_CONNECT_TIMEOUT", value_name = "MS", default_value_t = DEFAULT_CONNECT_TIMEOUT)]
    pub connect_timeout: ConnectTimeout,

    /// Milliseconds a new session may wait for its first valid STUN check before it is
    /// ended (500 to 60000, at most --connect-timeout; when only a connect timeout below
    /// this default is given, the stun timeout becomes the connect timeout).
    #[arg(long, env = "TAPEDECK_STUN_TIMEOUT", value_name = "MS", default_value_t = DEFAULT_STUN_TIMEOUT)]
    pub stun_timeout: StunTimeout,

    /// Most sessions not yet connected one client address may hold; further offers from it
    /// get 429 with Retry-After.
    #[arg(long, env = "TAPEDECK_MAX_CONNECTING_PER_CLIENT", value_name = "N",
          default_value_t = NonZeroUsize::new(DEFAULT_MAX_CONNECTING_PER_CLIENT).expect("non-zero constant"))]
    pub max_connecting_per_client: NonZeroUsize,

    /// Reverse proxy whose X-Forwarded-For header is believed for the client address (an
    /// address, or a block like 10.0.0.0/8); repeat the flag for several; the environment
    /// variable takes a comma-separated list. Without it, the client is the TCP peer.
    #[arg(long = "trusted-proxy", env = "TAPEDECK_TRUSTED_PROXIES", value_name = "CIDR", value_delimiter = ',')]
    pub trusted_proxies: Vec<Cidr>,

    /// Number of recorder worker threads (0: one per CPU core).
    #[arg(long, env = "TAPEDECK_RECORDER_THREADS", default_value_t = 0)]
    pub recorder_threads: usize,

    /// Also write, per session, what the recorder was handed (RTP time, sequence number,
    /// payload, arrival time) to DIR/<recording name>.tdcap, for `tapedeck replay`.
    #[arg(long, env = "TAPEDECK_CAPTURE", value_name = "DIR")]
    pub capture: Option<PathBuf>,

    /// Number of HTTP signalling threads.
    #[arg(long, env = "TAPEDECK_HTTP_THREADS", default_value_t = NonZeroUsize::new(2).expect("non-zero constant"))]
    pub http_threads: NonZeroUsize,

    /// Bearer token HTTP clients must present (`Authorization: Bearer TOKEN`); printable
    /// ASCII without spaces. Prefer --token-file: a flag shows in `ps`.
    #[arg(long, env = "TAPEDECK_TOKEN", hide_env_values = true, value_parser = Token::unchecked)]
    pub token: Option<Token>,

    /// File holding the bearer token (read at start; one trailing newline removed), for
    /// example systemd's `%d/token` from LoadCredential=. Not together with --token.
    #[arg(long, env = "TAPEDECK_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Origin allowed to call the HTTP API from a browser (scheme://host[:port], or *);
    /// repeat the flag for several; the environment variable takes a comma-separated list.
    #[arg(long = "cors-origin", env = "TAPEDECK_CORS_ORIGINS", value_name = "ORIGIN",
          value_delimiter = ',', value_parser = values::parse_origin)]
    pub cors_origins: Vec<String>,

    /// Most log files kept in the logs folder, counting this start's: older tapedeck log
    /// files are deleted at start (only ours: tapedeck_<UTC timestamp>.log and its .1).
    #[arg(long, env = "TAPEDECK_LOG_MAX_FILES", value_name = "N",
          default_value_t = NonZeroUsize::new(DEFAULT_LOG_MAX_FILES).expect("non-zero constant"))]
    pub log_max_files: NonZeroUsize,

    /// Size at which this start's log file is renamed to <name>.1 and a new one begun (one
    /// .1 per start: at most twice this per start). Bytes, or with a KiB, MiB or GiB suffix.
    #[arg(long, env = "TAPEDECK_LOG_MAX_BYTES", value_name = "BYTES",
          default_value_t = NonZeroU64::new(DEFAULT_LOG_MAX_BYTES).expect("non-zero constant"),
          value_parser = values::parse_bytes)]
    pub log_max_bytes: NonZeroU64,
}

/// Tools beside the daemon.
#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Rebuild a recording from a capture (made with --capture): byte for byte the WAV the
    /// live recorder wrote from the same packets.
    Replay {
        /// The capture file (.tdcap).
        capture: PathBuf,
        /// Where to write the WAV.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// The daemon's settings, typed and checked. `Debug` is safe to log: the token prints as
/// `<redacted>`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file the settings were read from, if any.
    pub config_file: Option<PathBuf>,
    pub http_addr: SocketAddr,
    pub udp_addr: SocketAddr,
    pub public_ip: Option<IpAddr>,
    pub sample: PathBuf,
    pub recordings: PathBuf,
    pub logs: PathBuf,
    pub ptime: tapedeck_core::media::Ptime,
    pub jitter_buffer: JitterBuffer,
    pub max_sessions: NonZeroUsize,
    /// How far the recorders may fall behind before offers are refused.
    pub max_recorder_lag: MaxRecorderLag,
    pub log_level: log::LevelFilter,
    pub disconnect_timeout: DisconnectTimeout,
    pub connect_timeout: ConnectTimeout,
    /// How long a new session may wait for its first STUN check; never above
    /// `connect_timeout`.
    pub stun_timeout: StunTimeout,
    /// Most sessions not yet connected one client address may hold.
    pub max_connecting_per_client: NonZeroUsize,
    /// Reverse proxies whose `X-Forwarded-For` is believed; empty: the TCP peer is the client.
    pub trusted_proxies: Vec<Cidr>,
    pub recorder_threads: NonZeroUsize,
    pub http_threads: NonZeroUsize,
    pub capture: Option<PathBuf>,
    /// The bearer token HTTP clients must present, if any (from --token or --token-file).
    pub token: Option<Token>,
    /// Origins allowed to call the HTTP API from a browser, as browsers send them
    /// (`https://app.example.com`), or `*`; empty: no cross-origin access.
    pub cors_origins: Vec<String>,
    /// Most log files kept, counting the current start's.
    pub log_max_files: NonZeroUsize,
    /// Size at which the current log file is rotated (one rotated file per start).
    pub log_max_bytes: NonZeroU64,
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Args(#[from] clap::Error),
    #[error("config file {path}: {source}")]
    File { path: PathBuf, source: FileError },
    #[error("--public-ip is required when --udp-addr binds the unspecified address {0}")]
    PublicIpRequired(IpAddr),
    #[error("--public-ip {0} cannot be the unspecified address")]
    PublicIpUnspecified(IpAddr),
    #[error("the token is given twice, by {0} and by {1}: give either a token or a token file")]
    TokenTwice(String, String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(
        "{stun} ({stun_ms} ms) is longer than {connect} ({connect_ms} ms): a session not connected by the \
         connect timeout is dropped anyway; give a stun timeout no longer than the connect timeout"
    )]
    StunAfterConnect { stun: String, stun_ms: u64, connect: String, connect_ms: u64 },
}

impl Config {
    /// Parses these arguments (the first is the program name) and the environment, reads the
    /// config file they name, and builds the configuration.
    pub fn try_from_args<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Config::from_matches(&Cli::command().try_get_matches_from(args)?)
    }

    /// Builds the configuration from parsed arguments: what the command line or the
    /// environment gave wins, then the config file (read here), then the built-in defaults.
    pub fn from_matches(matches: &ArgMatches) -> Result<Config, ConfigError> {
        let cli = Cli::from_arg_matches(matches)?;
        let file = match &cli.config {
            Some(path) => {
                FileSettings::load(path).map_err(|source| ConfigError::File { path: path.clone(), source })?
            }
            None => FileSettings::default(),
        };
        Config::merge(cli, file, |id| Place::of(matches.value_source(id)))
    }

    /// Merges the layers; `place(id)` says where the flag with clap id `id` got its value.
    fn merge(cli: Cli, file: FileSettings, place: impl Fn(&str) -> Place) -> Result<Config, ConfigError> {
        let given = |id: &str| place(id) > Place::File;
        let token = token(&cli, &file, &place)?;
        let udp_addr = pick(given("udp_addr"), cli.udp_addr, file.udp_addr);
        let public_ip = cli.public_ip.or(file.public_ip);
        match public_ip {
            Some(p) if p.is_unspecified() => return Err(ConfigError::PublicIpUnspecified(p)),
            None if udp_addr.ip().is_unspecified() => return Err(ConfigError::PublicIpRequired(udp_addr.ip())),
            _ => {}
        }
        let recorder_threads = pick(given("recorder_threads"), cli.recorder_threads, file.recorder_threads);
        let cores = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        let connect_place = layer(&place, "connect_timeout", file.connect_timeout.is_some());
        let connect_timeout = pick(given("connect_timeout"), cli.connect_timeout, file.connect_timeout);
        let stun_place = layer(&place, "stun_timeout", file.stun_timeout.is_some());
        let stun_timeout = pick(given("stun_timeout"), cli.stun_timeout, file.stun_timeout);
        let config = cli.config.as_deref();
        let stun_timeout = stun_within_connect((stun_timeout, stun_place), (connect_timeout, connect_place), config)?;
        Ok(Config {
            config_file: cli.config,
            http_addr: pick(given("http_addr"), cli.http_addr, file.http_addr),
            udp_addr,
            public_ip,
            sample: pick(given("sample"), cli.sample, file.sample),
            recordings: pick(given("recordings"), cli.recordings, file.recordings),
            logs: pick(given("logs"), cli.logs, file.logs),
            ptime: tapedeck_core::media::Ptime::from_millis(pick(given("ptime"), cli.ptime, file.ptime))
                .expect("checked by values::check_ptime"),
            jitter_buffer: pick(given("jitter_buffer"), cli.jitter_buffer, file.jitter_buffer),
            max_sessions: pick(given("max_sessions"), cli.max_sessions, file.max_sessions),
            max_recorder_lag: pick(given("max_recorder_lag"), cli.max_recorder_lag, file.max_recorder_lag),
            log_level: pick(given("log_level"), cli.log_level, file.log_level),
            disconnect_timeout: pick(given("disconnect_timeout"), cli.disconnect_timeout, file.disconnect_timeout),
            connect_timeout,
            stun_timeout,
            max_connecting_per_client: pick(
                given("max_connecting_per_client"),
                cli.max_connecting_per_client,
                file.max_connecting_per_client,
            ),
            trusted_proxies: pick(given("trusted_proxies"), cli.trusted_proxies, file.trusted_proxies),
            recorder_threads: NonZeroUsize::new(recorder_threads).unwrap_or(cores),
            http_threads: pick(given("http_threads"), cli.http_threads, file.http_threads),
            capture: cli.capture.or(file.capture),
            token,
            cors_origins: pick(given("cors_origins"), cli.cors_origins, file.cors_origins),
            log_max_files: pick(given("log_max_files"), cli.log_max_files, file.log_max_files),
            log_max_bytes: pick(given("log_max_bytes"), cli.log_max_bytes, file.log_max_bytes),
        })
    }
}

/// Where a value came from, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Default,
    File,
    Environment,
    CommandLine,
}

impl Place {
    fn of(source: Option<ValueSource>) -> Place {
        match source {
            Some(ValueSource::CommandLine) => Place::CommandLine,
            Some(ValueSource::EnvVariable) => Place::Environment,
            _ => Place::Default,
        }
    }

    /// Names the flag, variable or key that gave a value, for error messages.
    fn describe(self, flag: &str, file: Option<&Path>) -> String {
        match self {
            Place::CommandLine => format!("--{flag}"),
            Place::Environment => format!("TAPEDECK_{}", flag.replace('-', "_").to_uppercase()),
            Place::File => {
                format!("`{flag}` in {}", file.map_or("the config file".into(), |f| f.display().to_string()))
            }
            Place::Default => "the default".to_owned(),
        }
    }
}

/// The flag's value if the command line or the environment gave it, else the file's, else the
/// flag's (which then is clap's default, the built-in one).
fn pick<T>(given: bool, flag: T, file: Option<T>) -> T {
    match file {
        Some(f) if !given => f,
        _ => flag,
    }
}

/// Where the value of the flag with clap id `id` came from, given whether the file has it.
fn layer(place: &impl Fn(&str) -> Place, id: &str, in_file: bool) -> Place {
    match place(id) {
        Place::Default if in_file => Place::File,
        p => p,
    }
}

/// The stun timeout, checked against the connect timeout (a session is dropped at the
/// connect timeout whatever the stun timeout says). One given longer than the connect
/// timeout is an error; the default stun timeout is lowered to a connect timeout given
/// below it, so that setting only `--connect-timeout 3000` (valid before the stun timeout
/// existed) still starts.
fn stun_within_connect(
    (stun, stun_place): (StunTimeout, Place),
    (connect, connect_place): (ConnectTimeout, Place),
    config: Option<&Path>,
) -> Result<StunTimeout, ConfigError> {
    if stun.as_millis() <= connect.as_millis() {
        return Ok(stun);
    }
    if stun_place == Place::Default {
        // In range: connect < stun <= the stun maximum, and connect >= the connect minimum,
        // which is at least the stun minimum (checked at compile time below).
        const _: () = assert!(ConnectTimeout::MIN_MS >= StunTimeout::MIN_MS);
        return Ok(StunTimeout::new(connect.as_millis()).expect("a connect timeout below a stun timeout is one"));
    }
    Err(ConfigError::StunAfterConnect {
        stun: stun_place.describe("stun-timeout", config),
        stun_ms: stun.as_millis(),
        connect: match connect_place {
            Place::Default => "the default --connect-timeout".to_owned(),
            p => p.describe("connect-timeout", config),
        },
        connect_ms: connect.as_millis(),
    })
}

/// The token from --token or --token-file, whichever layer gave it; both at once is an error,
/// since it is unclear which one the operator meant to use.
fn token(cli: &Cli, file: &FileSettings, place: &impl Fn(&str) -> Place) -> Result<Option<Token>, ConfigError> {
    let config = cli.config.as_deref();
    let token = match (&cli.token, &file.token) {
        (Some(t), _) => Some((t, place("token"))),
        (None, f) => f.as_ref().map(|t| (t, Place::File)),
    };
    let token_file = match (&cli.token_file, &file.token_file) {
        (Some(p), _) => Some((p, place("token_file"))),
        (None, f) => f.as_ref().map(|p| (p, Place::File)),
    };
    match (token, token_file) {
        (Some((_, a)), Some((_, b))) => {
            Err(ConfigError::TokenTwice(a.describe("token", config), b.describe("token-file", config)))
        }
        (Some((t, p)), None) => Ok(Some(t.clone().check(&p.describe("token", config))?)),
        (None, Some((path, _))) => Ok(Some(Token::read(path)?)),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests;
