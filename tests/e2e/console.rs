//! The operator's console in a real browser (Debian's chromium, driven by playwright-core as
//! the demo page is): with a token set, two live calls and three finished recordings, the
//! page asks for the token, lists both calls with durations that move, hangs one up with its
//! button (the call ends in the daemon), plays a recording to its end and draws its
//! waveform. The screenshot lands in `target/console.png` (the README's is `docs/console.png`).
//!
//! Needs `chromium` and `npm ci` in tests/browser (`./test.sh` does both); never skips.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tapedeck_tools::{call, CallPlan};

const TOKEN: &str = "console-Token_9";

#[test]
fn the_console_shows_calls_hangs_up_and_plays_recordings_in_chromium() {
    let daemon = common::Daemon::start(&["--token", TOKEN]);
    let plan =
        CallPlan { token: Some(TOKEN.into()), ..CallPlan::tone(daemon.http, 440.0, Duration::from_millis(1200)) };
    for _ in 0..3 {
        let report = call(&plan);
        assert_eq!(report.error, None, "{report:?}");
        daemon.recorded(&report);
    }
    // Two live calls, longer than the page needs; the one the page hangs up ends early.
    let long = CallPlan { talk: CallPlan::tone(daemon.http, 440.0, Duration::from_secs(14)).talk, ..plan.clone() };
    let live: Vec<_> = (0..2)
        .map(|_| {
            let plan = long.clone();
            std::thread::spawn(move || call(&plan))
        })
        .collect();

    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` in tests/browser (./test.sh does)"
    );
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console.png");
    let out = Command::new("node")
        .current_dir(&browser_dir)
        .arg("console.mjs")
        .arg(format!("http://{}/console", daemon.http))
        .arg(TOKEN)
        .arg(&shot)
        .output()
        .expect("run node (install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let page: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no result ({e}):\n{stdout}\n{stderr}"));
    eprintln!("the console showed: {page}");
    assert!(page["failure"].is_null(), "the browser run failed: {}\n{stderr}", page["failure"]);
    assert_eq!(page["askedForToken"], true);

    // Both calls, with durations that moved by about the 2.5 s between the readings (the page polls every second).
    let (first, second) = (page["first"].as_array().unwrap(), page["second"].as_array().unwrap());
    assert_eq!((first.len(), second.len()), (2, 2));
    for (a, b) in first.iter().zip(second) {
        assert_eq!(a["session"], b["session"]);
        let moved = b["duration"].as_f64().unwrap() - a["duration"].as_f64().unwrap();
        assert!((1.0..=4.0).contains(&moved), "the duration moved {moved:.2} s in 2.5 s: {a} {b}");
        assert_eq!(b["client"], "127.0.0.1", "with a token, the caller's address");
    }
    assert_eq!(page["plots"], 5);

    // The hung-up call is gone from the page and ended in the daemon; the other goes on.
    let victim = page["hungUp"].as_str().unwrap();
    let after = page["after"].as_array().unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after[0]["session"].as_str(), Some(victim));
    assert!(daemon.log_text().contains(&format!("DELETE /sessions/{victim} -> 200")), "the button hung up {victim}");

    // The newest recording is the hung-up call's, ended by the hang-up, played to its end.
    let playing = page["playing"].as_str().unwrap();
    assert!(playing.starts_with(victim), "the newest recording is {playing}, not {victim}'s");
    assert_eq!(page["endReason"], "hang-up");
    assert_eq!(page["ended"], true);
    let played = page["played"].as_f64().unwrap();
    assert!(played > 3.0, "the player's duration is {played} s");
    assert!(page["waveform"].as_u64().unwrap() > 100, "the waveform has {} non-zero columns", page["waveform"]);
    assert_eq!(page["error"], "", "the page showed an error");
    assert!(shot.exists());

    drop(daemon);
    for t in live {
        let _ = t.join();
    }
}
