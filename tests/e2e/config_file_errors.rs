//! A config file tapedeck cannot use stops the start: exit code 1 and one line on stderr
//! naming the file and the key, before anything is bound.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the daemon with this config file text (named by --config or TAPEDECK_CONFIG).
fn start_with(text: &str, by_env: bool) -> (Output, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tapedeck.toml");
    std::fs::write(&path, text).expect("write the config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tapedeck"));
    command.args(["--http-addr", "127.0.0.1:0", "--udp-addr", "127.0.0.1:0"]);
    command.arg("--logs").arg(dir.path().join("logs")).arg("--recordings").arg(dir.path().join("recordings"));
    if by_env {
        command.env("TAPEDECK_CONFIG", &path);
    } else {
        command.arg("--config").arg(&path);
    }
    let out = command.output().expect("run tapedeck");
    (out, path_string(&path))
}

fn path_string(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp path").to_owned()
}

fn assert_refused(out: &Output, must_contain: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stdout.contains("listening"), "it started: {stdout}");
    for s in must_contain {
        assert!(stderr.contains(s), "stderr lacks {s:?}: {stderr}");
    }
}

#[test]
fn an_unknown_key_names_the_key_and_the_file() {
    let (out, path) = start_with("max-sessions = 10\nmax-sesions = 3\n", false);
    assert_refused(&out, &["tapedeck: config file", &path, "unknown key `max-sesions`"]);
}

#[test]
fn a_bad_value_names_the_key_and_the_file() {
    let (out, path) = start_with("jitter-buffer = 5\n", true);
    assert_refused(&out, &[&path, "key `jitter-buffer`", "between 20 and 10000"]);
}

#[test]
fn a_time_out_of_its_range_names_the_key_and_the_range() {
    let (out, path) = start_with("disconnect-timeout = 0\n", false);
    assert_refused(&out, &[&path, "key `disconnect-timeout`", "must be between 1000 and 300000 ms"]);
}

#[test]
fn a_stun_timeout_longer_than_the_connect_timeout_stops_the_start() {
    let (out, path) = start_with("connect-timeout = 4000\nstun-timeout = 4500\n", true);
    assert_refused(&out, &[&format!("`stun-timeout` in {path} (4500 ms) is longer than `connect-timeout` in {path}")]);
}
