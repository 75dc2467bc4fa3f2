//! Callers whose media clock is not the server's, on the simulated network (the real engine
//! and the daemon's own recorder pipeline on a virtual clock): slow and fast clocks, a stall
//! with its backlog, and a two-hour call drifting by 300 ppm with a pause every minute.
//! Every frame sent is in the file, with no hole inside audio sent continuously.

#![allow(clippy::disallowed_methods)] // the simulation takes one real instant as its origin

mod common;

use std::time::Duration;

use common::sim::{seed, Finished, NetConfig, PeerPlan, Sim};

fn samples(f: &Finished) -> Vec<i16> {
    let mut r = hound::WavReader::new(std::io::Cursor::new(&f.wav)).expect("a WAV");
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

fn wan() -> NetConfig {
    NetConfig { latency: Duration::from_millis(30), jitter: Duration::from_millis(15), ..Default::default() }
}

fn one_call(seed: u64, plan: PeerPlan, limit: Duration) -> Finished {
    let mut sim = Sim::new(seed, wan(), NetConfig { latency: Duration::from_millis(20), ..Default::default() });
    let id = sim.add_peer(plan);
    let wall = std::time::Instant::now();
    sim.run(limit);
    eprintln!("simulated {:?} in {:?} of wall time", sim.now - sim.start, wall.elapsed());
    sim.done.remove(&id).expect("the session ended and its WAV was finalized")
}

/// Runs of exact zeros at least `min` samples long: (start, length).
fn zero_runs(s: &[i16], min: usize) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, &v) in s.iter().chain(std::iter::once(&1)).enumerate() {
        match (v == 0, start) {
            (true, None) => start = Some(i),
            (false, Some(a)) => {
                if i - a >= min {
                    runs.push((a, i - a));
                }
                start = None;
            }
            _ => {}
        }
    }
    runs
}

/// Every frame the server received is in the file once, nothing was dropped, and the server
/// received all the caller sent but the last frames, still in flight at the hang-up.
fn assert_every_frame(f: &Finished, what: &str) {
    let st = &f.stats;
    assert!(f.frames_sent > 0, "{what}: nothing sent");
    assert_eq!(st.recorded, st.packets, "{what}: frames in the file vs received: {st:?}");
    assert_eq!((st.late, st.overflow, st.lost, st.duplicates), (0, 0, 0, 0), "{what}: {st:?}");
    assert!(f.frames_sent - st.packets <= 3, "{what}: sent {} frames, {} arrived", f.frames_sent, st.packets);
}

/// The first and last non-zero samples.
fn audio_span(s: &[i16]) -> (usize, usize) {
    (s.iter().position(|&v| v != 0).unwrap(), s.iter().rposition(|&v| v != 0).unwrap() + 1)
}

#[test]
fn slow_and_fast_clocks() {
    for (k, rate) in [0.90, 0.95, 1.05, 1.10].into_iter().enumerate() {
        let what = format!("{rate}x");
        let mut plan = PeerPlan::tone(440, 30.0);
        plan.clock_rate = rate;
        let f = one_call(seed(20 + k as u64), plan, Duration::from_secs(40));
        assert_every_frame(&f, &what);
        let s = samples(&f);
        let (first, end) = audio_span(&s);
        // No hole inside the audio: it was sent continuously.
        assert_eq!(zero_runs(&s[first..end], 48), vec![], "{what}: holes inside the audio");
        let sent_s = f.stats.packets as f64 * 0.02;
        let call = f.duration.as_secs_f64();
        let in_file = (end - first) as f64 / 48_000.0;
        eprintln!(
            "{what}: sent {sent_s:.2} s, in the file {in_file:.2} s of audio, file {:.2} s, call {call:.2} s; {:?}",
            s.len() as f64 / 48_000.0,
            f.stats
        );
        assert!(in_file >= sent_s - 0.001, "{what}: {in_file} s of audio for {sent_s} s sent");
        let len = s.len() as f64 / 48_000.0;
        assert!(
            len >= call - 0.001 && len <= call.max(in_file + first as f64 / 48_000.0) + 0.001,
            "{what}: file {len} s"
        );
        let ppm = f.stats.clock_ppm.expect("a clock rate after 30 s");
        let want = ((rate - 1.0) * 1e6) as i32;
        assert!((ppm - want).abs() < 2_000, "{what}: {ppm} ppm, want {want}");
    }
}

#[test]
fn a_three_second_stall_and_its_backlog() {
    let mut plan = PeerPlan::tone(440, 20.0);
    plan.stalls = vec![(Duration::from_secs(8), Duration::from_secs(3))];
    // A path with latency but no per-packet jitter: the simulated jitter is drawn for each
    // datagram, which would shuffle a burst sent microseconds apart by up to 15 ms (hundreds
    // of places, far beyond str0m's 10-packet reordering window); a real path's queues keep
    // a burst in order.
    let mut sim = Sim::new(seed(30), NetConfig { latency: Duration::from_millis(40), ..Default::default() }, wan());
    let id = sim.add_peer(plan);
    sim.run(Duration::from_secs(30));
    let f = sim.done.remove(&id).expect("the session ended");
    assert_every_frame(&f, "stall");
    let s = samples(&f);
    let (first, end) = audio_span(&s);
    assert_eq!(zero_runs(&s[first..end], 48), vec![], "a hole inside the audio");
    assert_eq!(f.stats.reanchors, 0);
    let sent_s = f.stats.packets as f64 * 0.02;
    assert!((end - first) as f64 / 48_000.0 >= sent_s - 0.001, "audio missing");
    eprintln!(
        "stall: sent {sent_s:.2} s, in the file {:.2} s of audio, file {:.2} s, call {:.2} s",
        (end - first) as f64 / 48_000.0,
        s.len() as f64 / 48_000.0,
        f.duration.as_secs_f64()
    );
}

#[test]
fn two_hours_at_300_ppm_with_a_pause_every_minute() {
    // Both callers in one world: the server's sample is encoded once for the two.
    let mut sim = Sim::new(seed(40), wan(), NetConfig { latency: Duration::from_millis(20), ..Default::default() });
    let rates = [1.0 - 300e-6, 1.0 + 300e-6];
    let ids: Vec<_> = rates
        .iter()
        .map(|&rate| {
            let mut plan = PeerPlan::tone(440, 7_200.0);
            plan.clock_rate = rate;
            plan.silent = (1..120).map(|m| (Duration::from_secs(60 * m), Duration::from_secs(60 * m + 1))).collect();
            sim.add_peer(plan)
        })
        .collect();
    let wall = std::time::Instant::now();
    sim.run(Duration::from_secs(7_300));
    eprintln!("simulated {:?} in {:?} of wall time", sim.now - sim.start, wall.elapsed());
    for (rate, id) in rates.into_iter().zip(ids) {
        let what = format!("{:+.0} ppm", (rate - 1.0) * 1e6);
        let f = sim.done.remove(&id).expect("the session ended");
        assert_every_frame(&f, &what);
        let s = samples(&f);
        let call = f.duration.as_secs_f64();
        let len = s.len() as f64 / 48_000.0;
        let (first, end) = audio_span(&s);
        eprintln!(
            "{what}: call {call:.3} s, file {len:.3} s, audio ends at {:.3} s; {:?}",
            end as f64 / 48_000.0,
            f.stats
        );
        assert!((len - call).abs() <= 0.1, "{what}: file {len} s for a call of {call} s");
        // The audio ends where the call did (its last packet came a network delay before
        // the hang-up), not the 2.16 s of drift away.
        assert!((end as f64 / 48_000.0 - call).abs() <= 0.1, "{what}: audio ends at {end} for a call of {call} s");
        // The only silences inside the audio are the 119 pauses, each about 1 s.
        let runs = zero_runs(&s[first..end], 960);
        assert_eq!(runs.len(), 119, "{what}: {} silent stretches", runs.len());
        for (at, n) in runs {
            assert!((n as f64 / 48_000.0 - 1.0).abs() < 0.1, "{what}: a pause of {n} samples at {at}");
        }
        let ppm = f.stats.clock_ppm.unwrap();
        assert!((ppm - ((rate - 1.0) * 1e6).round() as i32).abs() < 20, "{what}: {ppm} ppm");
    }
}
