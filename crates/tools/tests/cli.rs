//! The tools' command lines refuse what they cannot measure, with a message naming the flag,
//! before touching the network. (These tests also make `cargo test` build the tools'
//! binaries, which the daemon's end-to-end tests run.)

use std::process::Command;

fn refused(bin: &str, args: &[&str], says: &str) {
    let out = Command::new(bin).args(args).output().expect("the tool runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{bin} {args:?} was not refused as a usage error: {stderr}");
    assert!(stderr.contains(says), "{bin} {args:?} did not say {says:?}: {stderr}");
}

#[test]
fn the_load_generator_refuses_a_clock_it_cannot_model() {
    let load = env!("CARGO_BIN_EXE_tapedeck-load");
    refused(load, &["--clock-rate", "3"], "--clock-rate");
    refused(load, &["--clock-rate", "fast"], "--clock-rate");
}

#[test]
fn the_floor_refuses_a_packet_time_opus_does_not_have() {
    let floor = env!("CARGO_BIN_EXE_tapedeck-floor");
    refused(floor, &["--ptime", "15"], "must be 10, 20, 40 or 60");
    refused(floor, &["--ptime", "0"], "--ptime");
}
