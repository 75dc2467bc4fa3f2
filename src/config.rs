//! Command line, environment, config file, and the typed configuration they become.
//!
//! Every setting has a long flag (a contract that scripts rely on, see DESIGN.md), an
//! environment variable `TAPEDECK_<FLAG_IN_UPPER_SNAKE>`, and a key of the same name in the
//! TOML file named by `--config` ([`file`]). Precedence: command line > environment > config
//! file > built-in default. They are parsed once, at start, into [`Config`], whose fields
//! carry types (`SocketAddr`, [`Millis`], `NonZero*`, [`Cidr`]) rather than strings: a value
//! out of its range is refused where it is read, with a message naming the setting.
//!
//! Each setting is declared once, as a row of the table below (the `settings!` macro of
//! `config/table.rs`): its doc comment (the `--help` text), clap's `#[arg]` (flag,
//! environment variable, default, value parser), its type, its config file key and the
//! parser of the key's TOML value. From the rows come [`Flags`] (flattened into [`Cli`]),
//! [`file::KEYS`], [`FileSettings`], the precedence and [`Config`]. Adding a setting is a
//! row here (with its `DEFAULT_*` constant), its rows in README.md's tables and its line in
//! `deploy/tapedeck.toml` (tests check both). The rules between settings (`--public-ip` with
//! `--udp-addr`, the stun timeout within the connect timeout, `--token` or `--token-file`)
//! are in `config/rules.rs`.

mod cidr;
pub mod file;
mod millis;
pub mod name_template;
mod rules;
mod s3_url;
mod table;
mod token;
mod values;

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

pub use cidr::{Cidr, CidrError};
pub use file::FileError;
pub use millis::Millis;
pub use name_template::NameTemplate;
pub use s3_url::S3Url;
use table::Place;
use tapedeck_core::media::recording::Format;
use tapedeck_core::media::Ptime;
pub use token::{Token, TokenError};

/// `--jitter-buffer`: 20 ms (one packet) to 10 s.
pub type JitterBuffer = Millis<20, 10_000>;
/// `--max-recorder-lag`: 100 ms (a scheduling hiccup is not overload) to 10 min.
pub type MaxRecorderLag = Millis<100, 600_000>;
/// `--disconnect-timeout`: 1 s (below that, a lost packet or two would end calls) to 5 min.
pub type DisconnectTimeout = Millis<1_000, 300_000>;
/// `--connect-timeout`: 1 s (a handshake takes a few round trips) to 5 min.
pub type ConnectTimeout = Millis<1_000, 300_000>;
/// `--max-call-duration`: 1 s to a week.
pub type MaxCallDuration = Millis<1_000, 604_800_000>;
/// `--segment-duration`: 1 s to a day.
pub type SegmentDuration = Millis<1_000, 86_400_000>;
/// `--drain-timeout`: 0 (end calls at once) to a day.
pub type DrainTimeout = Millis<0, 86_400_000>;
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
/// Default time calls may go on after SIGTERM or `POST /drain`: long enough for most calls
/// to end by themselves, short enough to fit Kubernetes' default 30 s grace period (and
/// deploy/tapedeck.service's 45 s stop timeout) with time left to finalize the recordings.
pub const DEFAULT_DRAIN_TIMEOUT: DrainTimeout = Millis::new_const(25_000);
/// Default number of log files kept, counting the current start's.
pub const DEFAULT_LOG_MAX_FILES: usize = 10;
/// Default size at which the current log file is rotated: 50 MiB.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 50 << 20;
/// Region of the object storage when neither --upload-region nor AWS_REGION gives one.
pub const DEFAULT_UPLOAD_REGION: &str = "us-east-1";
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

    // The settings, from the table below.
    #[command(flatten)]
    pub flags: Flags,
}

// The table of settings: one row each, in the order of `--help` (see `table::settings!`).
table::settings! {
    /// Address the HTTP signalling server binds (port 0: any free port).
    #[arg(long, env = "TAPEDECK_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    http_addr: SocketAddr, file "http-addr" => file::typed;

    /// Address of the first event loop's UDP socket; loop K binds the port + K (port 0: any
    /// free ports).
    #[arg(long, env = "TAPEDECK_UDP_ADDR", default_value = DEFAULT_UDP_ADDR)]
    udp_addr: SocketAddr, file "udp-addr" => file::typed;

    /// Event-loop threads, each with its own UDP socket and its own calls (0: one per CPU
    /// core). N loops bind N consecutive ports from --udp-addr's port (N free ports with port 0).
    #[arg(long, env = "TAPEDECK_LOOPS", value_name = "N", default_value_t = 0)]
    loops: usize, file "loops" => file::typed, into NonZeroUsize => values::threads_or_cores;

    /// IP address advertised in the ICE candidate; required when --udp-addr is 0.0.0.0 or ::.
    #[arg(long, env = "TAPEDECK_PUBLIC_IP")]
    public_ip: Option<IpAddr>, file "public-ip" => file::typed;

    /// This daemon's name among several behind one load balancer (1 to 64 letters, digits,
    /// '-', '_' or '.'): the session URLs it hands out begin `/n/NODE-ID/`, so a proxy can
    /// send a session's requests to the daemon that holds it. It serves those paths and the
    /// plain ones.
    #[arg(long, env = "TAPEDECK_NODE_ID", value_parser = values::parse_node_id)]
    node_id: Option<String>, file "node-id" => file::node_id;

    /// The URL clients reach the HTTP API at (`scheme://host[:port][/path]`, for example the
    /// load balancer's); session URLs handed out (WHIP's Location) are absolute, under it.
    #[arg(long, env = "TAPEDECK_PUBLIC_URL", value_name = "URL", value_parser = values::parse_public_url)]
    public_url: Option<String>, file "public-url" => file::public_url;

    /// WAV file played in a loop to every caller (any rate 8-384 kHz, 1-8 channels; converted to 48 kHz mono).
    #[arg(long, env = "TAPEDECK_SAMPLE", default_value = DEFAULT_SAMPLE)]
    sample: PathBuf, file "sample" => file::typed;

    /// Folder for recordings (created if missing); files are named by --name-template.
    #[arg(long, env = "TAPEDECK_RECORDINGS", default_value = DEFAULT_RECORDINGS)]
    recordings: PathBuf, file "recordings" => file::typed;

    /// How recordings are named (the extension is added): text of letters, digits, '-', '_'
    /// and '.', and the placeholders {session} (required), {start} (UTC, 20261130T004847Z),
    /// {date} (2026-11-30), {node} (--node-id) and {label} (the caller's `?label=` on the
    /// offer's URL, letters, digits, '-', '_' and '.' kept, at most 64); `-` for a missing one.
    #[arg(long, env = "TAPEDECK_NAME_TEMPLATE", value_name = "TEMPLATE",
          default_value = name_template::DEFAULT_NAME_TEMPLATE)]
    name_template: NameTemplate, file "name-template" => file::parsed;

    /// What each call is recorded to: `wav` (16-bit mono 48 kHz, decoded), `ogg` (Ogg/Opus
    /// from the packets as received, no decoding: the cheapest) or `both` (on one timeline).
    #[arg(long, env = "TAPEDECK_FORMAT", value_name = "FORMAT", default_value = "wav")]
    format: Format, file "format" => file::parsed;

    /// Milliseconds of audio per file: a recording is cut into files of this length
    /// (`<name>.wav`, then `<name>-002.wav`, ...; up to 200 ms longer, the cut falls between
    /// two writes), without losing a sample between them (1000 to 86400000; default: one
    /// file per call).
    #[arg(long, env = "TAPEDECK_SEGMENT_DURATION", value_name = "MS")]
    segment_duration: Option<SegmentDuration>, file "segment-duration" => file::millis;

    /// Folder for log files, one per start (created if missing).
    #[arg(long, env = "TAPEDECK_LOGS", default_value = DEFAULT_LOGS)]
    logs: PathBuf, file "logs" => file::typed;

    /// Milliseconds calls may go on after SIGTERM or POST /drain: offers are refused (503)
    /// and /healthz says "draining" at once; calls that have not ended by then are ended and
    /// their recordings finalized, then the daemon exits (0 to 86400000; SIGINT, or a second
    /// SIGTERM, ends calls at once).
    #[arg(long, env = "TAPEDECK_DRAIN_TIMEOUT", value_name = "MS", default_value_t = DEFAULT_DRAIN_TIMEOUT)]
    drain_timeout: DrainTimeout, file "drain-timeout" => file::millis;

    /// Packet time of the outgoing audio in milliseconds: 10, 20, 40 or 60.
    #[arg(long, env = "TAPEDECK_PTIME", default_value_t = DEFAULT_PTIME_MS, value_parser = values::parse_ptime)]
    ptime: u64, file "ptime" => file::ptime, into Ptime => values::to_ptime;

    /// Depth of each recording's jitter buffer in milliseconds (20 to 10000).
    #[arg(long, env = "TAPEDECK_JITTER_BUFFER", value_name = "MS", default_value_t = DEFAULT_JITTER_BUFFER)]
    jitter_buffer: JitterBuffer, file "jitter-buffer" => file::millis;

    /// Most sessions at once; further offers get 503 with Retry-After.
    #[arg(long, env = "TAPEDECK_MAX_SESSIONS",
          default_value_t = NonZeroUsize::new(DEFAULT_MAX_SESSIONS).expect("non-zero constant"))]
    max_sessions: NonZeroUsize, file "max-sessions" => file::typed;

    /// Milliseconds the recorder threads may fall behind the event loop (the cores are
    /// overloaded) before further offers get 503 with Retry-After; admitted calls go on and
    /// keep every packet, but their audio waits in memory until the recorders catch up
    /// (100 to 600000).
    #[arg(long, env = "TAPEDECK_MAX_RECORDER_LAG", value_name = "MS", default_value_t = DEFAULT_MAX_RECORDER_LAG)]
    max_recorder_lag: MaxRecorderLag, file "max-recorder-lag" => file::millis;

    /// Console log level (off, error, warn, info, debug, trace); the log file always gets debug.
    #[arg(long, env = "TAPEDECK_LOG_LEVEL", default_value = "info", value_parser = values::parse_level)]
    log_level: log::LevelFilter, file "log-level" => file::level;

    /// Milliseconds an ICE disconnection may last before the session is ended (a caller that
    /// sends nothing at all is ended after twice this); 1000 to 300000.
    #[arg(long, env = "TAPEDECK_DISCONNECT_TIMEOUT", value_name = "MS", default_value_t = DEFAULT_DISCONNECT_TIMEOUT)]
    disconnect_timeout: DisconnectTimeout, file "disconnect-timeout" => file::millis;

    /// Milliseconds a call may last once connected: then it is ended (the caller is told,
    /// by DTLS close) and its recording finalized (1000 to 604800000; default: no limit).
    #[arg(long, env = "TAPEDECK_MAX_CALL_DURATION", value_name = "MS")]
    max_call_duration: Option<MaxCallDuration>, file "max-call-duration" => file::millis;

    /// Milliseconds a session may take from the answer to connected before it is dropped
    /// (1000 to 300000).
    #[arg(long, env = "TAPEDECK_CONNECT_TIMEOUT", value_name = "MS", default_value_t = DEFAULT_CONNECT_TIMEOUT)]
    connect_timeout: ConnectTimeout, file "connect-timeout" => file::millis;

    /// Milliseconds a new session may wait for its first valid STUN check before it is
    /// ended (500 to 60000, at most --connect-timeout; when only a connect timeout below
    /// this default is given, the stun timeout becomes the connect timeout).
    #[arg(long, env = "TAPEDECK_STUN_TIMEOUT", value_name = "MS", default_value_t = DEFAULT_STUN_TIMEOUT)]
    stun_timeout: StunTimeout, file "stun-timeout" => file::millis;

    /// Most sessions not yet connected one client address may hold in each event loop;
    /// further offers from it get 429 with Retry-After.
    #[arg(long, env = "TAPEDECK_MAX_CONNECTING_PER_CLIENT", value_name = "N",
          default_value_t = NonZeroUsize::new(DEFAULT_MAX_CONNECTING_PER_CLIENT).expect("non-zero constant"))]
    max_connecting_per_client: NonZeroUsize, file "max-connecting-per-client" => file::typed;

    /// Reverse proxy whose X-Forwarded-For header is believed for the client address (an
    /// address, or a block like 10.0.0.0/8); repeat the flag for several; the environment
    /// variable takes a comma-separated list. Without it, the client is the TCP peer.
    #[arg(long = "trusted-proxy", env = "TAPEDECK_TRUSTED_PROXIES", value_name = "CIDR", value_delimiter = ',')]
    trusted_proxies: Vec<Cidr>, file "trusted-proxies" => file::cidrs;

    /// Number of recorder worker threads (0: one per CPU core).
    #[arg(long, env = "TAPEDECK_RECORDER_THREADS", default_value_t = 0)]
    recorder_threads: usize, file "recorder-threads" => file::typed, into NonZeroUsize => values::threads_or_cores;

    /// Also write, per session, what the recorder was handed (RTP time, sequence number,
    /// payload, arrival time) to DIR/<recording name>.tdcap, for `tapedeck replay`.
    #[arg(long, env = "TAPEDECK_CAPTURE", value_name = "DIR")]
    capture: Option<PathBuf>, file "capture" => file::typed;

    /// Number of HTTP signalling threads.
    #[arg(long, env = "TAPEDECK_HTTP_THREADS", default_value_t = NonZeroUsize::new(2).expect("non-zero constant"))]
    http_threads: NonZeroUsize, file "http-threads" => file::typed;

    /// Bearer token HTTP clients must present (`Authorization: Bearer TOKEN`); printable
    /// ASCII without spaces. Prefer --token-file: a flag shows in `ps`.
    #[arg(long, env = "TAPEDECK_TOKEN", hide_env_values = true, value_parser = Token::unchecked)]
    token: Option<Token>, file "token" => file::token;

    /// File holding the bearer token (read at start; one trailing newline removed), for
    /// example systemd's `%d/token` from LoadCredential=. Not together with --token.
    #[arg(long, env = "TAPEDECK_TOKEN_FILE", value_name = "PATH")]
    token_file: Option<PathBuf>, file "token-file" => file::typed;

    /// Origin allowed to call the HTTP API from a browser (scheme://host[:port], or *);
    /// repeat the flag for several; the environment variable takes a comma-separated list.
    #[arg(long = "cors-origin", env = "TAPEDECK_CORS_ORIGINS", value_name = "ORIGIN",
          value_delimiter = ',', value_parser = values::parse_origin)]
    cors_origins: Vec<String>, file "cors-origins" => file::origins;

    /// URL (http or https) that gets a signed POST (Standard Webhooks) for every
    /// call.started, call.ended and recording.finished; repeat the flag for several; the
    /// environment variable takes a comma-separated list. Needs --webhook-secret.
    #[arg(long = "webhook", env = "TAPEDECK_WEBHOOKS", value_name = "URL", value_delimiter = ',',
          value_parser = values::parse_webhook_url)]
    webhooks: Vec<String>, file "webhooks" => file::webhook_urls;

    /// Secret the webhooks are signed with: `whsec_` and base64 (the Standard Webhooks form;
    /// the key is the decoded bytes), or any other printable ASCII without spaces (the key
    /// is the text itself).
    #[arg(long, env = "TAPEDECK_WEBHOOK_SECRET", hide_env_values = true, value_parser = Token::unchecked)]
    webhook_secret: Option<Token>, file "webhook-secret" => file::token;

    /// Most log files kept in the logs folder, counting this start's: older tapedeck log
    /// files are deleted at start (only ours: tapedeck_<UTC timestamp>.log and its .1).
    #[arg(long, env = "TAPEDECK_LOG_MAX_FILES", value_name = "N",
          default_value_t = NonZeroUsize::new(DEFAULT_LOG_MAX_FILES).expect("non-zero constant"))]
    log_max_files: NonZeroUsize, file "log-max-files" => file::typed;

    /// Size at which this start's log file is renamed to <name>.1 and a new one begun (one
    /// .1 per start: at most twice this per start). Bytes, or with a KiB, MiB or GiB suffix.
    #[arg(long, env = "TAPEDECK_LOG_MAX_BYTES", value_name = "BYTES",
          default_value_t = NonZeroU64::new(DEFAULT_LOG_MAX_BYTES).expect("non-zero constant"),
          value_parser = values::parse_bytes)]
    log_max_bytes: NonZeroU64, file "log-max-bytes" => file::bytes;
    /// Object storage each finished recording is uploaded to, as s3://BUCKET[/PREFIX] (the
    /// object key is PREFIX/<file name>); the local file is deleted once the upload is
    /// confirmed (see --keep-local), and recording.finished is sent after it. Default: none.
    #[arg(long, env = "TAPEDECK_UPLOAD", value_name = "S3_URL", value_parser = S3Url::parse)]
    upload: Option<S3Url>, file "upload" => file::s3_url;

    /// S3-compatible endpoint (http or https URL) for --upload, addressed path-style
    /// (ENDPOINT/BUCKET/KEY); default: AWS_ENDPOINT_URL, else AWS S3 of the region.
    #[arg(long, env = "TAPEDECK_UPLOAD_ENDPOINT", value_name = "URL", value_parser = values::parse_endpoint)]
    upload_endpoint: Option<String>, file "upload-endpoint" => file::endpoint;

    /// Region the uploads are signed for; default: AWS_REGION, else us-east-1.
    #[arg(long, env = "TAPEDECK_UPLOAD_REGION", value_name = "REGION", value_parser = values::parse_region)]
    upload_region: Option<String>, file "upload-region" => file::region;

    /// Access key id for --upload; default: AWS_ACCESS_KEY_ID. Prefer the config file or the
    /// environment: a flag shows in `ps`.
    #[arg(long, env = "TAPEDECK_UPLOAD_ACCESS_KEY_ID", value_name = "ID", hide_env_values = true,
          value_parser = Token::unchecked)]
    upload_access_key_id: Option<Token>, file "upload-access-key-id" => file::token;

    /// Secret access key for --upload; default: AWS_SECRET_ACCESS_KEY. Prefer the config file
    /// or the environment: a flag shows in `ps`.
    #[arg(long, env = "TAPEDECK_UPLOAD_SECRET_ACCESS_KEY", value_name = "SECRET", hide_env_values = true,
          value_parser = Token::unchecked)]
    upload_secret_access_key: Option<Token>, file "upload-secret-access-key" => file::token;

    /// With --upload, keep each recording on disk after its upload is confirmed (`--keep-local`,
    /// or `--keep-local false`).
    #[arg(long, env = "TAPEDECK_KEEP_LOCAL", value_name = "BOOL", action = clap::ArgAction::Set,
          num_args = 0..=1, default_value_t = false, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    keep_local: bool, file "keep-local" => file::typed;
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
    #[error("--webhook needs --webhook-secret: receivers verify every event's signature")]
    WebhookSecretRequired,
    #[error("{0} is given without {1}: give both, or neither (the uploads are then unsigned)")]
    UploadCredentialHalf(String, String),
    #[error("AWS_ENDPOINT_URL: {0}")]
    AwsEndpoint(String),
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
        let mut settings = Layered::new(cli.flags, file, |id| Place::of(matches.value_source(id)));
        settings.check(cli.config.as_deref())?;
        Ok(settings.finish(cli.config))
    }
}

#[cfg(test)]
mod tests;
