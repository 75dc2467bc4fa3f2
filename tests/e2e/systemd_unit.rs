//! `deploy/tapedeck.service` keeps its hardening, and its ExecStart runs the example config
//! `deploy/tapedeck.toml` with flags tapedeck accepts: the unit may write exactly the
//! recordings and logs folders that config names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tapedeck::config::Config;

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(name)
}

/// The `Key=value` lines of the unit, comments and sections left out; a key set twice
/// (SystemCallFilter=) appears twice.
fn unit() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy("tapedeck.service")).expect("deploy/tapedeck.service");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("not Key=value: {l}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn values<'a>(unit: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    unit.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

fn value<'a>(unit: &'a [(String, String)], key: &str) -> &'a str {
    match values(unit, key).as_slice() {
        [v] => v,
        other => panic!("{key}= is set {} times", other.len()),
    }
}

#[test]
fn the_hardening_is_in_place() {
    let unit = unit();
    let user = value(&unit, "User");
    assert_eq!(user, "tapedeck", "a dedicated user");
    assert!(values(&unit, "DynamicUser").is_empty(), "User= and DynamicUser= are alternatives");
    for (key, expected) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("RestrictNamespaces", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(value(&unit, key), expected, "{key}=");
    }
    assert_eq!(values(&unit, "SystemCallFilter").first(), Some(&"@system-service"));
    let nofile: u64 = value(&unit, "LimitNOFILE").parse().expect("LimitNOFILE= a number");
    assert!(nofile >= 4096, "LimitNOFILE={nofile}: a file per caller");
    let stop = humantime::parse_duration(value(&unit, "TimeoutStopSec")).expect("TimeoutStopSec= a duration");
    // SIGTERM drains: calls go on for the drain timeout, then the recordings are finalized
    // and queued webhooks go out (a few seconds): all of that before systemd's SIGKILL.
    let drain = tapedeck::config::DEFAULT_DRAIN_TIMEOUT.get();
    assert!(
        stop >= drain + Duration::from_secs(15),
        "TimeoutStopSec={stop:?} does not leave the {drain:?} drain and the finalizing after it"
    );
}

#[test]
fn exec_start_runs_the_example_config_with_the_credential_token() {
    let unit = unit();
    let exec: Vec<&str> = value(&unit, "ExecStart").split_whitespace().collect();
    assert_eq!(exec[..3], ["/usr/local/bin/tapedeck", "--config", "/etc/tapedeck/tapedeck.toml"]);
    assert_eq!(exec[3..], ["--token-file", "%d/token"], "the token from LoadCredential=");
    let credential = value(&unit, "LoadCredential");
    assert!(credential.starts_with("token:/"), "LoadCredential={credential}");

    // The same command line, with the example config and a token in place of %d/token.
    let dir = tempfile::tempdir().expect("temp dir");
    let token = dir.path().join("token");
    std::fs::write(&token, "0123456789abcdef\n").expect("write token");
    let example = deploy("tapedeck.toml");
    let mut args: Vec<PathBuf> = exec.iter().map(PathBuf::from).collect();
    args[2] = example;
    args[4] = token;
    let config = Config::try_from_args(&args).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.token.as_ref().map(|t| t.expose()), Some("0123456789abcdef"));

    // The unit may write exactly the folders the config writes to.
    let writable: Vec<PathBuf> = value(&unit, "ReadWritePaths").split_whitespace().map(PathBuf::from).collect();
    assert_eq!(writable, [config.recordings.clone(), config.logs.clone()]);
    assert_eq!(Path::new("/var/lib").join(value(&unit, "StateDirectory")), config.recordings);
    assert_eq!(Path::new("/var/log").join(value(&unit, "LogsDirectory")), config.logs);
}
