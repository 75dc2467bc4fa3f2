//! Scenarios on the simulated network (tests/common/sim.rs): the real engine, str0m callers
//! and the recorder pipeline on a virtual clock with a seeded network. Each checks the WAV
//! bytes the recorder writes: as long as the call, the tone intact, nothing written twice.

#![allow(clippy::disallowed_methods)] // the simulation takes one real instant as its origin

mod common;

use std::time::Duration;

use common::sim::{seed, Finished, NetConfig, PeerPlan, Sim};
use tapedeck_core::engine::EndReason;
use tapedeck_core::testkit::audio;

fn samples(f: &Finished) -> Vec<i16> {
    let mut r = hound::WavReader::new(std::io::Cursor::new(&f.wav)).expect("a WAV");
    assert_eq!((r.spec().channels, r.spec().sample_rate, r.spec().bits_per_sample), (1, 48_000, 16));
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

/// The checks every scenario shares; returns the samples.
fn check(f: &Finished, hz: f64, min_block_share: f64) -> Vec<i16> {
    let s = samples(f);
    let expected = (f.duration.as_nanos() * 48_000 / 1_000_000_000) as usize;
    // As long as the call, or longer only by the last frame's audio, which may end past the
    // hang-up by up to a frame and the network's jitter: audio is never cut.
    assert!(s.len() >= expected, "WAV {} samples, shorter than the call {:?}", s.len(), f.duration);
    let past = &s[expected..];
    assert!(past.len() <= 960 + 720, "WAV runs {} samples past the call", past.len());
    assert!(past.is_empty() || audio::rms(past) > 0.01, "the WAV runs past the call with silence");
    let middle = &s[48_000.min(s.len() / 4)..s.len() - 24_000.min(s.len() / 4)];
    let got = audio::dominant_hz(middle, 48_000);
    assert!((got - hz).abs() <= 3.0, "dominant {got} Hz, want {hz}");
    if min_block_share > 0.0 {
        let full = audio::rms(middle);
        for (i, b) in middle.chunks(960).enumerate() {
            let r = audio::rms(b);
            assert!(r > full * min_block_share, "20 ms block {i} has RMS {r:.4} of {full:.4}: a hole");
        }
    }
    assert_eq!(f.repeated_seqs, f.stats.duplicates, "a repeated packet was not dropped by the recorder");
    s
}

fn one_call(seed: u64, up: NetConfig, plan: PeerPlan, limit: Duration) -> Finished {
    let mut sim = Sim::new(seed, up, NetConfig { latency: Duration::from_millis(20), ..Default::default() });
    let id = sim.add_peer(plan);
    let wall = std::time::Instant::now();
    sim.run(limit);
    eprintln!("simulated {:?} in {:?} of wall time", sim.now - sim.start, wall.elapsed());
    sim.done.remove(&id).expect("the session ended and its WAV was finalized")
}

fn wan(loss: f64) -> NetConfig {
    NetConfig { latency: Duration::from_millis(30), jitter: Duration::from_millis(15), loss, ..Default::default() }
}

#[test]
fn clean_call() {
    let f = one_call(seed(1), wan(0.0), PeerPlan::tone(440, 60.0), Duration::from_secs(70));
    assert_eq!(f.reason, EndReason::Hangup);
    check(&f, 440.0, 0.5);
    assert_eq!(f.stats.lost, 0);
}

#[test]
fn ten_percent_random_loss() {
    let f = one_call(seed(2), wan(0.10), PeerPlan::tone(440, 20.0), Duration::from_secs(30));
    check(&f, 440.0, 0.02);
    assert!(f.stats.lost > 40, "only {} packets lost", f.stats.lost);
    assert!(f.stats.concealed_fec + f.stats.concealed_plc > 0);
}

#[test]
fn thirty_percent_loss_in_bursts() {
    // Gilbert-Elliott: enter a burst with p=0.12, leave with p=0.3 (mean burst ~3 packets),
    // which loses about 30 % of all datagrams.
    let up = NetConfig { burst: Some((0.12, 0.3)), ..wan(0.0) };
    let f = one_call(seed(3), up, PeerPlan::tone(440, 20.0), Duration::from_secs(40));
    let s = check(&f, 440.0, 0.0);
    let lost_share = f.stats.lost as f64 / (f.stats.lost + f.stats.packets) as f64;
    assert!((0.2..0.4).contains(&lost_share), "lost {lost_share:.2} of packets");
    // Holes are capped: concealment, then silence, never more than a burst's length.
    let quiet_run = s.chunks(960).map(|b| audio::rms(b) < 0.001).fold((0, 0), |(run, max), q| {
        let run = if q { run + 1 } else { 0 };
        (run, max.max(run))
    });
    assert!(quiet_run.1 < 25, "a silent hole of {} blocks of 20 ms", quiet_run.1);
}

#[test]
fn reordering_and_duplication() {
    let up = NetConfig { reorder: 0.1, duplicate: 0.1, ..wan(0.0) };
    let f = one_call(seed(4), up, PeerPlan::tone(440, 20.0), Duration::from_secs(30));
    check(&f, 440.0, 0.5);
    assert_eq!(f.stats.late, 0, "packets reordered within the jitter buffer were dropped as late");
}

#[test]
fn dtx_style_silence() {
    let mut plan = PeerPlan::tone(440, 10.0);
    plan.silent = vec![(Duration::from_secs(4), Duration::from_secs(6))];
    let f = one_call(seed(5), wan(0.0), plan, Duration::from_secs(20));
    let s = check(&f, 440.0, 0.0);
    let at = |t: f64| (t * 48_000.0) as usize;
    // The call's audio lags the session start by the network latency (30-45 ms).
    assert!(s[at(4.1)..at(5.95)].iter().all(|&v| v == 0), "the pause is not silence");
    assert!(audio::rms(&s[at(3.0)..at(3.9)]) > 0.05 && audio::rms(&s[at(6.2)..at(9.0)]) > 0.05);
}

#[test]
fn a_caller_that_vanishes() {
    let mut plan = PeerPlan::tone(440, 60.0);
    plan.vanish_after = Some(Duration::from_secs(5));
    let f = one_call(seed(6), wan(0.0), plan, Duration::from_secs(30));
    assert_eq!(f.reason, EndReason::IceTimeout);
    // Vanished at 5 s; the engine gives up after twice the 1 s disconnect timeout.
    assert!(f.duration > Duration::from_secs(6) && f.duration < Duration::from_millis(7200), "{:?}", f.duration);
    let s = check(&f, 440.0, 0.0);
    assert!(audio::rms(&s[48_000 * 2..48_000 * 4]) > 0.05, "the talk before vanishing is missing");
}

#[test]
fn fifty_callers_at_once() {
    let mut sim = Sim::new(seed(7), wan(0.02), NetConfig { latency: Duration::from_millis(20), ..Default::default() });
    let ids: Vec<_> = (0..50).map(|i| sim.add_peer(PeerPlan::tone(200 + 20 * i, 6.0))).collect();
    sim.run(Duration::from_secs(20));
    for (i, id) in ids.iter().enumerate() {
        let f = sim.done.get(id).unwrap_or_else(|| panic!("caller {i} never finished"));
        check(f, f64::from(200 + 20 * i as u32), 0.0);
    }
}

#[test]
fn same_seed_same_bytes() {
    let run = || {
        let up = NetConfig { reorder: 0.05, duplicate: 0.05, ..wan(0.1) };
        one_call(seed(8), up, PeerPlan::tone(440, 8.0), Duration::from_secs(15))
    };
    let (a, b) = (run(), run());
    assert!(a.capture == b.capture, "same seed, different captures");
    assert!(a.wav == b.wav, "same seed, different WAV bytes");
    // And the capture replays to the very same bytes.
    let mut replayed = std::io::Cursor::new(Vec::new());
    tapedeck_core::media::recording::replay(&a.capture, &mut replayed).unwrap();
    assert!(replayed.into_inner() == a.wav, "replay differs from the recording");
    let other = {
        let up = NetConfig { reorder: 0.05, duplicate: 0.05, ..wan(0.1) };
        one_call(seed(8) + 1, up, PeerPlan::tone(440, 8.0), Duration::from_secs(15))
    };
    assert!(other.wav != a.wav, "a different seed gave the same bytes: is the seed used?");
}
