//! `tapedeck-load --stun-flood`: the flood reaches the daemon's UDP port (learned from the
//! answers) at the rate asked for, one request in `--flood-known-every` names a real
//! session's ufrag, and the callers beside it still connect and are recorded in full.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::Duration;

use common::{metric, metrics, Daemon};

#[test]
fn the_load_generator_floods_the_daemons_udp_port_beside_its_callers() {
    let daemon = Daemon::start(&[]);
    let before = metric(&metrics(&daemon), "tapedeck_packets_in_total");
    let report = common::run_load(
        &daemon,
        &[
            "--callers",
            "2",
            "--seconds",
            "3",
            "--stun-flood",
            "2000",
            "--flood-seconds",
            "2",
            "--flood-known-every",
            "10",
        ],
        Duration::from_secs(30),
    );
    let after = metric(&metrics(&daemon), "tapedeck_packets_in_total");
    assert_eq!(report["connected"], 2, "{report}");
    assert_eq!(report["recordings_complete"], 2, "{report}");
    let sent = report["flood_sent"].as_u64().expect("flood_sent");
    let known = report["flood_sent_known_ufrag"].as_u64().expect("flood_sent_known_ufrag");
    let seconds = report["flood_seconds"].as_f64().expect("flood_seconds");
    assert!((1.9..2.2).contains(&seconds), "flooded for {seconds} s: {report}");
    assert!((3600..=4000).contains(&sent), "{sent} sent at 2000/s for 2 s: {report}");
    assert_eq!(known, sent / 10, "one in 10 names a real ufrag: {report}");
    assert_eq!(report["flood_send_errors"], 0, "{report}");
    // The daemon received them (on top of the callers' own packets: 2 x 3 s at 50/s).
    assert!(after - before >= 0.95 * sent as f64 + 300.0, "{} datagrams in for {sent} sent", after - before);
}
