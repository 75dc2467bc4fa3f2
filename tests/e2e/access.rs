//! Who may use the API: with `--token`, requests that change or list sessions need
//! `Authorization: Bearer <token>` (else 401), while the page, `/healthz` and `/metrics` stay
//! open; without it, nothing is asked. `--cors-origin` lets pages served from elsewhere call
//! the API from a browser, and no one else. `X-Forwarded-For` names the client only when a
//! `--trusted-proxy` sent it.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_tools::http::{request_with, HttpResponse};
use tapedeck_tools::{call, offering, CallPlan};

const TOKEN: &str = "s3cret-Token_42";
const T: Duration = Duration::from_secs(5);

fn send(daemon: &common::Daemon, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let headers: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
    request_with(daemon.http, method, path, &headers, body, T).unwrap()
}

fn offer_body() -> String {
    let o = offering("127.0.0.1:9".parse().unwrap(), Instant::now(), None).unwrap();
    serde_json::json!({ "type": "offer", "sdp": o.offer.to_sdp_string() }).to_string()
}

#[test]
fn with_a_token_changes_need_it_and_the_rest_stays_open() {
    let daemon = common::Daemon::start(&["--token", TOKEN]);
    let json = ("Content-Type", "application/json");
    let body = offer_body();
    for auth in [None, Some("Bearer wrong"), Some("Basic czNjcmV0"), Some("Bearer s3cret-Token_4")] {
        let mut headers = vec![json];
        headers.extend(auth.map(|a| ("Authorization", a)));
        let r = send(&daemon, "POST", "/offer", &headers, body.as_bytes());
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.header("WWW-Authenticate"), Some("Bearer realm=\"tapedeck\""));
        assert!(r.json()["error"].as_str().unwrap().contains("token"));
    }
    let sdp_type = ("Content-Type", "application/sdp");
    assert_eq!(send(&daemon, "POST", "/whip", &[sdp_type], b"v=0\r\n").status, 401);
    let some = "/sessions/00000000-0000-0000-0000-000000000001";
    assert_eq!(send(&daemon, "DELETE", some, &[], b"").status, 401);
    assert_eq!(send(&daemon, "GET", "/sessions", &[], b"").status, 401);
    assert_eq!(send(&daemon, "GET", some, &[], b"").status, 401);
    for open in ["/", "/healthz", "/metrics"] {
        assert_eq!(send(&daemon, "GET", open, &[], b"").status, 200, "{open}");
    }

    // With the token: a call (JSON) and a WHIP call work end to end, and listing works.
    let plan = CallPlan { token: Some(TOKEN.into()), ..CallPlan::tone(daemon.http, 440.0, Duration::from_secs(1)) };
    let report = call(&plan);
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.hangup_status, Some(200));
    let (samples, call_len) = daemon.recorded(&report);
    assert!((samples.len() as f64 / f64::from(SAMPLE_RATE_HZ) - call_len).abs() <= 0.06);
    let whip = call(&CallPlan { whip: true, ..plan.clone() });
    assert_eq!((whip.answer_status, whip.hangup_status, whip.error.clone()), (201, Some(200), None), "{whip:?}");
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(send(&daemon, "GET", "/sessions", &[("Authorization", &bearer)], b"").status, 200);

    let text = String::from_utf8(send(&daemon, "GET", "/metrics", &[], b"").body).unwrap();
    assert!(text.contains("tapedeck_offers_refused_total{reason=\"unauthorized\"} 5\n"), "{text}");
    assert!(!daemon.log_text().contains(TOKEN), "the token never reaches the log");
}

#[test]
fn without_a_token_nothing_is_asked() {
    let daemon = common::Daemon::start(&[]);
    let body = offer_body();
    let headers = [("Content-Type", "application/json"), ("Authorization", "Bearer anything")];
    let r = send(&daemon, "POST", "/offer", &headers, body.as_bytes());
    assert_eq!(r.status, 200, "{:?}", r.json());
    let id = r.json()["session"].as_str().unwrap().to_string();
    assert_eq!(send(&daemon, "GET", "/sessions", &[], b"").status, 200);
    assert_eq!(send(&daemon, "DELETE", &format!("/sessions/{id}"), &[], b"").status, 200);
}

#[test]
fn cors_lets_allowed_origins_in_and_no_one_else() {
    let daemon = common::Daemon::start(&["--cors-origin", "https://app.example.com"]);
    let allowed = ("Origin", "https://app.example.com");
    let other = ("Origin", "https://evil.example.net");
    let ask =
        [("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "authorization,content-type")];

    let r = send(&daemon, "OPTIONS", "/whip", &[allowed, ask[0], ask[1]], b"");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("https://app.example.com"));
    assert!(r.header("Access-Control-Allow-Methods").unwrap().contains("POST"));
    assert!(r.header("Access-Control-Allow-Headers").unwrap().contains("Authorization"));
    assert!(r.header("Access-Control-Max-Age").is_some());

    let r = send(&daemon, "OPTIONS", "/offer", &[other, ask[0]], b"");
    assert_eq!(r.status, 403);
    assert!(r.header("Access-Control-Allow-Origin").is_none());
    assert!(r.json()["error"].as_str().unwrap().contains("not allowed"));

    // Actual requests: the allowed origin may read the answer (and WHIP's Location).
    let body = offer_body();
    let json = ("Content-Type", "application/json");
    let r = send(&daemon, "POST", "/offer", &[json, allowed], body.as_bytes());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("https://app.example.com"));
    assert!(r.header("Access-Control-Expose-Headers").unwrap().contains("Location"));
    let r = send(&daemon, "GET", "/healthz", &[other], b"");
    assert_eq!(r.status, 200, "same-origin and non-browser clients are served");
    assert!(r.header("Access-Control-Allow-Origin").is_none(), "but a foreign page may not read it");

    // Without the flag, no origin is allowed a preflight.
    let plain = common::Daemon::start(&[]);
    assert_eq!(send(&plain, "OPTIONS", "/offer", &[allowed, ask[0]], b"").status, 403);
}

/// The client address of an offer (what `--max-connecting-per-client` counts, logged at
/// debug in the session's `answered` line) is the TCP peer, unless the peer is a
/// `--trusted-proxy`: then it is the address that proxy appended to `X-Forwarded-For`.
#[test]
fn x_forwarded_for_names_the_client_only_from_a_trusted_proxy() {
    let body = offer_body();
    // A client-written entry, then what the (local) proxy appended.
    let headers = [("Content-Type", "application/json"), ("X-Forwarded-For", "203.0.113.5, 198.51.100.7")];
    for (flags, client) in [(&["--trusted-proxy", "127.0.0.1"][..], "198.51.100.7"), (&[][..], "127.0.0.1")] {
        let daemon = common::Daemon::start(flags);
        let r = send(&daemon, "POST", "/offer", &headers, body.as_bytes());
        assert_eq!(r.status, 200, "{flags:?}: {:?}", r.json());
        let id = r.json()["session"].as_str().expect("a session id").to_string();
        let want = format!("[session {id}] answered (offer) client {client}, TCP peer 127.0.0.1");
        let start = Instant::now();
        while !daemon.log_text().contains(&want) && start.elapsed() < T {
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = daemon.log_text();
        assert!(log.contains(&want), "{flags:?}: no line {want:?} in the log:\n{log}");
        assert!(!log.contains("203.0.113.5"), "{flags:?}: the client-written entry was believed");
    }
}
