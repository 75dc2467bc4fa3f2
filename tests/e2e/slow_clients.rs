//! Slow or stuck HTTP clients hold neither the other clients nor the event loop: while many
//! connections stall in the middle of their request bodies, a real call is answered and
//! recorded; each stalled request gets 408 after the body deadline; a client that trickles
//! its body byte by byte is cut off the same way.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_tools::{call, CallPlan};

/// More stalled clients than there are signalling threads (2) and tiny_http's idle
/// connection threads (4).
const STALLED: usize = 12;

fn stalled_offer(http: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(http).unwrap();
    let head = "POST /offer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n";
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(b"{\"type\":\"offer\",\"sdp\":\"v=0").unwrap();
    s
}

fn status_of(mut s: TcpStream) -> Option<u16> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
        raw.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok())
}

#[test]
fn stalled_and_trickling_clients_do_not_hold_up_a_real_call() {
    let daemon = common::Daemon::start(&[]);
    let started = Instant::now();
    let stalled: Vec<TcpStream> = (0..STALLED).map(|_| stalled_offer(daemon.http)).collect();
    let http = daemon.http;
    let trickler = std::thread::spawn(move || {
        let mut s = stalled_offer(http);
        // One byte every 200 ms: the body would take 13 minutes.
        for _ in 0..60 {
            if s.write_all(b" ").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        status_of(s)
    });
    std::thread::sleep(Duration::from_millis(300));

    let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_secs(2)));
    assert_eq!(report.error, None, "{report:?}");
    let answer_ms = (report.answered_at.unwrap() - report.offered_at.unwrap()).as_millis();
    assert!(answer_ms < 500, "answered in {answer_ms} ms despite {STALLED} stalled clients");
    let (samples, call_len) = daemon.recorded(&report);
    assert!((samples.len() as f64 / f64::from(SAMPLE_RATE_HZ) - call_len).abs() <= 0.06);

    let statuses: Vec<Option<u16>> = stalled.into_iter().map(status_of).collect();
    let waited = started.elapsed();
    assert!(statuses.iter().all(|s| *s == Some(408)), "{statuses:?}");
    // tiny_http hands a burst of new connections to the threads it has, which serve them
    // in turn; each stalled one is cut off after the 5 s deadline, so all are released
    // within a few deadlines.
    assert!(waited < Duration::from_secs(25), "stalled requests were released after {waited:?}");
    assert_eq!(trickler.join().unwrap(), Some(408));

    // A client that connects and never sends its request is closed by the daemon.
    let mut silent = TcpStream::connect(daemon.http).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t0 = Instant::now();
    let n = silent.read(&mut [0u8; 64]).unwrap_or(0);
    let held = t0.elapsed();
    assert!(held < Duration::from_secs(8), "a silent connection was held {held:?} ({n} bytes)");
}
