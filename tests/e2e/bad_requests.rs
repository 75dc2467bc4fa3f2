//! Client mistakes get the right 4xx status and a JSON error, and a good offer right after
//! still works: no input stops the next caller from being served.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::{Duration, Instant};

use str0m::media::{Direction, MediaKind};
use str0m::Rtc;
use tapedeck_tools::http::request;
use tapedeck_tools::{call, CallPlan};

fn post(daemon: &common::Daemon, path: &str, content_type: Option<&str>, body: &[u8]) -> (u16, serde_json::Value) {
    let r = request(daemon.http, "POST", path, content_type, body, Duration::from_secs(5)).expect("HTTP");
    (r.status, r.json())
}

/// A real offer from str0m with the given media sections.
fn offer_with(kinds: &[MediaKind]) -> String {
    let mut rtc = Rtc::builder().build(Instant::now());
    let addr = "127.0.0.1:9".parse().unwrap();
    rtc.add_local_candidate(str0m::Candidate::host(addr, "udp").unwrap());
    let mut api = rtc.sdp_api();
    for &k in kinds {
        api.add_media(k, Direction::SendRecv, None, None, None);
    }
    if kinds.is_empty() {
        api.add_channel("chat".into());
    }
    let (offer, _) = api.apply().unwrap();
    offer.to_sdp_string()
}

fn json_offer(sdp: &str) -> Vec<u8> {
    serde_json::json!({ "type": "offer", "sdp": sdp }).to_string().into_bytes()
}

#[test]
fn bad_requests_get_4xx_and_the_next_caller_is_served() {
    let daemon = common::Daemon::start(&[]);
    let json = Some("application/json");
    let cases: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        ("malformed JSON", json, b"{\"type\": \"offer\", sdp".to_vec(), 400),
        ("garbage SDP", json, json_offer("this is not SDP at all"), 400),
        ("wrong type", json, br#"{"type":"answer","sdp":"v=0"}"#.to_vec(), 400),
        ("empty body", json, Vec::new(), 400),
        ("1 MB body", json, vec![b'x'; 1 << 20], 413),
        ("no audio (data channel only)", json, json_offer(&offer_with(&[])), 400),
        ("no audio (video only)", json, json_offer(&offer_with(&[MediaKind::Video])), 400),
        ("wrong content type", Some("text/plain"), json_offer(&offer_with(&[MediaKind::Audio])), 415),
    ];
    for (what, ct, body, want) in cases {
        let (status, json) = post(&daemon, "/offer", ct, &body);
        assert_eq!(status, want, "{what}: {json}");
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: no JSON error: {json}");
    }
    let r = request(
        daemon.http,
        "DELETE",
        "/sessions/6f1c8a52-8c1e-4e1b-9a57-0a6b2b1b2b2b",
        None,
        b"",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(r.status, 404, "unknown session");
    let r = request(daemon.http, "DELETE", "/sessions/not-a-uuid", None, b"", Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 404, "malformed session id");
    let r = request(daemon.http, "GET", "/offer", None, b"", Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 405);
    let r = request(daemon.http, "GET", "/no/such/thing", None, b"", Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());

    // Audio and video together: video is refused inside the answer (port 0), not an error.
    let (status, json) = post(&daemon, "/offer", json, &json_offer(&offer_with(&[MediaKind::Audio, MediaKind::Video])));
    assert_eq!(status, 200, "{json}");
    let answer = json["sdp"].as_str().unwrap();
    assert!(answer.contains("m=video 0 "), "video not refused:\n{answer}");
    assert!(answer.contains("a=ice-lite"), "not ICE-lite:\n{answer}");
    assert!(answer.to_lowercase().contains("opus/48000/2"), "no Opus:\n{answer}");
    assert!(answer.contains("typ host"), "no host candidate:\n{answer}");

    // After all that, a real caller is served and recorded.
    let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_millis(1500)));
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.hangup_status, Some(200));
    assert!(report.received.len() > 100);
}
