//! WHIP (RFC 9725): a client that speaks it as the RFC says (`POST /whip` with
//! `application/sdp`, `201 Created` with `Location` and an `application/sdp` answer, `DELETE`
//! on that location) is recorded like any other caller.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::Duration;
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::http::request;
use tapedeck_tools::{call, CallPlan};

#[test]
fn a_whip_client_is_answered_recorded_and_ended_by_delete_on_its_location() {
    let daemon = common::Daemon::start(&[]);
    let plan = CallPlan { whip: true, ..CallPlan::tone(daemon.http, 523.0, Duration::from_secs(2)) };
    let report = call(&plan);
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.answer_status, 201);
    let id = report.session.clone().expect("a session id in the Location");
    assert_eq!(report.resource.as_deref(), Some(format!("/sessions/{id}").as_str()));
    assert_eq!(report.hangup_status, Some(200), "DELETE on the Location ends the session");
    assert!(report.received.len() > 150, "the sample came back: {} packets", report.received.len());

    // The recording is named after the session.
    let path = daemon
        .recordings()
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&id))
        .expect("a recording named after the session");
    daemon.wait_for_final(&path, Duration::from_secs(5));
    let samples = audio::read_wav(&path).1;
    let call_len = (report.hangup_at.unwrap() - report.connected_at.unwrap()).as_secs_f64();
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    assert!((wav_len - call_len).abs() <= 0.06, "WAV {wav_len:.3} s vs call {call_len:.3} s");
    let hz = audio::dominant_hz(&samples[samples.len() / 4..samples.len() * 3 / 4], SAMPLE_RATE_HZ);
    assert!((hz - 523.0).abs() <= 3.0, "{hz} Hz");

    // The session is gone: a second DELETE is 404.
    let again = request(daemon.http, "DELETE", &format!("/sessions/{id}"), None, b"", Duration::from_secs(5)).unwrap();
    assert_eq!(again.status, 404);
}

#[test]
fn whip_mistakes_get_clear_errors() {
    let daemon = common::Daemon::start(&[]);
    let t = Duration::from_secs(5);
    // A JSON body is not a WHIP offer: 415 naming application/sdp.
    let r = request(daemon.http, "POST", "/whip", Some("application/json"), b"{}", t).unwrap();
    assert_eq!(r.status, 415);
    assert!(r.json()["error"].as_str().unwrap().contains("application/sdp"), "{:?}", r.json());
    // No content type at all: 415 as well.
    let r = request(daemon.http, "POST", "/whip", None, b"v=0\r\n", t).unwrap();
    assert_eq!(r.status, 415);
    // Not SDP: 400.
    let r = request(daemon.http, "POST", "/whip", Some("application/sdp"), b"hello", t).unwrap();
    assert_eq!(r.status, 400, "{:?}", r.json());
    // Empty: 400.
    let r = request(daemon.http, "POST", "/whip", Some("application/sdp"), b"", t).unwrap();
    assert_eq!(r.status, 400);
    // Trickle ICE and ICE restarts (PATCH) are not supported: 405, as the RFC allows.
    let r = request(daemon.http, "PATCH", "/sessions/00000000-0000-0000-0000-000000000001", None, b"", t).unwrap();
    assert_eq!(r.status, 405);
    // GET on the endpoint: 405.
    assert_eq!(request(daemon.http, "GET", "/whip", None, b"", t).unwrap().status, 405);
}
