//! The example config file `deploy/tapedeck.toml` stays true: it parses into a `Config`,
//! documents every key exactly once on a commented `# key = value` line, and each such line
//! is a valid value, equal to the built-in default where the flag has one.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use tapedeck::config::file::{KEYS, LISTS};
use tapedeck::config::{Cli, Config, FileSettings};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/tapedeck.toml")
}

fn example() -> String {
    std::fs::read_to_string(example_path()).expect("deploy/tapedeck.toml")
}

/// The `# key = value` lines: (key, the whole line without `# `).
fn documented(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter_map(|l| {
            let (key, _) = l.split_once(" = ")?;
            KEYS.contains(&key).then(|| (key.to_owned(), l.to_owned()))
        })
        .collect()
}

/// A TOML value as the string clap would parse from the flag.
fn as_flag_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => panic!("no flag takes {other:?}"),
    }
}

#[test]
fn the_example_parses() {
    let path = example_path();
    let config = Config::try_from_args(["tapedeck".as_ref(), "--config".as_ref(), path.as_os_str()])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.config_file.as_deref(), Some(path.as_path()));
    assert_eq!(config.recordings, Path::new("/var/lib/tapedeck/recordings"));
    assert_eq!(config.logs, Path::new("/var/log/tapedeck"));
    assert!(config.token.is_none(), "the unit passes the token with --token-file");
}

#[test]
fn every_key_is_documented_once() {
    let text = example();
    let documented = documented(&text);
    for key in KEYS {
        let n = documented.iter().filter(|(k, _)| k == key).count();
        assert_eq!(n, 1, "`# {key} = ...` appears {n} times in deploy/tapedeck.toml");
    }
}

#[test]
fn documented_values_are_valid_and_the_defaults_are_true() {
    let command = Cli::command();
    for (key, line) in documented(&example()) {
        FileSettings::parse(&line).unwrap_or_else(|e| panic!("`{line}`: {e}"));
        let list = LISTS.iter().find(|(_, k)| *k == key).map(|(flag, _)| *flag);
        let flag = list.unwrap_or(key.as_str());
        let arg = command.get_arguments().find(|a| a.get_long() == Some(flag)).expect("a flag per key");
        let Some(default) = arg.get_default_values().first() else {
            continue; // off by default: the line is an example
        };
        let table: toml::Table = line.parse().expect("one key");
        let value = as_flag_value(&table[key.as_str()]);
        assert_eq!(value, default.to_string_lossy(), "`{line}` is not the built-in default");
    }
}
