//! Command line and the typed configuration it becomes.
//!
//! The flags are a contract that scripts rely on (see DESIGN.md); they are parsed once, at
//! start, into [`Config`], whose fields carry types (`SocketAddr`, `Duration`, `NonZero*`)
//! rather than strings.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

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
/// Default jitter buffer depth in milliseconds (the Python server's).
pub const DEFAULT_JITTER_MS: u64 = 1000;
/// Default session limit: about a third of what one core carries, far below memory limits.
pub const DEFAULT_MAX_SESSIONS: usize = 1000;
/// Default time an ICE disconnection may last before the session is ended.
pub const DEFAULT_DISCONNECT_TIMEOUT_MS: u64 = 5000;
/// Default time a session may take from answer to connected.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 15_000;
/// Packet times Opus and browsers agree on.
pub const PTIMES_MS: [u64; 4] = [10, 20, 40, 60];

/// tapedeck: a WebRTC audio daemon. Records every caller to a WAV file and plays one looped
/// sample back to all callers at once.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Without a subcommand, tapedeck runs the daemon.
    #[command(subcommand)]
    pub command: Option<Subcommand>,

    /// Address the HTTP signalling server binds (port 0: any free port).
    #[arg(long, default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,

    /// Address of the one UDP socket that carries all media (port 0: any free port).
    #[arg(long, default_value = DEFAULT_UDP_ADDR)]
    pub udp_addr: SocketAddr,

    /// IP address advertised in the ICE candidate; required when --udp-addr is 0.0.0.0 or ::.
    #[arg(long)]
    pub public_ip: Option<IpAddr>,

    /// WAV file played in a loop to every caller (any rate 8-384 kHz, 1-8 channels; converted to 48 kHz mono).
    #[arg(long, default_value = DEFAULT_SAMPLE)]
    pub sample: PathBuf,

    /// Folder for recordings, named <session>_<UTC timestamp>.wav (created if missing).
    #[arg(long, default_value = DEFAULT_RECORDINGS)]
    pub recordings: PathBuf,

    /// Folder for log files, one per start (created if missing).
    #[arg(long, default_value = DEFAULT_LOGS)]
    pub logs: PathBuf,

    /// Packet time of the outgoing audio in milliseconds: 10, 20, 40 or 60.
    #[arg(long, default_value_t = DEFAULT_PTIME_MS, value_parser = parse_ptime)]
    pub ptime: u64,

    /// Depth of each recording's jitter buffer in milliseconds.
    #[arg(long, default_value_t = DEFAULT_JITTER_MS, value_parser = clap::value_parser!(u64).range(20..=10_000))]
    pub jitter_buffer: u64,

    /// Most sessions at once; further offers get 503 with Retry-After.
    #[arg(long, default_value_t = NonZeroUsize::new(DEFAULT_MAX_SESSIONS).expect("non-zero constant"))]
    pub max_sessions: NonZeroUsize,

    /// Console log level (off, error, warn, info, debug, trace); the log file always gets debug.
    #[arg(long, default_value = "info")]
    pub log_level: log::LevelFilter,

    /// Milliseconds an ICE disconnection may last before the session is ended (a caller that
    /// sends nothing at all is ended after twice this).
    #[arg(long, default_value_t = DEFAULT_DISCONNECT_TIMEOUT_MS)]
    pub disconnect_timeout: u64,

    /// Milliseconds a session may take from the answer to connected before it is dropped.
    #[arg(long, default_value_t = DEFAULT_CONNECT_TIMEOUT_MS)]
    pub connect_timeout: u64,

    /// Number of recorder worker threads (0: one per CPU core).
    #[arg(long, default_value_t = 0)]
    pub recorder_threads: usize,

    /// Also write, per session, what the recorder was handed (RTP time, sequence number,
    /// payload, arrival time) to DIR/<recording name>.tdcap, for `tapedeck replay`.
    #[arg(long, value_name = "DIR")]
    pub capture: Option<PathBuf>,

    /// Number of HTTP signalling threads.
    #[arg(long, default_value_t = NonZeroUsize::new(2).expect("non-zero constant"))]
    pub http_threads: NonZeroUsize,
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

fn parse_ptime(s: &str) -> Result<u64, String> {
    let v: u64 = s.parse().map_err(|e| format!("{e}"))?;
    if PTIMES_MS.contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be one of {PTIMES_MS:?}"))
    }
}

/// The daemon's settings, typed and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub udp_addr: SocketAddr,
    pub public_ip: Option<IpAddr>,
    pub sample: PathBuf,
    pub recordings: PathBuf,
    pub logs: PathBuf,
    pub ptime: Duration,
    pub jitter_buffer: Duration,
    pub max_sessions: NonZeroUsize,
    pub log_level: log::LevelFilter,
    pub disconnect_timeout: Duration,
    pub connect_timeout: Duration,
    pub recorder_threads: NonZeroUsize,
    pub http_threads: NonZeroUsize,
    pub capture: Option<PathBuf>,
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--public-ip is required when --udp-addr binds the unspecified address {0}")]
    PublicIpRequired(IpAddr),
    #[error("--public-ip {0} cannot be the unspecified address")]
    PublicIpUnspecified(IpAddr),
}

impl TryFrom<Cli> for Config {
    type Error = ConfigError;

    fn try_from(cli: Cli) -> Result<Self, ConfigError> {
        let ip = cli.udp_addr.ip();
        match cli.public_ip {
            Some(p) if p.is_unspecified() => return Err(ConfigError::PublicIpUnspecified(p)),
            None if ip.is_unspecified() => return Err(ConfigError::PublicIpRequired(ip)),
            _ => {}
        }
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let recorder_threads =
            NonZeroUsize::new(cli.recorder_threads).unwrap_or(NonZeroUsize::new(cores).unwrap_or(NonZeroUsize::MIN));
        Ok(Config {
            http_addr: cli.http_addr,
            udp_addr: cli.udp_addr,
            public_ip: cli.public_ip,
            sample: cli.sample,
            recordings: cli.recordings,
            logs: cli.logs,
            ptime: Duration::from_millis(cli.ptime),
            jitter_buffer: Duration::from_millis(cli.jitter_buffer),
            max_sessions: cli.max_sessions,
            log_level: cli.log_level,
            disconnect_timeout: Duration::from_millis(cli.disconnect_timeout),
            connect_timeout: Duration::from_millis(cli.connect_timeout),
            recorder_threads,
            http_threads: cli.http_threads,
            capture: cli.capture,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let cli =
            Cli::try_parse_from(std::iter::once("tapedeck").chain(args.iter().copied())).map_err(|e| e.to_string())?;
        Config::try_from(cli).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_match_the_design() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.udp_addr.to_string(), "127.0.0.1:50000");
        assert_eq!(c.ptime, Duration::from_millis(10));
        assert_eq!(c.jitter_buffer, Duration::from_millis(1000));
        assert_eq!(c.sample, PathBuf::from("assets/sample.wav"));
        assert_eq!(c.log_level, log::LevelFilter::Info);
    }

    #[test]
    fn odd_ptime_is_refused() {
        assert!(parse(&["--ptime", "15"]).is_err());
        assert_eq!(parse(&["--ptime", "20"]).unwrap().ptime.as_millis(), 20);
    }

    #[test]
    fn unspecified_udp_needs_public_ip() {
        let e = parse(&["--udp-addr", "0.0.0.0:0"]).unwrap_err();
        assert!(e.contains("--public-ip"), "{e}");
        assert!(parse(&["--udp-addr", "0.0.0.0:0", "--public-ip", "10.1.2.3"]).is_ok());
    }

    #[test]
    fn replay_is_a_subcommand() {
        let cli = Cli::try_parse_from(["tapedeck", "replay", "a.tdcap", "-o", "b.wav"]).unwrap();
        assert!(matches!(cli.command, Some(Subcommand::Replay { .. })));
        assert!(Cli::try_parse_from(["tapedeck", "--ptime", "20", "replay", "a", "-o", "b"]).is_err());
    }
}
