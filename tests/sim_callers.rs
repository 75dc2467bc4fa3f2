//! The simulation's callers do what their plans say (tests/common/sim.rs): a caller whose
//! media clock runs slow sends that much less audio, a stalled caller sends its backlog at
//! once, and `frames_sent` counts what went out. (Scenarios about how such calls are
//! recorded live in sim_scenarios.rs.)

#![allow(clippy::disallowed_methods)] // the simulation takes one real instant as its origin

mod common;

use std::time::Duration;

use common::sim::{seed, Finished, NetConfig, PeerPlan, Sim};
use tapedeck_core::engine::EndReason;
use tapedeck_core::media::capture::{parse, Op};
use tapedeck_core::media::recording::Packet;

/// A clean network, fast enough that a caller's last frame arrives before its hang-up
/// (frames still in flight when the session ends are sent but never recorded).
fn clean() -> NetConfig {
    NetConfig { latency: Duration::from_millis(5), ..Default::default() }
}

fn run(seed: u64, plan: PeerPlan) -> Finished {
    let limit = plan.hang_up_after + Duration::from_secs(10);
    let mut sim = Sim::new(seed, clean(), clean());
    let id = sim.add_peer(plan);
    let wall = std::time::Instant::now();
    sim.run(limit);
    eprintln!("simulated {:?} in {:?} of wall time", sim.now - sim.start, wall.elapsed());
    let f = sim.done.remove(&id).expect("the call ended and its recording was finalized");
    assert_eq!(f.reason, EndReason::Hangup);
    f
}

/// The packets the recorder was handed, in order.
fn packets(f: &Finished) -> Vec<Packet> {
    let (_, ops) = parse(&f.capture).expect("a capture");
    ops.into_iter().filter_map(|op| if let Op::Packet(p) = op { Some(p) } else { None }).collect()
}

#[test]
fn a_slow_caller_sends_its_share_of_real_time() {
    let mut plan = PeerPlan::tone(440, 10.0);
    plan.clock_rate = 0.95;
    let f = run(seed(21), plan);
    // Frames at k * 20 ms / 0.95 before the hang-up at 10 s: k = 0..=474.
    assert_eq!(f.frames_sent, 475);
    let p = packets(&f);
    assert_eq!(p.len(), 475, "every frame sent reached the recorder");
    let last = &p[p.len() - 1];
    assert_eq!(last.rtp_time - p[0].rtp_time, 474 * 960);
    assert!(last.arrival > Duration::from_millis(9_950), "sent at the slow clock's pace: {:?}", last.arrival);
}

#[test]
fn a_stalled_caller_sends_its_backlog_at_once() {
    let mut plan = PeerPlan::tone(440, 10.0);
    plan.stalls = vec![(Duration::from_secs(3), Duration::from_secs(1))];
    plan.silent = vec![(Duration::from_secs(6), Duration::from_secs(7))];
    let f = run(seed(22), plan);
    assert_eq!(f.frames_sent, 450, "all but the silent second");
    let p = packets(&f);
    assert_eq!(p.len(), 450);
    // Contiguous sequence numbers and RTP time up to the silent second.
    assert!(p[..300].windows(2).all(|w| w[1].seq == w[0].seq + 1 && w[1].rtp_time == w[0].rtp_time + 960));
    // The second held back (frames 150..200) and the frame due as it ended arrive together.
    // The second held back (frames 150..200) and the frame due as it ended go out in one
    // burst (str0m sends one packet per poll: 50 us apart in the simulation).
    let burst = &p[150..=200];
    assert!(burst[0].arrival >= Duration::from_secs(4), "the backlog went out early: {:?}", burst[0].arrival);
    assert!(burst[50].arrival - burst[0].arrival < Duration::from_millis(5), "not a burst");
    assert!(p[149].arrival < Duration::from_secs(3));
}
