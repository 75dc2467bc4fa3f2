//! Committed captures (tests/data/*.tdcap: a clean call, a lossy call, a call with a DTX
//! pause) replay to WAVs with known SHA-256 hashes. A change in the recorder, the jitter
//! buffer or the decoder that alters a single byte of a recording fails here.
//!
//! To accept an intended change, regenerate with `TAPEDECK_WRITE_CAPTURES=1 cargo test --test
//! replay_regression` and commit the new files (say why in the commit).

#![allow(clippy::disallowed_methods)] // the simulation takes one real instant as its origin

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;
use tapedeck_core::media::SAMPLE_RATE_HZ;

use common::sim::{NetConfig, PeerPlan, Sim};
use sha2::{Digest, Sha256};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn replay_hash(capture: &[u8]) -> String {
    let mut wav = std::io::Cursor::new(Vec::new());
    tapedeck_core::media::recording::replay(capture, &mut wav).expect("replay");
    format!("{:x}", Sha256::digest(wav.get_ref()))
}

/// The three committed calls, made on the simulated network.
fn make(name: &str) -> Vec<u8> {
    let wan = NetConfig { latency: Duration::from_millis(30), jitter: Duration::from_millis(10), ..Default::default() };
    let (seed, up, plan) = match name {
        "clean" => (11, wan, PeerPlan::tone(440, 3.0)),
        "lossy" => (12, NetConfig { loss: 0.15, reorder: 0.05, duplicate: 0.05, ..wan }, PeerPlan::tone(523, 3.0)),
        "dtx" => {
            let mut plan = PeerPlan::tone(330, 3.0);
            plan.silent = vec![(Duration::from_millis(1000), Duration::from_millis(2000))];
            (13, wan, plan)
        }
        "drift" => {
            // A caller whose clock runs at 0.95x: 0.2 s behind by its pause, which takes it up.
            let mut plan = PeerPlan::tone(392, 8.0);
            plan.clock_rate = 0.95;
            plan.silent = vec![(Duration::from_millis(4000), Duration::from_millis(5000))];
            (14, wan, plan)
        }
        _ => unreachable!("unknown capture {name}"),
    };
    let mut sim = Sim::new(seed, up, NetConfig::default());
    let id = sim.add_peer(plan);
    sim.run(Duration::from_secs(10));
    sim.done.remove(&id).expect("finished").capture
}

#[test]
fn committed_captures_replay_to_known_bytes() {
    // TAPEDECK_WRITE_CAPTURES=1 rewrites every capture; a list (drift,dtx) only those named.
    let chosen = std::env::var("TAPEDECK_WRITE_CAPTURES").unwrap_or_default();
    for name in ["clean", "lossy", "dtx", "drift"] {
        let write = chosen == "1" || chosen.split(',').any(|c| c == name);
        let capture_path = data().join(format!("{name}.tdcap"));
        let hash_path = data().join(format!("{name}.wav.sha256"));
        if write {
            std::fs::create_dir_all(data()).unwrap();
            let capture = make(name);
            std::fs::write(&hash_path, replay_hash(&capture) + "\n").unwrap();
            std::fs::write(&capture_path, capture).unwrap();
        }
        let capture = std::fs::read(&capture_path).unwrap_or_else(|e| panic!("{}: {e}", capture_path.display()));
        let want = std::fs::read_to_string(&hash_path).unwrap();
        let got = replay_hash(&capture);
        assert_eq!(got, want.trim(), "{name}: the replayed WAV changed");
        assert_eq!(replay_hash(&capture), got, "{name}: two replays differ");
    }
}

#[test]
fn committed_captures_hold_what_their_names_say() {
    for (name, hz) in [("clean", 440.0), ("lossy", 523.0), ("dtx", 330.0), ("drift", 392.0)] {
        let capture = std::fs::read(data().join(format!("{name}.tdcap"))).unwrap();
        let mut wav = std::io::Cursor::new(Vec::new());
        let stats = tapedeck_core::media::recording::replay(&capture, &mut wav).unwrap();
        let samples: Vec<i16> = hound::WavReader::new(std::io::Cursor::new(wav.into_inner()))
            .unwrap()
            .samples()
            .map(|s| s.unwrap())
            .collect();
        let got = tapedeck_core::testkit::audio::dominant_hz(&samples, SAMPLE_RATE_HZ);
        assert!((got - hz).abs() <= 3.0, "{name}: {got} Hz");
        match name {
            "clean" => assert_eq!(stats.lost, 0),
            "lossy" => assert!(stats.lost > 5, "{name}: {stats:?}"),
            "drift" => {
                assert_eq!((stats.recorded, stats.late, stats.lost), (stats.packets, 0, 0), "{name}: {stats:?}");
                assert!(stats.drift_samples > 2_400, "{name}: the pause took up no drift: {stats:?}");
            }
            _ => assert!(stats.silence_samples >= 48_000 - 2_000, "{name}: {stats:?}"),
        }
    }
}
