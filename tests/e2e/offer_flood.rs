//! Issue 13 (b): one address that posts offers and never connects them cannot take the
//! daemon's sessions from everyone else. It may hold at most `--max-connecting-per-client`
//! (default 20) sessions not yet connected; beyond that its offers get 429 with
//! Retry-After, counted as `tapedeck_offers_refused_total{reason="too_many_connecting"}`,
//! and a session no one sends valid STUN to ends after `--stun-timeout` (default 5 s).
//!
//! 127.0.0.2 posts [`FLOOD_OFFERS`] offers in [`FLOOD_SECONDS`] while [`CALLERS`] real
//! callers connect from 127.0.0.1 under `--max-sessions` [`MAX_SESSIONS`]: without the
//! limit, the flood fills every slot within a second and the callers get 503.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{metric, metrics, Daemon};
use tapedeck_tools::http::request_from;
use tapedeck_tools::offering;

/// Where the flood comes from: a second client address on loopback.
const FLOOD_FROM: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
/// Offers the flood posts, evenly spread over [`FLOOD_SECONDS`].
const FLOOD_OFFERS: usize = 2000;
const FLOOD_SECONDS: f64 = 10.0;
/// Threads posting the flood (an offer is answered in milliseconds; 4 keep 200/s on time).
const FLOODERS: usize = 4;
/// Real callers, from 127.0.0.1, once the flood has had a second to fill what it can.
const CALLERS: usize = 20;
/// The session limit: the flood's 200 offers of its first second would reach it.
const MAX_SESSIONS: usize = 200;
/// `--max-connecting-per-client`'s default.
const MAX_CONNECTING: usize = 20;

#[test]
fn one_address_flooding_offers_gets_429s_and_takes_no_session_from_other_callers() {
    let daemon = Daemon::start(&["--max-sessions", &MAX_SESSIONS.to_string()]);
    let http = daemon.http;
    let flood = std::thread::spawn(move || flood(http));
    std::thread::sleep(Duration::from_secs(1));
    let report = common::run_load(
        &daemon,
        &["--callers", &CALLERS.to_string(), "--seconds", "6", "--ramp", "20"],
        Duration::from_secs(60),
    );
    let statuses = flood.join().expect("the flood");
    let count = |status: u16| statuses.iter().filter(|s| s.status == status).count();
    let (answered, refused) = (count(200), count(429));
    eprintln!("flood from {FLOOD_FROM}: {:?} (status, count) of {FLOOD_OFFERS}", histogram(&statuses));

    assert_eq!(report["failures"], serde_json::json!([]), "no real caller refused (503 or otherwise): {report}");
    assert_eq!(report["connected"], CALLERS, "every real caller connects: {report}");
    assert_eq!(report["recordings_complete"], CALLERS, "every recording complete: {report}");

    assert_eq!(answered + refused, FLOOD_OFFERS, "only 200 or 429: {:?}", histogram(&statuses));
    // At most MAX_CONNECTING at a time, each held up to --stun-timeout (5 s): over 10 s the
    // flood gets about 3 x 20 sessions, and 429 for the rest.
    assert!(answered >= MAX_CONNECTING, "the flood got {answered} sessions, fewer than the limit allows");
    assert!(answered <= 4 * MAX_CONNECTING, "the flood got {answered} sessions: the limit did not hold");
    assert!(refused >= FLOOD_OFFERS * 9 / 10, "{refused} refusals of {FLOOD_OFFERS}");
    let no_retry_after = statuses.iter().filter(|s| s.status == 429 && s.retry_after.is_none()).count();
    assert_eq!(no_retry_after, 0, "every 429 says when to retry");
    let counted = metric(&metrics(&daemon), "tapedeck_offers_refused_total{reason=\"too_many_connecting\"}");
    assert_eq!(counted, refused as f64, "/metrics counts every 429");
}

/// One flood offer's answer.
struct Answer {
    status: u16,
    retry_after: Option<String>,
}

/// Posts [`FLOOD_OFFERS`] offers from [`FLOOD_FROM`], evenly over [`FLOOD_SECONDS`], from
/// [`FLOODERS`] threads, and never connects one.
fn flood(http: SocketAddr) -> Vec<Answer> {
    let start = Instant::now();
    let gap = Duration::from_secs_f64(FLOOD_SECONDS / FLOOD_OFFERS as f64);
    let threads: Vec<_> = (0..FLOODERS)
        .map(|t| {
            std::thread::spawn(move || {
                let offer = offering("127.0.0.2:9".parse().unwrap(), Instant::now(), None).expect("an offer");
                let body = serde_json::json!({ "type": "offer", "sdp": offer.offer.to_sdp_string() }).to_string();
                let headers = [("Content-Type", "application/json".to_string())];
                let mut answers = Vec::new();
                for i in (t..FLOOD_OFFERS).step_by(FLOODERS) {
                    if let Some(wait) = (start + gap * i as u32).checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let r = request_from(FLOOD_FROM, http, "POST", "/offer", &headers, body.as_bytes(), TIMEOUT)
                        .expect("POST /offer from 127.0.0.2");
                    answers.push(Answer { status: r.status, retry_after: r.header("Retry-After").map(str::to_string) });
                }
                answers
            })
        })
        .collect();
    let answers: Vec<Answer> = threads.into_iter().flat_map(|t| t.join().expect("a flooding thread")).collect();
    let took = start.elapsed().as_secs_f64();
    assert!(took < FLOOD_SECONDS + 5.0, "the flood took {took:.1} s: the daemon answered too slowly to keep 200/s");
    answers
}

/// How many answers had each status.
fn histogram(answers: &[Answer]) -> Vec<(u16, usize)> {
    let mut h: Vec<(u16, usize)> = Vec::new();
    for a in answers {
        match h.iter_mut().find(|(s, _)| *s == a.status) {
            Some((_, n)) => *n += 1,
            None => h.push((a.status, 1)),
        }
    }
    h
}

const TIMEOUT: Duration = Duration::from_secs(5);
