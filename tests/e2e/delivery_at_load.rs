//! Issue 17's "done when": 50 callers from `tapedeck-load`, recorded `--format both` and
//! uploaded to a real S3 server (moto on 127.0.0.1): 100 complete recordings in the bucket,
//! each announced by exactly one webhook whose signature verifies and whose SHA-256 is the
//! object's.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::common::s3::{upload_flags, Moto};
use crate::common::{self, Daemon};
use crate::webhooks::{secret, Mode, Receiver};
use tapedeck_core::testkit::audio::{decode_ogg_opus, wav_from_bytes};

const CALLERS: usize = 50;

#[test]
fn fifty_callers_in_both_formats_end_as_a_hundred_announced_objects() {
    let moto = Moto::start();
    moto.create_bucket("calls");
    let receiver = Receiver::start(Mode::Ok);
    let mut args = upload_flags(moto.port, "calls", "rec");
    let url = receiver.url();
    let secret = secret();
    args.extend(["--format", "both", "--keep-local", "--webhook", &url, "--webhook-secret", &secret].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = Daemon::start_with(tempfile::tempdir().unwrap(), None, &args);

    let report = common::run_load(
        &daemon,
        &["--callers", &CALLERS.to_string(), "--seconds", "6", "--ramp", "50"],
        Duration::from_secs(120),
    );
    assert_eq!(report["connected"], CALLERS, "{report}");
    assert_eq!(report["recordings_complete"], CALLERS, "every frame of every caller in its WAV: {report}");

    let objects = moto.wait_for_objects("calls", "rec/", 2 * CALLERS, Duration::from_secs(60));
    assert_eq!(objects.len(), 2 * CALLERS, "{objects:?}");
    let start = Instant::now();
    let finished = loop {
        let got: Vec<_> =
            receiver.deliveries().into_iter().filter(|d| d.json()["type"] == "recording.finished").collect();
        if got.len() >= 2 * CALLERS || start.elapsed() > Duration::from_secs(30) {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(500)); // a duplicate would have come by now
    let finished_now = receiver.deliveries().iter().filter(|d| d.json()["type"] == "recording.finished").count();
    assert_eq!(finished_now, 2 * CALLERS, "one recording.finished per file, no more");

    // One announcement per object, signed, naming its key and the object's own SHA-256.
    let mut announced: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for d in &finished {
        assert!(d.signed(), "a signature that does not verify: {}", d.body);
        let data = d.json()["data"].clone();
        let key = data["key"].as_str().expect("the key").to_owned();
        assert!(announced.insert(key.clone(), data).is_none(), "{key} announced twice");
    }
    let keys: Vec<&String> = announced.keys().collect();
    let listed: Vec<&String> = objects.iter().map(|(k, _, _)| k).collect();
    assert_eq!(keys, listed, "the announced keys are the objects in the bucket");

    let mut wav_samples = BTreeMap::new();
    for (key, _, _) in objects.iter().filter(|(k, _, _)| k.ends_with(".wav")) {
        let bytes = moto.get("calls", key);
        let name = key.strip_prefix("rec/").unwrap();
        assert!(bytes == std::fs::read(daemon.recording(name)).unwrap(), "{key} is the judged WAV");
        wav_samples.insert(name.trim_end_matches(".wav").to_owned(), wav_from_bytes(&bytes).1.len());
    }
    assert_eq!(wav_samples.len(), CALLERS);
    for (key, _, _) in &objects {
        let bytes = moto.get("calls", key);
        let data = &announced[key];
        let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(data["sha256"], sha.as_str(), "{key}: {data}");
        assert_eq!(data["bytes"].as_u64(), Some(bytes.len() as u64), "{key}");
        if let Some(stem) = key.strip_prefix("rec/").and_then(|n| n.strip_suffix(".ogg")) {
            // The Ogg of a call is complete: it plays exactly as long as that call's WAV.
            assert_eq!(data["format"], "ogg");
            assert_eq!(decode_ogg_opus(&bytes).len(), wav_samples[stem], "{key} against its WAV");
        }
    }
}
