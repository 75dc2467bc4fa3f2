//! A simulated network: the real engine and N offering str0m callers in one process, on a
//! virtual clock, with a seeded network (latency, jitter, random and burst loss, reordering,
//! duplication). Time jumps straight to the next event, so a minute of calls takes well
//! under a second per caller. The recorder pipeline runs here too, deterministically: every
//! session's WAV (and its capture) is built in memory through `media::capture::Recorder`,
//! ticked every 200 ms of virtual time as the worker is.
//!
//! Same seed, same scenario: the same events in the same order and byte-identical WAVs (DTLS
//! keys differ from run to run, but nothing the recorder sees depends on them).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, Rtc};
use tapedeck::client::{encode_tone, offering, opus_pt, Offering};
use tapedeck::engine::{accept_offer, EndReason, Engine, EngineConfig, Input, OfferParams, Output, SessionId};
use tapedeck::media::capture::{CaptureWriter, Op, Recorder};
use tapedeck::media::recording::{Recording, RecordingConfig, RecordingStats};
use tapedeck::media::sample::LoopEncoder;

const SERVER: &str = "127.0.0.1:50000";
/// How often the simulated recorder worker advances its recordings.
const TICK: Duration = Duration::from_millis(200);

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

/// What one caller does, from the moment its session connected.
#[derive(Debug, Clone)]
pub struct PeerPlan {
    pub tone_hz: u32,
    /// (start, end) of stretches in which the caller sends nothing (DTX, mute).
    pub silent: Vec<(Duration, Duration)>,
    /// When the caller hangs up (DELETE), counted from its connection.
    pub hang_up_after: Duration,
    /// If set, the caller vanishes at this time instead (stops sending anything).
    pub vanish_after: Option<Duration>,
}

impl PeerPlan {
    pub fn tone(tone_hz: u32, seconds: f64) -> Self {
        PeerPlan { tone_hz, silent: Vec::new(), hang_up_after: Duration::from_secs_f64(seconds), vanish_after: None }
    }
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
}

struct Peer {
    id: SessionId,
    addr: SocketAddr,
    rtc: Rtc,
    mid: Mid,
    pt: Option<Pt>,
    plan: PeerPlan,
    connected_at: Option<Instant>,
    deadline: Instant,
    next_send: Option<Instant>,
    rtp: u64,
    frame: usize,
    gone: bool,
    /// A datagram arrived since the peer was last polled.
    dirty: bool,
}

struct Live {
    wav: SharedBuf,
    recorder: Recorder<SharedBuf, Vec<u8>>,
    connected_at: Instant,
    next_tick: Instant,
    flushed: Instant,
    seqs: std::collections::BTreeSet<u64>,
    repeated: u64,
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

/// A small seeded PRNG (xorshift64*), so runs do not depend on a crate's stream.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The seed for a scenario: `TAPEDECK_SEED` if set (to replay a failure), else `default`.
/// Printed, so a failing run shows it.
pub fn seed(default: u64) -> u64 {
    let seed = std::env::var("TAPEDECK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    eprintln!("seed {seed} (replay with TAPEDECK_SEED={seed})");
    seed
}

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
    sample: LoopEncoder,
    up: NetConfig,
    down: NetConfig,
    up_bursting: bool,
    down_bursting: bool,
    jitter_depth: Duration,
    engine_deadline: Instant,
}

/// An in-memory WAV file the test can read after the recorder finalized it.
#[derive(Clone, Default)]
struct SharedBuf(Rc<RefCell<Cursor<Vec<u8>>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for SharedBuf {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.borrow_mut().seek(pos)
    }
}

fn params() -> OfferParams {
    static CERT: OnceLock<str0m::config::DtlsCert> = OnceLock::new();
    let cert = CERT
        .get_or_init(|| str0m::crypto::from_feature_flags().dtls_provider.generate_certificate().expect("certificate"))
        .clone();
    OfferParams { cert, candidate: SERVER.parse().unwrap() }
}

/// 1 s of a tone in 20 ms frames, encoded once per frequency.
type Frames = Arc<Vec<Arc<[u8]>>>;

fn tone_frames(hz: u32) -> Frames {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<u32, Frames>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap();
    cache.entry(hz).or_insert_with(|| Arc::new(encode_tone(hz, Duration::from_millis(20)))).clone()
}

impl Sim {
    /// A world with the given seed and network conditions (up: callers to server).
    pub fn new(seed: u64, up: NetConfig, down: NetConfig) -> Self {
        #[allow(clippy::disallowed_methods)] // one real instant as the virtual clock's origin
        let start = Instant::now();
        // str0m's non-cryptographic randomness (SSRCs, sequence numbers, ICE credentials).
        fastrand::seed(seed);
        let config = EngineConfig {
            ptime: Duration::from_millis(10),
            disconnect_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            max_sessions: 1000,
        };
        let pcm =
            tapedeck::media::sample::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample.wav"))
                .expect("sample");
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
            sample: LoopEncoder::new(pcm.into(), Duration::from_millis(10)).unwrap(),
            up,
            down,
            up_bursting: false,
            down_bursting: false,
            jitter_depth: Duration::from_millis(1000),
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
        let peer = Peer {
            id,
            addr,
            rtc,
            mid,
            pt: None,
            plan,
            connected_at: None,
            deadline: self.now,
            next_send: None,
            rtp: 0,
            frame: 0,
            gone: false,
            dirty: true,
        };
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
            next = next.min(p.deadline);
            if let Some(t) = p.next_send {
                next = next.min(t);
            }
        }
        for l in self.live.values() {
            next = next.min(l.next_tick);
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
                if let Ok(r) = Receive::new(Protocol::Udp, d.from, d.to, &d.bytes) {
                    let _ = p.rtc.handle_input(str0m::Input::Receive(now, r));
                    p.dirty = true;
                }
            }
        }
        for _ in 0..self.engine.wants_frames() {
            let frame = self.sample.next_frame().unwrap();
            let _ = self.engine.handle_input(now, Input::SampleFrame(frame));
        }
        let _ = self.engine.handle_input(now, Input::Timeout);
        self.drain_engine();
        self.drive_peers();
        self.drain_engine();
        self.tick_recorders();
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
                    let config = RecordingConfig { jitter_depth: self.jitter_depth };
                    let wav = SharedBuf::default();
                    let recording = Recording::new(wav.clone(), config).unwrap();
                    let capture = CaptureWriter::new(Vec::new(), config).unwrap();
                    let live = Live {
                        wav,
                        recorder: Recorder::new(recording, Some(capture)),
                        connected_at: at,
                        next_tick: at + TICK,
                        flushed: at,
                        seqs: Default::default(),
                        repeated: 0,
                    };
                    self.live.insert(session, live);
                }
                Output::Media { session, packet } => {
                    if let Some(l) = self.live.get_mut(&session) {
                        if !l.seqs.insert(packet.seq) {
                            l.repeated += 1;
                        }
                        l.recorder.apply(Op::Packet(packet)).unwrap();
                    }
                }
                Output::Ended { session, reason, duration, .. } => {
                    let Some(l) = self.live.remove(&session) else { continue };
                    let duration = duration.unwrap_or_default();
                    let (stats, capture) = l.recorder.finish(duration).unwrap();
                    let wav = l.wav.0.borrow().get_ref().clone();
                    let capture = capture.unwrap();
                    let finished = Finished { wav, capture, stats, duration, reason, repeated_seqs: l.repeated };
                    self.done.insert(session, finished);
                }
            }
        }
    }

    fn drive_peers(&mut self) {
        let now = self.now;
        let mut outgoing = Vec::new();
        let mut hangups = Vec::new();
        for p in self.peers.iter_mut().filter(|p| !p.gone) {
            let due = p.dirty || p.deadline <= now || p.next_send.is_some_and(|t| t <= now);
            let ends = p.connected_at.is_some_and(|at| {
                now - at >= p.plan.hang_up_after || p.plan.vanish_after.is_some_and(|v| now - at >= v)
            });
            if !due && !ends {
                continue;
            }
            p.dirty = false;
            if p.deadline <= now {
                let _ = p.rtc.handle_input(str0m::Input::Timeout(now));
            }
            if let Some(at) = p.connected_at {
                let since = now - at;
                if p.plan.vanish_after.is_some_and(|v| since >= v) {
                    p.gone = true;
                    continue;
                }
                if since >= p.plan.hang_up_after {
                    hangups.push(p.id);
                    p.gone = true;
                    continue;
                }
                while p.next_send.is_some_and(|t| t <= now) {
                    let t = p.next_send.unwrap();
                    p.send_frame(t);
                    p.next_send = Some(t + Duration::from_millis(20));
                }
            }
            loop {
                match p.rtc.poll_output() {
                    Ok(str0m::Output::Transmit(t)) => outgoing.push((t.source, t.destination, t.contents.to_vec())),
                    Ok(str0m::Output::Event(Event::Connected)) => {
                        p.connected_at = Some(now);
                        p.next_send = Some(now);
                    }
                    Ok(str0m::Output::Event(_)) => {}
                    Ok(str0m::Output::Timeout(t)) => {
                        p.deadline = t;
                        break;
                    }
                    Err(_) => {
                        p.gone = true;
                        break;
                    }
                }
            }
        }
        for (from, to, bytes) in outgoing {
            self.send(from, to, bytes);
        }
        for id in hangups {
            let _ = self.engine.handle_input(now, Input::Hangup(id));
        }
    }

    fn tick_recorders(&mut self) {
        let now = self.now;
        for l in self.live.values_mut() {
            while l.next_tick <= now {
                l.recorder.apply(Op::Advance(l.next_tick - l.connected_at)).unwrap();
                if l.next_tick - l.flushed >= Duration::from_secs(1) {
                    l.flushed = l.next_tick;
                    l.recorder.apply(Op::Flush).unwrap();
                }
                l.next_tick += TICK;
            }
        }
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

impl Peer {
    fn send_frame(&mut self, at: Instant) {
        let since = at - self.connected_at.unwrap();
        let rtp = self.rtp;
        self.rtp += 960;
        let frames = tone_frames(self.plan.tone_hz);
        let frame = frames[self.frame % frames.len()].clone();
        self.frame += 1;
        if self.plan.silent.iter().any(|&(a, b)| since >= a && since < b) {
            return;
        }
        let Some(pt) = self.pt.or_else(|| opus_pt(&mut self.rtc, self.mid)) else { return };
        self.pt = Some(pt);
        let Some(writer) = self.rtc.writer(self.mid) else { return };
        let _ = writer.write(pt, at, MediaTime::new(rtp, Frequency::FORTY_EIGHT_KHZ), frame);
    }
}
