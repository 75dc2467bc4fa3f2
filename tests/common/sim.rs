//! A simulated network: the core's test world (`tapedeck_core::testkit::world`: the real
//! engine and N offering str0m callers in one process, on a virtual clock) on its seeded
//! network (latency, jitter, random and burst loss, reordering, duplication), with callers
//! that follow a plan and the daemon's recorder. Time jumps straight to the next event, so a
//! minute of calls takes well under a second per caller, and a two-hour call about half a
//! minute (a third of it decoding the caller's audio); the cost is linear in the call's
//! length. What the engine plays the callers is one loop of the sample, encoded once (callers
//! never decode it).
//!
//! The recorder runs here too, deterministically: the daemon's own recorder pipeline
//! (`workers::recorder::Pipeline`, one worker's worth) with an in-memory storage and a
//! telemetry of its own. Each step's engine outputs (the world's `outputs`) become one batch
//! with the virtual `now`, as the event loop hands them to a worker: `Start` on
//! `Output::Connected`, `Packet` on `Output::Media`, `End` on `Output::Ended`. The simulation
//! also steps at the pipeline's next tick, so recordings advance and their headers are
//! refreshed every 200 ms of virtual time, exactly as in the daemon. A finished session's WAV
//! and capture are taken from the storage into [`Finished`].
//!
//! Callers (`sim/caller.rs`) follow a [`PeerPlan`]: a tone, silent stretches, a hang-up or a
//! vanishing, and two knobs for callers whose media clock misbehaves:
//!
//! - `clock_rate`: the caller's media clock runs at this speed against (virtual) real time:
//!   it sends one 20 ms frame (RTP +960) every `20 ms / clock_rate`. 0.95 sends 95 % of real
//!   time's audio (a slow sender), 1.05 is a fast one.
//! - `stalls`: `(at, length)` since connected: the caller goes on capturing frames (RTP time
//!   and sequence numbers keep counting) but sends none for `length`, then writes the whole
//!   backlog to str0m in one instant, then carries on in real time (a phone app resumed from
//!   the background).
//!
//! [`Finished::frames_sent`] counts the audio frames a caller wrote to str0m (not those of
//! its silent stretches), so a test can check that every frame sent is in the file.
//!
//! Same seed, same scenario: the same events in the same order and byte-identical WAVs (DTLS
//! keys differ from run to run, but nothing the recorder sees depends on them).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tapedeck::telemetry::Telemetry;
use tapedeck::workers::recorder::pipeline::capture_path;
use tapedeck::workers::recorder::{Ended, MemStorage, Pipeline, RecorderMsg, Summary};
use tapedeck_core::engine::{EndReason, EngineConfig, Output, Ptime, SessionId};
use tapedeck_core::media::recording::{RecordingConfig, RecordingStats};
use tapedeck_core::media::sample::LoopEncoder;
use tapedeck_core::testkit::world::{caller_addr, Frames, SeededNet, World};

mod caller;

pub use caller::PeerPlan;
use caller::PlanScript;
#[allow(unused_imports)] // not every test binary replays a seed
pub use tapedeck_core::testkit::rng::seed;
pub use tapedeck_core::testkit::world::NetConfig;

/// Where the simulated recorder writes its captures (in memory).
const CAPTURES: &str = "captures";

/// A finished session's recording.
#[derive(Debug, Clone)]
pub struct Finished {
    pub wav: Vec<u8>,
    pub capture: Vec<u8>,
    pub stats: RecordingStats,
    pub duration: Duration,
    pub reason: EndReason,
    /// Media packets the engine handed over whose sequence number it had handed over before.
    pub repeated_seqs: u64,
    /// Audio frames the caller wrote to str0m (not counting its silent stretches).
    pub frames_sent: u64,
}

/// A connected session, as the simulation sees it (its recording is in the pipeline).
struct Live {
    path: PathBuf,
    seqs: BTreeSet<u64>,
    repeated: u64,
    reason: Option<EndReason>,
}

/// The simulated world: the core's world on a seeded network (read its clock, `now` and
/// `start`, through `Deref`), and the recordings.
pub struct Sim {
    world: World<SeededNet>,
    live: BTreeMap<SessionId, Live>,
    pub done: BTreeMap<SessionId, Finished>,
    /// The daemon's recorder pipeline, writing in memory, and the batch for this step.
    recorders: Pipeline<MemStorage>,
    batch: Vec<RecorderMsg>,
    /// What the recorder pipeline publishes (progress, errors, lag).
    pub telemetry: Arc<Telemetry>,
}

impl Deref for Sim {
    type Target = World<SeededNet>;

    fn deref(&self) -> &World<SeededNet> {
        &self.world
    }
}

/// One loop of the sample in 10 ms frames. Callers never decode what the engine plays them,
/// so the simulation repeats one loop's frames instead of encoding every frame anew.
fn sample_frames() -> Frames {
    static FRAMES: OnceLock<Frames> = OnceLock::new();
    let frames = FRAMES.get_or_init(|| {
        let pcm = tapedeck::workers::encoder::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample.wav"))
            .expect("sample");
        let n = pcm.len() / Ptime::Ms10.samples();
        let mut encoder = LoopEncoder::new(pcm.into(), Ptime::Ms10).expect("an encoder");
        Arc::new((0..n.max(1)).map(|_| encoder.next_frame().expect("encoded")).collect())
    });
    frames.clone()
}

impl Sim {
    /// A world with the given seed and network conditions (up: callers to server).
    pub fn new(seed: u64, up: NetConfig, down: NetConfig) -> Self {
        // str0m's non-cryptographic randomness (SSRCs, sequence numbers, ICE credentials).
        fastrand::seed(seed);
        let config = EngineConfig {
            ptime: Ptime::Ms10,
            disconnect_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            max_call_duration: None,
            max_sessions: 1000,
            max_connecting_per_client: 1000,
            stun_timeout: Duration::from_secs(5),
        };
        let telemetry = Arc::new(Telemetry::new());
        let recording = RecordingConfig { jitter_depth: Duration::from_millis(1000) };
        let captures = Some(PathBuf::from(CAPTURES));
        let recorders = Pipeline::new(recording, captures, MemStorage::default(), telemetry.clone());
        Sim {
            world: World::with_network(config, sample_frames(), SeededNet::new(seed, up, down)),
            live: BTreeMap::new(),
            done: BTreeMap::new(),
            recorders,
            batch: Vec::new(),
            telemetry,
        }
    }

    /// Adds a caller that offers now; returns its session id.
    pub fn add_peer(&mut self, plan: PeerPlan) -> SessionId {
        let n = self.world.callers.len() as u128 + 1;
        let id = SessionId::from_u128(n);
        let script = Box::new(PlanScript::new(plan));
        self.world.offer(id, caller_addr(n), None, script).expect("session added");
        id
    }

    /// Runs until every session has ended (or `limit` of virtual time passed).
    pub fn run(&mut self, limit: Duration) {
        let end = self.world.start + limit;
        while self.world.now < end {
            let callers = self.world.callers.len();
            if callers > 0 && self.live.is_empty() && self.done.len() == callers {
                return;
            }
            self.step();
            let tick = self.recorders.next_tick();
            self.world.advance(end, tick);
        }
    }

    /// One step of the world; its engine outputs go to the recorder pipeline.
    fn step(&mut self) {
        self.world.step();
        for output in std::mem::take(&mut self.world.outputs) {
            self.record(output);
        }
        self.feed_recorders();
    }

    /// Turns an engine output into a message for the recorder pipeline, as the event loop does.
    fn record(&mut self, output: Output) {
        match output {
            Output::Connected { session, at } => {
                let path = PathBuf::from(format!("{session}.wav"));
                let live = Live { path: path.clone(), seqs: BTreeSet::new(), repeated: 0, reason: None };
                self.live.insert(session, live);
                self.batch.push(RecorderMsg::Start { session, at, path });
            }
            Output::Media { session, packet } => {
                if let Some(l) = self.live.get_mut(&session) {
                    if !l.seqs.insert(packet.seq) {
                        l.repeated += 1;
                    }
                }
                self.batch.push(RecorderMsg::Packet { session, packet });
            }
            Output::Ended { session, reason, duration, counters } => {
                // As the event loop: a session that never connected has nothing to end.
                let (Some(l), Some(duration)) = (self.live.get_mut(&session), duration) else { return };
                l.reason = Some(reason);
                let summary = Summary { reason, counters: Some(counters) };
                self.batch.push(RecorderMsg::End { session, duration, summary });
            }
            Output::Transmit { .. } | Output::Timeout(_) => {}
        }
    }

    /// Hands this step's messages to the recorder pipeline as one batch at `now`, as the
    /// event loop does (and an empty batch when a tick is due).
    fn feed_recorders(&mut self) {
        let now = self.world.now;
        let due = self.recorders.next_tick().is_some_and(|t| t <= now);
        if self.batch.is_empty() && !due {
            return;
        }
        let ended = self.recorders.handle_batch(now, std::mem::take(&mut self.batch));
        for e in ended {
            self.finished(e);
        }
    }

    /// Takes a finalized recording's WAV and capture from the storage.
    fn finished(&mut self, e: Ended) {
        let Some(live) = self.live.remove(&e.session) else { return };
        let storage = self.recorders.storage_mut();
        let wav = storage.take(&live.path).expect("the WAV is in memory");
        let capture = capture_path(Path::new(CAPTURES), &live.path).and_then(|p| storage.take(&p));
        let frames_sent = self.world.callers.iter().find(|c| c.id == e.session).map_or(0, |c| c.frames_sent);
        let finished = Finished {
            wav,
            capture: capture.expect("the capture is in memory"),
            stats: e.stats.expect("writing in memory does not fail"),
            duration: e.duration,
            reason: live.reason.expect("the session ended"),
            repeated_seqs: live.repeated,
            frames_sent,
        };
        self.done.insert(e.session, finished);
    }
}
