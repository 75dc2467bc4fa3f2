use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::{Mutex, MutexGuard};

use super::*;

/// Tests that parse arguments read the process environment: they hold this lock, so a test
/// that sets a `TAPEDECK_*` variable does not leak it into another.
static ENV: Mutex<()> = Mutex::new(());

fn env_lock() -> MutexGuard<'static, ()> {
    ENV.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets an environment variable until dropped (hold [`env_lock`] meanwhile).
struct EnvVar(&'static str);

impl EnvVar {
    fn set(name: &'static str, value: &str) -> EnvVar {
        std::env::set_var(name, value);
        EnvVar(name)
    }
}

impl Drop for EnvVar {
    fn drop(&mut self) {
        std::env::remove_var(self.0);
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
    assert_eq!(c.ptime, crate::media::Ptime::Ms10);
    assert_eq!(c.jitter_buffer, Duration::from_millis(1000));
    assert_eq!(c.sample, PathBuf::from("assets/sample.wav"));
    assert_eq!(c.log_level, log::LevelFilter::Info);
    assert!(c.token.is_none() && c.cors_origins.is_empty() && c.config_file.is_none());
    assert_eq!((c.log_max_files.get(), c.log_max_bytes.get()), (10, 50 * 1024 * 1024));
}

#[test]
fn odd_ptime_is_refused() {
    assert!(parse(&["--ptime", "15"]).is_err());
    assert_eq!(parse(&["--ptime", "20"]).unwrap().ptime, crate::media::Ptime::Ms20);
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
    assert_eq!(c.jitter_buffer, Duration::from_millis(500), "same unit as --jitter-buffer");
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
    assert_eq!(c.ptime, crate::media::Ptime::Ms40, "TAPEDECK_CONFIG names the file");
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
        // The repeatable --cors-origin takes a list in the environment and the file.
        let name = if long == "cors-origin" { "cors-origins".to_owned() } else { long.clone() };
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
