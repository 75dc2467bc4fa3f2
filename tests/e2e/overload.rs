//! Overload: twice `--max-sessions` callers at once. The extra ones get 503 with
//! `Retry-After`; the admitted ones are not disturbed and record complete WAVs.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::http::request;
use tapedeck_tools::{call, offering, CallPlan};

const LIMIT: usize = 4;

#[test]
fn beyond_max_sessions_offers_get_503_and_admitted_calls_record_complete_wavs() {
    let daemon = common::Daemon::start(&["--max-sessions", &LIMIT.to_string()]);
    let http = daemon.http;
    let callers: Vec<_> = (0..2 * LIMIT)
        .map(|i| {
            let hz = 300.0 + 100.0 * i as f32;
            std::thread::spawn(move || (hz, call(&CallPlan::tone(http, hz, Duration::from_secs(4)))))
        })
        .collect();

    // While the admitted calls are up, one more offer: 503, with Retry-After and a JSON reason.
    std::thread::sleep(Duration::from_millis(2000));
    let extra = offering("127.0.0.1:9".parse().unwrap(), Instant::now(), None).unwrap();
    let body = serde_json::json!({ "type": "offer", "sdp": extra.offer.to_sdp_string() }).to_string();
    let r = request(http, "POST", "/offer", Some("application/json"), body.as_bytes(), Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(r.json()["error"].as_str().unwrap().contains("limit"), "{:?}", r.json());

    let reports: Vec<_> = callers.into_iter().map(|h| h.join().unwrap()).collect();
    let refused: Vec<_> = reports.iter().filter(|(_, r)| r.answer_status == 503).collect();
    let admitted: Vec<_> = reports.iter().filter(|(_, r)| r.answer_status == 200).collect();
    assert_eq!(
        (admitted.len(), refused.len()),
        (LIMIT, LIMIT),
        "statuses: {:?}",
        reports.iter().map(|(_, r)| r.answer_status).collect::<Vec<_>>()
    );
    for (hz, report) in admitted {
        assert_eq!(report.error, None, "{report:?}");
        let (samples, call_len) = daemon.recorded(report);
        let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
        assert!((wav_len - call_len).abs() <= 0.01 * call_len, "{hz} Hz: WAV {wav_len:.3} s of a {call_len:.3} s call");
        let got = audio::dominant_hz(&samples[samples.len() / 4..samples.len() * 3 / 4], SAMPLE_RATE_HZ);
        assert!((got - *hz as f64).abs() <= 3.0, "{hz} Hz caller recorded at {got} Hz");
        // Every admitted caller heard the sample the whole time (10 ms packets).
        let expected = call_len / 0.010;
        assert!(report.received.len() as f64 >= 0.95 * expected, "{hz} Hz: {} of {expected:.0}", report.received.len());
    }
    let metrics = request(http, "GET", "/metrics", None, b"", Duration::from_secs(5)).unwrap();
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(text.contains(&format!("tapedeck_offers_refused_total{{reason=\"full\"}} {}\n", LIMIT + 1)), "{text}");
}
