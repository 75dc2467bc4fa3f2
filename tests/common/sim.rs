//! A simulated network: the real engine and N offering str0m callers in one process, on a
//! virtual clock, with a seeded network (latency, jitter, random and burst loss, reordering,
//! duplication). Time jumps straight to the next event, so a minute of calls takes well
//! under a second per caller, and a two-hour call about half a minute (a third of it decoding
//! the caller's audio); the cost is linear in the call's length. What the engine plays the
//! callers is one loop of the sample, encoded once (callers never decode it).
//!
//! The recorder runs here too, deterministically: the daemon's own recorder pipeline
//! (`workers::recorder::Pipeline`, one worker's worth) with an in-memory storage and a
//! telemetry of its own. Each step's engine outputs become one batch with the virtual `now`,
//! as the event loop hands them to a worker: `Start` on `Output::Connected`, `Packet` on
//! `Output::Media`, `End` on `Output::Ended`. The simulation also steps at the pipeline's
//! next tick, so recordings advance and their headers are refreshed every 200 ms of virtual
//! time, exactly as in the daemon. A finished session's WAV and capture are taken from the
//! storage into [`Finished`].
//!
//! Callers (`sim/caller.rs`) follow a [`PeerPlan`]: a tone, silent stretches, a hang-up or a vanishing, and
//! two knobs for callers whose media clock misbehaves:
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

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use tapedeck::telemetry::Telemetry;
use tapedeck::workers::recorder::pipeline::capture_path;
use tapedeck::workers::recorder::{Ended, MemStorage, Pipeline, RecorderMsg, Summary};
use tapedeck_core::engine::{
    accept_offer, EndReason, Engine, EngineConfig, Input, OfferParams, Output, Ptime, SessionId,
};
use tapedeck_core::media::recording::{RecordingConfig, RecordingStats};
use tapedeck_core::media::sample::LoopEncoder;
use tapedeck_tools::{offering, Offering};

mod caller;

pub use caller::PeerPlan;
use caller::{Frames, Peer};

const SERVER: &str = "127.0.0.1:50000";
/// Where the simulated recorder writes its captures (in memory).
const CAPTURES: &str = "captures";

/// Conditions on one direction of the network.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetConfig {
    pub latency: Duration,
    /// Extra delay, uniform in [0, jitter).
    pub jitter: Duration,
    /// Probability a datagram is lost (independent losses).
    pub loss: f64,
    /// Gilbert-Elliott bursts: (probability to enter the lossy state, to leave it). In the
    /// lossy state every datagram is lost.
    pub burst: Option<(f64, f64)>,
    /// Probability a datagram is held back 20 to 60 ms (arrives after later ones).
    pub reorder: f64,
    /// Probability a datagram arrives twice.
    pub duplicate: f64,
}

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

struct Datagram {
    at: Instant,
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for Datagram {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl Eq for Datagram {}
impl PartialOrd for Datagram {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Datagram {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(o.at, o.order))
    }
}

#[allow(unused_imports)] // not every test binary replays a seed
pub use tapedeck_core::testkit::rng::{seed, Rng};

/// The simulated world.
pub struct Sim {
    pub now: Instant,
    pub start: Instant,
    rng: Rng,
    engine: Engine,
    params: OfferParams,
    server: SocketAddr,
    peers: Vec<Peer>,
    inflight: BinaryHeap<Reverse<Datagram>>,
    order: u64,
    live: BTreeMap<SessionId, Live>,
    pub done: BTreeMap<SessionId, Finished>,
    /// The daemon's recorder pipeline, writing in memory, and the batch for this step.
    recorders: Pipeline<MemStorage>,
    batch: Vec<RecorderMsg>,
    /// What the recorder pipeline publishes (progress, errors, lag).
    pub telemetry: Arc<Telemetry>,
    /// The sample's frames, and the next one to play.
    sample: Frames,
    sample_next: usize,
    up: NetConfig,
    down: NetConfig,
    up_bursting: bool,
    down_bursting: bool,
    engine_deadline: Instant,
}

fn params() -> OfferParams {
    static CERT: OnceLock<str0m::config::DtlsCert> = OnceLock::new();
    let cert = CERT
        .get_or_init(|| str0m::crypto::from_feature_flags().dtls_provider.generate_certificate().expect("certificate"))
        .clone();
    OfferParams { cert, candidate: SERVER.parse().unwrap() }
}

/// One loop of the sample in 10 ms frames. Callers never decode what the engine plays them,
/// so the simulation repeats one loop's frames instead of encoding every frame anew.
fn sample_frames() -> Frames {
    static FRAMES: OnceLock<Frames> = OnceLock::new();
    let frames = FRAMES.get_or_init(|| {
        let pcm = tapedeck::workers::encoder::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample.wav"))
            .expect("sample");
        let n = pcm.len() / 480;
        let mut encoder = LoopEncoder::new(pcm.into(), Ptime::Ms10).expect("an encoder");
        Arc::new((0..n.max(1)).map(|_| encoder.next_frame().expect("encoded")).collect())
    });
    frames.clone()
}

impl Sim {
    /// A world with the given seed and network conditions (up: callers to server).
    pub fn new(seed: u64, up: NetConfig, down: NetConfig) -> Self {
        #[allow(clippy::disallowed_methods)] // one real instant as the virtual clock's origin
        let start = Instant::now();
        // str0m's non-cryptographic randomness (SSRCs, sequence numbers, ICE credentials).
        fastrand::seed(seed);
        let config = EngineConfig {
            ptime: Ptime::Ms10,
            disconnect_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            max_sessions: 1000,
            max_connecting_per_client: 1000,
            stun_timeout: Duration::from_secs(5),
        };
        let telemetry = Arc::new(Telemetry::new());
        let recording = RecordingConfig { jitter_depth: Duration::from_millis(1000) };
        let captures = Some(PathBuf::from(CAPTURES));
        let recorders = Pipeline::new(recording, captures, MemStorage::default(), telemetry.clone());
        Sim {
            now: start,
            start,
            rng: Rng::new(seed),
            engine: Engine::new(config, start),
            params: params(),
            server: SERVER.parse().unwrap(),
            peers: Vec::new(),
            inflight: BinaryHeap::new(),
            order: 0,
            live: BTreeMap::new(),
            done: BTreeMap::new(),
            recorders,
            batch: Vec::new(),
            telemetry,
            sample: sample_frames(),
            sample_next: 0,
            up,
            down,
            up_bursting: false,
            down_bursting: false,
            engine_deadline: start,
        }
    }

    /// Adds a caller that offers now; returns its session id.
    pub fn add_peer(&mut self, plan: PeerPlan) -> SessionId {
        let n = self.peers.len() as u128 + 1;
        let id = SessionId::from_u128(n);
        let addr: SocketAddr = format!("127.0.0.{}:{}", 2 + n / 50_000, 10_000 + n % 50_000).parse().unwrap();
        let Offering { mut rtc, mid, offer, pending } = offering(addr, self.now, None).unwrap();
        let accepted = accept_offer(&offer.to_sdp_string(), &self.params, id, self.now).expect("offer accepted");
        let answer = SdpAnswer::from_sdp_string(&accepted.answer).unwrap();
        rtc.sdp_api().accept_answer(pending, answer).unwrap();
        self.engine.handle_input(self.now, Input::AddSession(Box::new(accepted))).expect("session added");
        let peer = Peer::new(id, addr, rtc, mid, plan, self.now);
        self.peers.push(peer);
        id
    }

    /// Runs until every session has ended (or `limit` of virtual time passed).
    pub fn run(&mut self, limit: Duration) {
        let end = self.start + limit;
        while self.now < end {
            if !self.peers.is_empty() && self.live.is_empty() && self.done.len() == self.peers.len() {
                return;
            }
            self.step();
            self.now = self.next_event().min(end).max(self.now);
        }
    }

    fn next_event(&self) -> Instant {
        let mut next = self.now + Duration::from_millis(10);
        if let Some(Reverse(d)) = self.inflight.peek() {
            next = next.min(d.at);
        }
        for p in self.peers.iter().filter(|p| !p.gone) {
            next = next.min(p.next_event());
        }
        if let Some(t) = self.recorders.next_tick() {
            next = next.min(t);
        }
        next = next.min(self.engine_deadline);
        next.max(self.now + Duration::from_micros(50))
    }

    fn step(&mut self) {
        let now = self.now;
        // Deliver what has arrived.
        while self.inflight.peek().is_some_and(|Reverse(d)| d.at <= now) {
            let Reverse(d) = self.inflight.pop().unwrap();
            if d.to == self.server {
                let input = Input::Datagram { source: d.from, destination: d.to, contents: &d.bytes };
                let _ = self.engine.handle_input(now, input);
            } else if let Some(p) = self.peers.iter_mut().find(|p| p.addr == d.to && !p.gone) {
                p.receive(now, d.from, d.to, &d.bytes);
            }
        }
        for _ in 0..self.engine.wants_frames() {
            let frame = self.sample[self.sample_next % self.sample.len()].clone();
            self.sample_next += 1;
            let _ = self.engine.handle_input(now, Input::SampleFrame(frame));
        }
        let _ = self.engine.handle_input(now, Input::Timeout);
        self.drain_engine();
        self.drive_peers();
        self.drain_engine();
        self.feed_recorders();
    }

    fn drain_engine(&mut self) {
        loop {
            match self.engine.poll_output() {
                Output::Timeout(t) => {
                    self.engine_deadline = t;
                    return;
                }
                Output::Transmit { source, destination, contents } => self.send(source, destination, contents),
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
                    let (Some(l), Some(duration)) = (self.live.get_mut(&session), duration) else { continue };
                    l.reason = Some(reason);
                    let summary = Summary { reason, counters: Some(counters) };
                    self.batch.push(RecorderMsg::End { session, duration, summary });
                }
            }
        }
    }

    fn drive_peers(&mut self) {
        let now = self.now;
        let mut outgoing = Vec::new();
        let mut hangups = Vec::new();
        for p in self.peers.iter_mut().filter(|p| !p.gone) {
            if p.drive(now, &mut outgoing) {
                hangups.push(p.id);
            }
        }
        for (from, to, bytes) in outgoing {
            self.send(from, to, bytes);
        }
        for id in hangups {
            let _ = self.engine.handle_input(now, Input::Hangup(id));
        }
    }

    /// Hands this step's messages to the recorder pipeline as one batch at `now`, as the
    /// event loop does (and an empty batch when a tick is due).
    fn feed_recorders(&mut self) {
        let due = self.recorders.next_tick().is_some_and(|t| t <= self.now);
        if self.batch.is_empty() && !due {
            return;
        }
        let ended = self.recorders.handle_batch(self.now, std::mem::take(&mut self.batch));
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
        let frames_sent = self.peers.iter().find(|p| p.id == e.session).map_or(0, |p| p.frames_sent);
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

    /// Puts a datagram on the simulated network.
    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        let up = to == self.server;
        let (net, bursting) = if up { (self.up, &mut self.up_bursting) } else { (self.down, &mut self.down_bursting) };
        if let Some((enter, leave)) = net.burst {
            let r = self.rng.f64();
            *bursting = if *bursting { r >= leave } else { r < enter };
            if *bursting {
                return;
            }
        }
        if net.loss > 0.0 && self.rng.f64() < net.loss {
            return;
        }
        let mut delay = net.latency;
        if net.jitter > Duration::ZERO {
            delay += net.jitter.mul_f64(self.rng.f64());
        }
        if net.reorder > 0.0 && self.rng.f64() < net.reorder {
            delay += Duration::from_millis(20) + Duration::from_millis(40).mul_f64(self.rng.f64());
        }
        let copies = if net.duplicate > 0.0 && self.rng.f64() < net.duplicate { 2 } else { 1 };
        for c in 0..copies {
            self.order += 1;
            let at = self.now + delay + Duration::from_millis(5) * c;
            self.inflight.push(Reverse(Datagram { at, order: self.order, from, to, bytes: bytes.clone() }));
        }
    }
}
