//! A recording that cannot be written (here: the recordings folder is gone and a file sits
//! in its place, which fails even for root) is logged with the session id and counted; the
//! call itself goes on, and the next call records normally once the folder is back.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::time::Duration;
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_tools::http::request;
use tapedeck_tools::{call, CallPlan};

const T: Duration = Duration::from_secs(5);

#[test]
fn an_unwritable_recordings_folder_is_counted_and_the_calls_go_on() {
    let daemon = common::Daemon::start(&[]);
    let dir = daemon.recordings_dir();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a folder").unwrap();

    let http = daemon.http;
    let caller = std::thread::spawn(move || call(&CallPlan::tone(http, 440.0, Duration::from_secs(2))));
    std::thread::sleep(Duration::from_millis(1200));
    let list = request(http, "GET", "/sessions", None, b"", T).unwrap().json();
    let s = &list["sessions"][0];
    assert_eq!(s["state"], "connected", "{list}");
    assert!(s["recording"]["error"].as_str().unwrap().contains("cannot create"), "{s}");
    let id = s["id"].as_str().unwrap().to_string();

    let report = caller.join().unwrap();
    assert_eq!(report.error, None, "the call goes on: {report:?}");
    assert_eq!(report.hangup_status, Some(200));
    assert!(report.received.len() > 150, "the caller still heard the sample: {} packets", report.received.len());

    let text = String::from_utf8(request(http, "GET", "/metrics", None, b"", T).unwrap().body).unwrap();
    assert!(text.contains("tapedeck_recording_errors_total 1\n"), "{text}");
    std::thread::sleep(Duration::from_millis(300));
    let log = daemon.log_text();
    assert!(
        log.lines().any(|l| l.contains(&id) && l.contains("ERROR") && l.contains("cannot create the recording")),
        "an error line with the session id:\n{log}"
    );
    assert!(log.lines().any(|l| l.contains(&id) && l.contains("summary:") && l.contains("FAILED")), "{log}");

    // The folder is back: the next call is recorded.
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    let report = call(&CallPlan::tone(http, 440.0, Duration::from_secs(1)));
    assert_eq!(report.error, None);
    let (samples, call_len) = daemon.recorded(&report);
    assert!((samples.len() as f64 / f64::from(SAMPLE_RATE_HZ) - call_len).abs() < 0.06);
}
