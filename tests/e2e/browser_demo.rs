//! The demo page in a real browser: Debian's chromium, driven by playwright-core, with a fake
//! microphone playing a 660 Hz tone. The page must connect, show the sample coming back at the
//! packet rate, and after Stop the server's recording must be the tone, as long as the call.
//!
//! Needs `chromium` (Debian package) and `npm ci` in tests/browser; `.ci/run` installs both.
//! A browser that cannot start fails this test; it never skips.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;

fn write_tone(path: &Path, hz: f64, seconds: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE_HZ,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("tone file");
    for i in 0..(seconds * f64::from(SAMPLE_RATE_HZ)) as usize {
        let v = (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(SAMPLE_RATE_HZ)).sin() * 0.4;
        w.write_sample((v * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// One browser at a time: two Chromiums, two daemons and a str0m caller on a 2-core CI machine
/// starve the (debug-built) event loop, which then skips sample frames and the page measures
/// a packet rate the daemon would not show on its own.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// Runs the playwright driver against the daemon; returns what the page showed.
fn drive(daemon: &common::Daemon, shot: &str, mode: &str) -> serde_json::Value {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` in tests/browser (./test.sh does)"
    );
    let tone = daemon.dir.path().join("tone660.wav");
    write_tone(&tone, 660.0, 10.0);
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join(shot);
    let out = Command::new("node")
        .current_dir(&browser_dir)
        .arg("demo.mjs")
        .arg(format!("http://{}/", daemon.http))
        .arg(&tone)
        .arg(&shot)
        .arg("5")
        .arg(mode)
        .output()
        .expect("run node (install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout.lines().last().unwrap_or("");
    let page: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("no result ({e}):\n{stdout}\n{stderr}"));
    eprintln!("page showed: {page}");
    assert!(page["failure"].is_null(), "the browser run failed: {}\n{stderr}", page["failure"]);
    page
}

#[test]
fn the_demo_page_calls_records_and_plays_in_chromium() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    // A node id, as behind a load balancer: the page must hang up at the session's own URL
    // (`/n/n1/sessions/...`), the one the balancer routes to this daemon.
    let daemon = common::Daemon::start(&["--node-id", "n1"]);
    let page = drive(&daemon, "demo-page.png", "call");
    assert_eq!(page["state"], "connected");
    assert_eq!(page["error"], "", "the page shows an error");

    // 10 ms packets: 100 a second, within 15 %.
    let rate = page["rate"].as_f64().unwrap();
    assert!((85.0..=115.0).contains(&rate), "inbound packets grew at {rate:.1}/s");
    let level = page["sampleLevel"].as_f64().unwrap();
    assert!(level > 0.01, "the sample's level is {level}");
    assert!(page["micLevel"].as_f64().unwrap() > 0.01, "the microphone meter did not move");
    assert!(page["codec"].as_str().unwrap().contains("opus"), "{}", page["codec"]);
    assert!(page["rtt"].as_str().unwrap().ends_with("ms"), "no round-trip time shown");
    assert_eq!(page["afterStop"]["state"], "closed");
    assert_eq!(page["afterStop"]["error"], "", "hanging up showed an error");
    let hangup = format!("DELETE /n/n1/sessions/{} -> 200", page["session"].as_str().unwrap());
    assert!(daemon.log_text().contains(&hangup), "the page did not hang up at the session's URL ({hangup})");

    let name = page["recording"].as_str().unwrap();
    assert!(name.starts_with(page["session"].as_str().unwrap()));
    let path = daemon.recording(name);
    daemon.wait_for_final(&path, Duration::from_secs(5));
    let (_, samples) = audio::read_wav(&path);
    let wav_len = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    // The page stamps connected and Stop on its own clock (playwright notices the state late).
    // A browser on a busy machine runs its page's events late too: 122 ms once in a full test
    // run; a file missing or adding a real stretch (the jitter buffer's second) still fails.
    let call_len = page["pageCallMs"].as_f64().unwrap() / 1000.0;
    assert!((wav_len - call_len).abs() < 0.2, "WAV {wav_len:.3} s vs call {call_len:.3} s");
    let hz = audio::dominant_hz(&samples[24_000..samples.len() - 4800], SAMPLE_RATE_HZ);
    assert!((hz - 660.0).abs() <= 3.0, "recorded {hz} Hz");
}

#[test]
fn the_demo_page_shows_the_servers_refusal() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let daemon = common::Daemon::start(&["--max-sessions", "1"]);
    let http = daemon.http;
    let busy = std::thread::spawn(move || {
        tapedeck_tools::call(&tapedeck_tools::CallPlan::tone(http, 440.0, Duration::from_secs(12)))
    });
    std::thread::sleep(Duration::from_millis(1500));
    let page = drive(&daemon, "demo-page-refused.png", "refused");
    let error = page["error"].as_str().unwrap();
    assert!(error.contains("503") && error.contains("session limit"), "the page showed {error:?}");
    assert_eq!(page["startEnabled"], true, "Start should be usable again");
    drop(daemon);
    let _ = busy.join();
}
