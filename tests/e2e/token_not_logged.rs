//! The bearer token never reaches a log line: the daemon logs its whole configuration at
//! debug (the file level) with the token as `<redacted>`.

use crate::common;

use std::time::Duration;

const SECRET: &str = "tok-3f9a1c-NEVER-LOGGED";

#[test]
fn the_token_is_redacted_in_the_log_file() {
    let mut daemon = common::Daemon::start(&["--token", SECRET]);
    assert_eq!(daemon.signal_and_wait("TERM", Duration::from_secs(2)), Some(0));
    let logs: Vec<String> = std::fs::read_dir(daemon.dir.path().join("logs"))
        .expect("logs folder")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("read log"))
        .collect();
    assert_eq!(logs.len(), 1, "one log file per start");
    let config_line = logs[0].lines().find(|l| l.contains("Config {")).expect("the config is logged at debug");
    assert!(config_line.contains("token: Some(<redacted>)"), "{config_line}");
    assert!(!logs[0].contains(SECRET), "the token is in the log");
}
