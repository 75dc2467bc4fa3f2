use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::*;

/// Tests that parse arguments read the process environment: they hold this lock, so a test
/// that sets a `TAPEDECK_*` variable does not leak it into another.
static ENV: Mutex<()> = Mutex::new(());

fn env_lock() -> MutexGuard<'static, ()> {
    ENV.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets an environment variable until dropped (hold [`env_lock`] meanwhile).
struct EnvVar(String);

impl EnvVar {
    fn set(name: &str, value: &str) -> EnvVar {
        std::env::set_var(name, value);
        EnvVar(name.to_owned())
    }
}

impl Drop for EnvVar {
    fn drop(&mut self) {
        std::env::remove_var(&self.0);
    }
}

fn parse_locked(args: &[&str]) -> Result<Config, String> {
    Config::try_from_args(std::iter::once("tapedeck").chain(args.iter().copied())).map_err(|e| e.to_string())
}

fn parse(args: &[&str]) -> Result<Config, String> {
    let _env = env_lock();
    parse_locked(args)
}

/// A config file with this text, and its path as a string.
fn config_file(text: &str) -> (tempfile::NamedTempFile, String) {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let path = f.path().to_str().unwrap().to_owned();
    (f, path)
}

#[test]
fn defaults_match_the_design() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.udp_addr.to_string(), "127.0.0.1:50000");
    assert_eq!(c.ptime, tapedeck_core::media::Ptime::Ms10);
    assert_eq!(c.jitter_buffer.get(), Duration::from_millis(1000));
    assert_eq!(c.sample, PathBuf::from("assets/sample.wav"));
    assert_eq!(c.log_level, log::LevelFilter::Info);
    assert!(c.token.is_none() && c.cors_origins.is_empty() && c.config_file.is_none());
    assert_eq!((c.log_max_files.get(), c.log_max_bytes.get()), (10, 50 * 1024 * 1024));
}

#[test]
fn duration_defaults_are_unchanged() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.disconnect_timeout.get(), Duration::from_secs(5));
    assert_eq!(c.connect_timeout.get(), Duration::from_secs(15));
    assert_eq!(c.max_recorder_lag.get(), Duration::from_secs(3));
    assert_eq!(c.stun_timeout.get(), Duration::from_secs(5));
    assert_eq!(c.max_connecting_per_client.get(), 20);
    assert!(c.trusted_proxies.is_empty());
}

/// Each duration setting, a value out of its range, and the range as the message says it.
const OUT_OF_RANGE: [(&str, &str, &str); 9] = [
    ("disconnect-timeout", "0", "between 1000 and 300000 ms"),
    ("disconnect-timeout", "300001", "between 1000 and 300000 ms"),
    ("connect-timeout", "0", "between 1000 and 300000 ms"),
    ("connect-timeout", "999", "between 1000 and 300000 ms"),
    ("max-recorder-lag", "0", "between 100 and 600000 ms"),
    ("max-recorder-lag", "600001", "between 100 and 600000 ms"),
    ("stun-timeout", "0", "between 500 and 60000 ms"),
    ("stun-timeout", "60001", "between 500 and 60000 ms"),
    ("jitter-buffer", "0", "between 20 and 10000 ms"),
];

#[test]
fn durations_out_of_range_are_refused_from_the_flag() {
    for (setting, value, range) in OUT_OF_RANGE {
        let e = parse(&[&format!("--{setting}"), value]).unwrap_err();
        assert!(e.contains(&format!("--{setting}")) && e.contains(range), "--{setting} {value}: {e}");
    }
}

#[test]
fn durations_out_of_range_are_refused_from_the_environment() {
    let _env = env_lock();
    for (setting, value, range) in OUT_OF_RANGE {
        let name = format!("TAPEDECK_{}", setting.replace('-', "_").to_uppercase());
        let _v = EnvVar::set(&name, value);
        let e = parse_locked(&[]).unwrap_err();
        assert!(e.contains(&format!("--{setting}")) && e.contains(range), "{name}={value}: {e}");
    }
}

#[test]
fn durations_out_of_range_are_refused_from_the_file() {
    for (setting, value, range) in OUT_OF_RANGE {
        let (_f, path) = config_file(&format!("{setting} = {value}\n"));
        let e = parse(&["--config", &path]).unwrap_err();
        assert!(e.contains(&format!("key `{setting}`: must be {range}")) && e.contains(&path), "{setting}: {e}");
    }
}

#[test]
fn durations_at_their_bounds_are_accepted_everywhere() {
    let c =
        parse(&["--disconnect-timeout", "1000", "--connect-timeout", "300000", "--max-recorder-lag", "100"]).unwrap();
    assert_eq!(c.disconnect_timeout.get(), Duration::from_secs(1));
    assert_eq!(c.connect_timeout.get(), Duration::from_secs(300));
    assert_eq!(c.max_recorder_lag.get(), Duration::from_millis(100));
    let (_f, path) = config_file(
        "disconnect-timeout = 300000\nmax-recorder-lag = 600000\nstun-timeout = 60000\nconnect-timeout = 60000\n",
    );
    let c = parse(&["--config", &path]).unwrap();
    assert_eq!(c.disconnect_timeout.get(), Duration::from_secs(300));
    assert_eq!(c.max_recorder_lag.get(), Duration::from_secs(600));
    assert_eq!(c.stun_timeout.get(), Duration::from_secs(60));
    let _env = env_lock();
    let _v = EnvVar::set("TAPEDECK_STUN_TIMEOUT", "500");
    assert_eq!(parse_locked(&[]).unwrap().stun_timeout.get(), Duration::from_millis(500));
}

#[test]
fn a_stun_timeout_longer_than_the_connect_timeout_is_refused() {
    let e = parse(&["--stun-timeout", "8000", "--connect-timeout", "6000"]).unwrap_err();
    assert!(e.contains("--stun-timeout (8000 ms) is longer than --connect-timeout (6000 ms)"), "{e}");
    let e = parse(&["--stun-timeout", "20000"]).unwrap_err();
    assert!(e.contains("--stun-timeout (20000 ms) is longer than the default --connect-timeout (15000 ms)"), "{e}");
    let (_f, path) = config_file("stun-timeout = 10000\n");
    let e = parse(&["--config", &path, "--connect-timeout", "9000"]).unwrap_err();
    assert!(e.contains(&format!("`stun-timeout` in {path} (10000 ms)")) && e.contains("--connect-timeout"), "{e}");
    let _env = env_lock();
    let _v = EnvVar::set("TAPEDECK_CONNECT_TIMEOUT", "2000");
    let e = parse_locked(&["--stun-timeout", "3000"]).unwrap_err();
    assert!(e.contains("--stun-timeout (3000 ms) is longer than TAPEDECK_CONNECT_TIMEOUT (2000 ms)"), "{e}");
    let c = parse_locked(&["--stun-timeout", "2000"]).unwrap();
    assert_eq!((c.stun_timeout.get(), c.connect_timeout.get()), (Duration::from_secs(2), Duration::from_secs(2)));
}

#[test]
fn only_a_short_connect_timeout_lowers_the_default_stun_timeout() {
    let c = parse(&["--connect-timeout", "3000"]).unwrap();
    assert_eq!((c.connect_timeout.get(), c.stun_timeout.get()), (Duration::from_secs(3), Duration::from_secs(3)));
    let c = parse(&["--connect-timeout", "1000"]).unwrap();
    assert_eq!(c.stun_timeout.get(), Duration::from_secs(1));
    let (_f, path) = config_file("connect-timeout = 4000\n");
    assert_eq!(parse(&["--config", &path]).unwrap().stun_timeout.get(), Duration::from_secs(4));
    let c = parse(&["--connect-timeout", "30000"]).unwrap();
    assert_eq!(c.stun_timeout.get(), Duration::from_secs(5), "a longer connect timeout leaves it alone");
}

#[test]
fn max_connecting_per_client_from_flag_environment_or_file() {
    assert_eq!(parse(&["--max-connecting-per-client", "3"]).unwrap().max_connecting_per_client.get(), 3);
    let e = parse(&["--max-connecting-per-client", "0"]).unwrap_err();
    assert!(e.contains("--max-connecting-per-client"), "{e}");
    let (_f, path) = config_file("max-connecting-per-client = 7\n");
    assert_eq!(parse(&["--config", &path]).unwrap().max_connecting_per_client.get(), 7);
    let _env = env_lock();
    let _v = EnvVar::set("TAPEDECK_MAX_CONNECTING_PER_CLIENT", "9");
    assert_eq!(parse_locked(&["--config", &path]).unwrap().max_connecting_per_client.get(), 9);
}

#[test]
fn trusted_proxies_from_flags_environment_or_file() {
    let shown = |c: Config| c.trusted_proxies.iter().map(Cidr::to_string).collect::<Vec<_>>();
    let c = parse(&["--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/8"]).unwrap();
    assert_eq!(shown(c), ["127.0.0.1/32", "10.0.0.0/8"]);
    for bad in ["10.0.0.1/8", "10.0.0.0/33", "proxy.local", ""] {
        let e = parse(&["--trusted-proxy", bad]).unwrap_err();
        assert!(e.contains("--trusted-proxy"), "{bad:?}: {e}");
    }
    let e = parse(&["--trusted-proxy", "10.0.0.1/8"]).unwrap_err();
    assert!(e.contains("10.0.0.0/8"), "the message gives the block meant: {e}");
    let (_f, path) = config_file("trusted-proxies = [\"::1\", \"2001:db8::/32\"]\n");
    assert_eq!(shown(parse(&["--config", &path]).unwrap()), ["::1/128", "2001:db8::/32"]);
    let (_g, bad_path) = config_file("trusted-proxies = [\"10.0.0.0/8\", \"nope\"]\n");
    let e = parse(&["--config", &bad_path]).unwrap_err();
    assert!(e.contains("key `trusted-proxies`: \"nope\" must be an IP address"), "{e}");
    let _env = env_lock();
    let _v = EnvVar::set("TAPEDECK_TRUSTED_PROXIES", "192.0.2.1,198.51.100.0/24");
    assert_eq!(shown(parse_locked(&["--config", &path]).unwrap()), ["192.0.2.1/32", "198.51.100.0/24"]);
}

#[test]
fn odd_ptime_is_refused() {
    assert!(parse(&["--ptime", "15"]).is_err());
    assert_eq!(parse(&["--ptime", "20"]).unwrap().ptime, tapedeck_core::media::Ptime::Ms20);
}

#[test]
fn unspecified_udp_needs_public_ip() {
    let e = parse(&["--udp-addr", "0.0.0.0:0"]).unwrap_err();
    assert!(e.contains("--public-ip"), "{e}");
    assert!(parse(&["--udp-addr", "0.0.0.0:0", "--public-ip", "10.1.2.3"]).is_ok());
    let (_f, path) = config_file("udp-addr = \"0.0.0.0:50000\"\npublic-ip = \"203.0.113.7\"");
    let c = parse(&["--config", &path]).unwrap();
    assert_eq!((c.udp_addr.to_string(), c.public_ip), ("0.0.0.0:50000".into(), Some([203, 0, 113, 7].into())));
}

#[test]
fn replay_is_a_subcommand() {
    let cli = Cli::try_parse_from(["tapedeck", "replay", "a.tdcap", "-o", "b.wav"]).unwrap();
    assert!(matches!(cli.command, Some(Subcommand::Replay { .. })));
    assert!(Cli::try_parse_from(["tapedeck", "--ptime", "20", "replay", "a", "-o", "b"]).is_err());
    // Settings in the environment (as under systemd) do not stop the replay tool.
    let _env = env_lock();
    let _v = EnvVar::set("TAPEDECK_PTIME", "20");
    let cli = Cli::try_parse_from(["tapedeck", "replay", "a.tdcap", "-o", "b.wav"]).unwrap();
    assert!(matches!(cli.command, Some(Subcommand::Replay { .. })));
}

#[test]
fn the_file_fills_in_what_flags_do_not_give() {
    let (_f, path) = config_file(
        "http-addr = \"0.0.0.0:8081\"\nmax-sessions = 200\njitter-buffer = 500\nlog-level = \"warn\"\n\
         recorder-threads = 3\ncapture = \"caps\"\n",
    );
    let c = parse(&["--config", &path, "--max-sessions", "400"]).unwrap();
    assert_eq!(c.http_addr.to_string(), "0.0.0.0:8081");
    assert_eq!(c.max_sessions.get(), 400, "the flag wins");
    assert_eq!(c.jitter_buffer.get(), Duration::from_millis(500), "same unit as --jitter-buffer");
    assert_eq!(c.log_level, log::LevelFilter::Warn);
    assert_eq!(c.recorder_threads.get(), 3);
    assert_eq!(c.capture, Some(PathBuf::from("caps")));
    assert_eq!(c.config_file, Some(PathBuf::from(&path)));
    // A flag given with the default's value still wins over the file.
    let c = parse(&["--config", &path, "--http-addr", "127.0.0.1:8080"]).unwrap();
    assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
}

#[test]
fn flag_beats_environment_beats_file() {
    let (_f, path) = config_file("max-sessions = 200\nptime = 40\n");
    let _env = env_lock();
    let _v = EnvVar::set("TAPEDECK_MAX_SESSIONS", "300");
    let _c = EnvVar::set("TAPEDECK_CONFIG", &path);
    let c = parse_locked(&[]).unwrap();
    assert_eq!(c.max_sessions.get(), 300, "the environment wins over the file");
    assert_eq!(c.ptime, tapedeck_core::media::Ptime::Ms40, "TAPEDECK_CONFIG names the file");
    let c = parse_locked(&["--max-sessions", "400"]).unwrap();
    assert_eq!(c.max_sessions.get(), 400, "the flag wins over the environment");
}

#[test]
fn log_limits_take_plain_integers_or_units() {
    let c = parse(&["--log-max-files", "3", "--log-max-bytes", "1048576"]).unwrap();
    assert_eq!((c.log_max_files.get(), c.log_max_bytes.get()), (3, 1 << 20));
    assert_eq!(parse(&["--log-max-bytes", "2MiB"]).unwrap().log_max_bytes.get(), 2 << 20);
    assert!(parse(&["--log-max-files", "0"]).is_err());
    assert!(parse(&["--log-max-bytes", "0"]).is_err());
}

#[test]
fn unknown_key_names_the_key_and_the_file() {
    let (_f, path) = config_file("http-addr = \"127.0.0.1:8080\"\nmax-sesions = 3\n");
    let e = parse(&["--config", &path]).unwrap_err();
    assert!(e.contains("`max-sesions`") && e.contains(&path), "{e}");
}

#[test]
fn a_bad_value_names_the_key_and_the_file() {
    let (_f, path) = config_file("ptime = 15\n");
    let e = parse(&["--config", &path]).unwrap_err();
    assert!(e.contains("`ptime`") && e.contains(&path) && e.contains("[10, 20, 40, 60]"), "{e}");
    let e = parse(&["--config", "/nonexistent/tapedeck.toml"]).unwrap_err();
    assert!(e.contains("/nonexistent/tapedeck.toml") && e.contains("cannot read"), "{e}");
}

#[test]
fn token_from_flag_environment_file_or_token_file() {
    assert_eq!(parse(&["--token", "abc"]).unwrap().token.unwrap().expose(), "abc");
    let (_f, path) = config_file("token = \"from-file\"\n");
    assert_eq!(parse(&["--config", &path]).unwrap().token.unwrap().expose(), "from-file");
    assert_eq!(parse(&["--config", &path, "--token", "flag"]).unwrap().token.unwrap().expose(), "flag");
    let (_t, token_path) = config_file("from-token-file\n");
    assert_eq!(parse(&["--token-file", &token_path]).unwrap().token.unwrap().expose(), "from-token-file");
    let _env = env_lock();
    let _v = EnvVar::set("TAPEDECK_TOKEN", "from-env");
    assert_eq!(parse_locked(&[]).unwrap().token.unwrap().expose(), "from-env");
}

#[test]
fn token_and_token_file_together_are_refused() {
    let (_t, token_path) = config_file("abc\n");
    let e = parse(&["--token", "abc", "--token-file", &token_path]).unwrap_err();
    assert!(e.contains("--token and by --token-file"), "{e}");
    let (_f, path) = config_file("token = \"abc\"\n");
    let e = parse(&["--config", &path, "--token-file", &token_path]).unwrap_err();
    assert!(e.contains(&format!("`token` in {path}")) && e.contains("--token-file"), "{e}");
}

#[test]
fn a_bad_token_is_refused_without_printing_it() {
    for args in [&["--token", "has space"][..], &["--token", ""][..]] {
        let e = parse(args).unwrap_err();
        assert!(e.contains("--token") && !e.contains("has space"), "{e}");
    }
    let (_f, path) = config_file("token = \"two words\"\n");
    let e = parse(&["--config", &path]).unwrap_err();
    assert!(e.contains("`token` in") && !e.contains("two words"), "{e}");
}

#[test]
fn the_token_never_shows_in_debug_output() {
    let c = parse(&["--token", "SECRET-abc123"]).unwrap();
    let printed = format!("{c:?} {c:#?}");
    assert!(!printed.contains("SECRET-abc123") && printed.contains("<redacted>"), "{printed}");
    let _env = env_lock();
    let cli = Cli::try_parse_from(["tapedeck", "--token", "SECRET-abc123"]).unwrap();
    assert!(!format!("{cli:?}").contains("SECRET-abc123"));
    // clap shows environment values in --help unless told not to.
    let _v = EnvVar::set("TAPEDECK_TOKEN", "SECRET-abc123");
    let help = Cli::command().render_long_help().to_string();
    assert!(help.contains("TAPEDECK_TOKEN") && !help.contains("SECRET-abc123"), "{help}");
}

#[test]
fn cors_origins_from_flags_environment_or_file() {
    let c = parse(&["--cors-origin", "https://a.example", "--cors-origin", "http://localhost:3000"]).unwrap();
    assert_eq!(c.cors_origins, ["https://a.example", "http://localhost:3000"]);
    let e = parse(&["--cors-origin", "https://a.example/path"]).unwrap_err();
    assert!(e.contains("--cors-origin"), "{e}");
    let (_f, path) = config_file("cors-origins = [\"https://b.example:8443\"]\n");
    assert_eq!(parse(&["--config", &path]).unwrap().cors_origins, ["https://b.example:8443"]);
    let _env = env_lock();
    let _v = EnvVar::set("TAPEDECK_CORS_ORIGINS", "https://c.example,https://d.example");
    assert_eq!(parse_locked(&["--config", &path]).unwrap().cors_origins, ["https://c.example", "https://d.example"]);
}

/// The long flags, except --help, --version and --config (which the file cannot set).
fn settings() -> Vec<(String, Option<String>)> {
    Cli::command()
        .get_arguments()
        .filter_map(|a| Some((a.get_long()?.to_owned(), a.get_env().map(|e| e.to_string_lossy().into_owned()))))
        .filter(|(long, _)| !matches!(long.as_str(), "help" | "version" | "config"))
        .collect()
}

#[test]
fn every_flag_has_an_environment_variable_and_a_file_key() {
    let mut keys = BTreeSet::new();
    for (long, env) in settings() {
        // A repeatable flag (--cors-origin) takes a list in the environment and the file.
        let list = file::LISTS.iter().find(|(flag, _)| *flag == long).map(|(_, key)| key.to_string());
        let name = list.unwrap_or_else(|| long.clone());
        assert_eq!(env, Some(format!("TAPEDECK_{}", name.replace('-', "_").to_uppercase())), "--{long}");
        keys.insert(name);
    }
    assert_eq!(keys, file::KEYS.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>());
}

#[test]
fn the_readme_lists_every_flag_variable_and_key() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (long, env) in settings() {
        let env = env.unwrap();
        let key = env.trim_start_matches("TAPEDECK_").replace('_', "-").to_lowercase();
        let row = format!("| `--{long} ");
        let line = readme.lines().find(|l| l.starts_with(&row) && l.contains(&format!("`{env}`")));
        let line = line.unwrap_or_else(|| panic!("README: no row for --{long} with {env}"));
        assert!(line.contains(&format!("`{key} = ")), "README: the row of --{long} lacks the key `{key}`");
    }
}

/// For each config file key: a value in the file's TOML and one for its flag, neither the
/// default nor the other.
const EVERY_KEY: [(&str, &str, &str); 40] = [
    ("http-addr", "\"127.0.0.1:81\"", "127.0.0.1:82"),
    ("udp-addr", "\"127.0.0.1:5001\"", "127.0.0.1:5002"),
    ("loops", "5", "6"),
    ("public-ip", "\"192.0.2.1\"", "192.0.2.2"),
    ("node-id", "\"node-a\"", "node-b"),
    ("public-url", "\"https://a.example\"", "https://b.example/x"),
    ("sample", "\"a.wav\"", "b.wav"),
    ("recordings", "\"recordings-a\"", "recordings-b"),
    ("logs", "\"logs-a\"", "logs-b"),
    ("name-template", "\"a-{session}\"", "b-{session}"),
    ("format", "\"ogg\"", "both"),
    ("segment-duration", "60000", "120000"),
    ("drain-timeout", "1000", "2000"),
    ("ptime", "20", "40"),
    ("jitter-buffer", "500", "600"),
    ("max-sessions", "7", "8"),
    ("max-recorder-lag", "1000", "2000"),
    ("log-level", "\"warn\"", "debug"),
    ("disconnect-timeout", "2000", "3000"),
    ("connect-timeout", "20000", "25000"),
    ("max-call-duration", "60000", "120000"),
    ("stun-timeout", "4000", "3000"),
    ("max-connecting-per-client", "3", "4"),
    ("trusted-proxies", "[\"10.0.0.0/8\"]", "192.168.0.0/16"),
    ("recorder-threads", "97", "98"),
    ("capture", "\"captures-a\"", "captures-b"),
    ("http-threads", "3", "4"),
    ("token", "\"token-a\"", "token-b"),
    ("token-file", "TOKEN_FILE_A", "TOKEN_FILE_B"),
    ("cors-origins", "[\"https://a.example\"]", "https://b.example"),
    ("log-max-files", "3", "4"),
    ("webhooks", "[\"http://a.example/h\"]", "http://b.example/h"),
    ("webhook-secret", "\"whsec_a\"", "whsec_b"),
    ("log-max-bytes", "4096", "8192"),
    ("upload", "\"s3://bucket-a/p\"", "s3://bucket-b"),
    ("upload-endpoint", "\"http://127.0.0.1:9000\"", "https://s3.example.com/x"),
    ("upload-region", "\"eu-west-1\"", "eu-central-1"),
    ("upload-access-key-id", "\"id-a\"", "id-b"),
    ("upload-secret-access-key", "\"secret-a\"", "secret-b"),
    // A flag of two values: the file and the flag both give the one that is not the default.
    ("keep-local", "true", "true"),
];

/// The configuration as text (the token and the webhook secret shown), without the config
/// file's name.
fn shown(config: Result<Config, String>) -> String {
    let mut c = config.unwrap_or_else(|e| panic!("{e}"));
    c.config_file = None;
    format!(
        "{c:?} token {:?} webhook secret {:?}",
        c.token.as_ref().map(Token::expose),
        c.webhook_secret.as_ref().map(Token::expose)
    ) + &format!(
        " upload credentials {:?} {:?}",
        c.upload_access_key_id.as_ref().map(Token::expose),
        c.upload_secret_access_key.as_ref().map(Token::expose)
    )
}

#[test]
fn every_key_reaches_the_config_and_loses_to_its_flag_and_its_variable() {
    let keys: BTreeSet<&str> = EVERY_KEY.iter().map(|(key, _, _)| *key).collect();
    assert_eq!(keys, file::KEYS.iter().copied().collect(), "EVERY_KEY lacks a key, or has one twice");
    let (_a, token_a) = config_file("token-a\n");
    let (_b, token_b) = config_file("token-b\n");
    let _env = env_lock();
    let default = shown(parse_locked(&[]));
    for (key, in_file, given) in EVERY_KEY {
        let in_file = in_file.replace("TOKEN_FILE_A", &format!("{token_a:?}"));
        let given = given.replace("TOKEN_FILE_B", &token_b);
        let flag = file::LISTS.iter().find(|(_, k)| *k == key).map_or(key, |(flag, _)| flag);
        let flag = format!("--{flag}");
        let (_f, path) = config_file(&format!("{key} = {in_file}\n"));
        // A webhook needs a secret (config/rules.rs): given on the command line each time;
        // an access key id needs its secret and the other way round.
        let with = |args: &[&str]| {
            let mut args = args.to_vec();
            if key == "webhooks" {
                args.extend(["--webhook-secret", "s3cret"]);
            }
            if key == "upload-access-key-id" {
                args.extend(["--upload-secret-access-key", "s"]);
            }
            if key == "upload-secret-access-key" {
                args.extend(["--upload-access-key-id", "i"]);
            }
            shown(parse_locked(&args))
        };
        let from_file = with(&["--config", &path]);
        let from_flag = with(&[&flag, &given]);
        assert_ne!(from_file, default, "`{key}` in the file changes nothing");
        assert_ne!(from_flag, default, "{flag} changes nothing");
        if key != "keep-local" {
            assert_ne!(from_flag, from_file, "`{key}` and {flag} give the same");
        }
        assert_eq!(with(&["--config", &path, &flag, &given]), from_flag, "{flag} wins over the file");
        let _v = EnvVar::set(&format!("TAPEDECK_{}", key.replace('-', "_").to_uppercase()), &given);
        assert_eq!(with(&["--config", &path]), from_flag, "the variable of {flag} wins over the file");
    }
}

#[test]
fn a_webhook_without_a_secret_stops_the_start() {
    let _env = env_lock();
    let e = parse_locked(&["--webhook", "http://127.0.0.1:9/h"]).unwrap_err();
    assert!(e.contains("--webhook-secret"), "{e}");
    assert!(parse_locked(&["--webhook", "ftp://x/h", "--webhook-secret", "s"]).is_err(), "an ftp webhook");
    assert!(parse_locked(&["--webhook", "http://127.0.0.1:9/h", "--webhook-secret", "s"]).is_ok());
}

#[test]
fn the_table_gives_each_setting_one_flag_and_one_key() {
    let flags: Vec<String> = settings().into_iter().map(|(long, _)| long).collect();
    let keys: BTreeSet<&str> = file::KEYS.iter().copied().collect();
    assert_eq!((flags.len(), keys.len()), (file::KEYS.len(), file::KEYS.len()), "a flag or a key twice, or missing");
    for (flag, key) in file::LISTS {
        assert!(flags.iter().any(|f| f == flag) && keys.contains(key), "--{flag} and `{key}`");
    }
}

#[test]
fn upload_settings_fall_back_to_the_aws_variables_and_credentials_come_in_pairs() {
    let _env = env_lock();
    let c = parse_locked(&["--upload", "s3://bucket-a/p"]).unwrap();
    assert_eq!(c.upload, Some(S3Url::parse("s3://bucket-a/p").unwrap()));
    assert_eq!((c.upload_region.as_deref(), c.upload_endpoint.as_deref()), (Some("us-east-1"), None));
    assert!(!c.keep_local && c.upload_access_key_id.is_none());
    let (_f, path) = config_file("upload-region = \"eu-west-1\"\nupload-access-key-id = \"file-id\"\n");
    let e = parse_locked(&["--config", &path]).unwrap_err();
    assert!(e.contains("upload-access-key-id") && e.contains("without a secret access key"), "{e}");
    {
        let _a = EnvVar::set("AWS_REGION", "ap-south-1");
        let _b = EnvVar::set("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/");
        let _c = EnvVar::set("AWS_SECRET_ACCESS_KEY", "env-secret");
        let c = parse_locked(&["--config", &path]).unwrap();
        assert_eq!(c.upload_region.as_deref(), Some("ap-south-1"), "AWS_REGION wins over the file");
        assert_eq!(c.upload_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.upload_access_key_id.as_ref().map(Token::expose), Some("file-id"));
        assert_eq!(c.upload_secret_access_key.as_ref().map(Token::expose), Some("env-secret"));
        let c = parse_locked(&["--config", &path, "--upload-region", "eu-north-1", "--upload-secret-access-key", "f"])
            .unwrap();
        assert_eq!(c.upload_region.as_deref(), Some("eu-north-1"), "the flag wins over AWS_REGION");
        assert_eq!(c.upload_secret_access_key.as_ref().map(Token::expose), Some("f"));
        assert!(!format!("{c:?}").contains("file-id"), "a credential in the debug output");
        let _d = EnvVar::set("AWS_ENDPOINT_URL", "ftp://x");
        let e = parse_locked(&[]).unwrap_err();
        assert!(e.contains("AWS_ENDPOINT_URL"), "{e}");
    }
    assert!(parse_locked(&["--keep-local"]).unwrap().keep_local);
    assert!(!parse_locked(&["--keep-local", "false"]).unwrap().keep_local);
    let e = parse_locked(&["--upload", "s3://Bad_Name"]).unwrap_err();
    assert!(e.contains("--upload") && e.contains("lowercase"), "{e}");
}
