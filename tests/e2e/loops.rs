//! Several event loops in one daemon (`--loops N`): each loop has a UDP port of its own
//! (consecutive from `--udp-addr`'s), a new call goes to the loop with the fewest calls, and a
//! caller's recording is complete and its playback whole whichever loop served it; callers in
//! different loops hear the same point of the sample.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use tapedeck_core::media::SAMPLE_RATE_HZ;
use tapedeck_core::testkit::audio;
use tapedeck_tools::http::request;
use tapedeck_tools::{call, CallPlan, CallReport};

const T: Duration = Duration::from_secs(10);
const LOOPS: usize = 3;
const TONES: [f32; 6] = [300.0, 370.0, 440.0, 510.0, 580.0, 650.0];

/// A port P on 127.0.0.1 such that P, P+1 and P+2 are free now.
fn three_free_ports() -> u16 {
    for _ in 0..50 {
        let first = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = first.local_addr().unwrap().port();
        if p > 65_000 {
            continue;
        }
        let rest: Vec<_> = (1..3).map(|i| UdpSocket::bind(("127.0.0.1", p + i))).collect();
        if rest.iter().all(Result::is_ok) {
            return p;
        }
    }
    panic!("no three consecutive free UDP ports");
}

#[test]
fn calls_spread_over_the_loops_and_each_is_recorded_whole() {
    let port = three_free_ports();
    let daemon = common::Daemon::start_on_udp(&format!("127.0.0.1:{port}"), &["--loops", &LOOPS.to_string()]);
    let ports: Vec<String> = (0..LOOPS as u16).map(|i| format!("127.0.0.1:{}", port + i)).collect();
    assert!(
        daemon.listening.contains(&format!("{LOOPS} event loops, udp {}", ports.join(" "))),
        "the loops' ports: {}",
        daemon.listening
    );

    let http = daemon.http;
    let (reports, loops_seen) = std::thread::scope(|s| {
        let callers: Vec<_> = TONES
            .iter()
            .enumerate()
            .map(|(i, &hz)| {
                s.spawn(move || {
                    // One after another, so each goes to the loop with the fewest calls.
                    std::thread::sleep(Duration::from_millis(150 * i as u64));
                    call(&CallPlan::tone(http, hz, Duration::from_secs(4)))
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2500));
        let list = request(http, "GET", "/sessions", None, b"", T).unwrap().json();
        let mut by_loop = BTreeMap::new();
        for session in list["sessions"].as_array().unwrap() {
            *by_loop.entry(session["loop"].as_u64().unwrap()).or_insert(0) += 1;
        }
        let reports: Vec<CallReport> = callers.into_iter().map(|h| h.join().unwrap()).collect();
        (reports, by_loop)
    });
    assert_eq!(loops_seen, BTreeMap::from([(0, 2), (1, 2), (2, 2)]), "two calls in each loop");

    let sample = audio::read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample.wav")).1;
    for (r, &hz) in reports.iter().zip(&TONES) {
        assert_eq!(r.error, None, "{hz} Hz caller: {r:?}");
        let (samples, call_len) = daemon.recorded(r);
        let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
        assert!((wav_len - call_len).abs() <= 0.06, "{hz} Hz caller: WAV {wav_len:.3} s for a {call_len:.3} s call");
        let got = audio::dominant_hz(&samples[samples.len() / 4..samples.len() * 3 / 4], SAMPLE_RATE_HZ);
        assert!((got - f64::from(hz)).abs() <= 3.0, "{hz} Hz caller recorded {got} Hz");
        // The sample came back whole: at 10 ms a packet, nearly every packet of the call.
        let expected = call_len / 0.010;
        assert!(
            r.received.len() as f64 >= 0.95 * expected,
            "{hz} Hz caller heard {} of {expected:.0} packets",
            r.received.len()
        );
    }

    // Like a radio: at one instant every caller, whichever loop it is in, hears the same
    // point of the loop.
    let at = reports.iter().filter_map(|r| r.connected_at).max().unwrap() + Duration::from_millis(1500);
    let positions: Vec<f64> = reports.iter().map(|r| common::position_at(r, &sample, at)).collect();
    let len = sample.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    for p in &positions[1..] {
        let d = (p - positions[0]).rem_euclid(len);
        assert!(d.min(len - d) < 0.030, "callers hear the loop apart: {positions:?}");
    }
}

/// More loops than ports above `--udp-addr`'s: a clear error at start, nothing half-bound.
#[test]
fn loops_that_would_run_out_of_ports_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapedeck"))
        .args(["--http-addr", "127.0.0.1:0", "--udp-addr", "127.0.0.1:65535", "--loops", "2"])
        .arg("--sample")
        .arg(common::default_sample())
        .arg("--logs")
        .arg(dir.path().join("logs"))
        .arg("--recordings")
        .arg(dir.path().join("recordings"))
        .output()
        .expect("run tapedeck");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 loops need 2 ports from 65535"), "{stderr}");
}
