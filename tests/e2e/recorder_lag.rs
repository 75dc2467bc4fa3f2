//! When the recorders fall behind the calls (more work than the cores can do), the daemon
//! refuses new callers instead of taking on more, and the calls it has lose nothing.
//!
//! The test makes the recorders fall behind by freezing the daemon's one recorder thread
//! (ptrace, see `common::Frozen`) in the middle of a call, while the event loop and the HTTP
//! threads go on.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use common::metric;
use tapedeck_core::testkit::audio;
use tapedeck_tools::http::request;
use tapedeck_tools::{call, offering, CallPlan};

const T: Duration = Duration::from_secs(10);

#[test]
fn offers_are_refused_while_the_recorders_lag_and_the_lagging_call_keeps_every_packet() {
    let daemon = common::Daemon::start(&["--recorder-threads", "1", "--max-recorder-lag", "1000"]);
    let http = daemon.http;
    let metrics = || request(http, "GET", "/metrics", None, b"", T).unwrap().text();
    let offer = || {
        let offer = offering("127.0.0.1:9".parse().unwrap(), Instant::now(), None).unwrap();
        let body = serde_json::json!({ "type": "offer", "sdp": offer.offer.to_sdp_string() }).to_string();
        request(http, "POST", "/offer", Some("application/json"), body.as_bytes(), T).unwrap()
    };
    let caller = std::thread::spawn(move || call(&CallPlan::tone(http, 440.0, Duration::from_secs(6))));
    // Wait until the call is being recorded.
    let started = Instant::now();
    while metric(&metrics(), "tapedeck_recording_bytes_total") == 0.0 {
        assert!(started.elapsed() < T, "the call was never recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(metric(&metrics(), "tapedeck_recorder_lag_seconds") < 1.0);

    let recorders = common::threads_named(daemon.child.id(), "recorder-");
    assert_eq!(recorders.len(), 1, "--recorder-threads 1");
    let frozen = common::Frozen::thread(recorders[0]);
    std::thread::sleep(Duration::from_millis(2000));
    let lagging = metrics();
    let lag = metric(&lagging, "tapedeck_recorder_lag_seconds");
    assert!(lag >= 1.5, "the recorder has been frozen for 2 s, yet the lag is {lag} s");
    let refused = offer();
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("retry-after").is_some(), "a 503 says when to try again");
    assert!(refused.json()["error"].as_str().unwrap().contains("overloaded"), "{}", refused.text());
    assert_eq!(metric(&metrics(), "tapedeck_offers_refused_total{reason=\"overloaded\"}"), 1.0);

    drop(frozen);
    let resumed = Instant::now();
    while metric(&metrics(), "tapedeck_recorder_lag_seconds") > 0.5 {
        assert!(resumed.elapsed() < Duration::from_secs(3), "the recorder did not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let admitted = offer();
    assert_eq!(admitted.status, 200, "{}", admitted.text());
    let session = admitted.json()["session"].as_str().unwrap().to_string();
    assert_eq!(request(http, "DELETE", &format!("/sessions/{session}"), None, b"", T).unwrap().status, 200);

    // The call that went on while its recorder was frozen is recorded whole.
    let report = caller.join().unwrap();
    assert_eq!(report.error, None, "{report:?}");
    let call_len = report.hangup_at.unwrap() - report.connected_at.unwrap();
    let path = daemon.recording(report.recording.as_deref().unwrap());
    daemon.wait_for_final(&path, Duration::from_secs(5));
    let (_, samples) = audio::read_wav(&path);
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    assert!((wav_len - call_len.as_secs_f64()).abs() <= 0.060, "WAV {wav_len} s vs call {call_len:?}");
    let frames = samples.len() / 960;
    let mut silent_frames = 0;
    for (i, frame) in samples.chunks(960).enumerate() {
        // The tone's first and last 20 ms may hold the fade in and out of the call.
        if i == 0 || i + 1 >= frames {
            continue;
        }
        if frame.iter().map(|s| i32::from(*s).abs()).max().unwrap_or(0) < 500 {
            silent_frames += 1;
        }
    }
    assert_eq!(silent_frames, 0, "every 20 ms of the call holds the tone (nothing concealed as silence)");
    let hz = audio::dominant_hz(&samples[samples.len() / 4..samples.len() * 3 / 4], SAMPLE_RATE_HZ);
    assert!((hz - 440.0).abs() <= 3.0, "dominant {hz} Hz");
    let recording = metric(&metrics(), "tapedeck_concealed_packets_total");
    assert_eq!(recording, 0.0, "no packet was lost or concealed");
}
