//! The one in-memory harness: the real [`Engine`] and N offering str0m callers ([`Caller`],
//! each built from [`super::offering`] and following a [`Script`]) on one virtual clock, with
//! a pluggable [`Network`] between them: [`Lossless`] (the default) hands every datagram over
//! within the step it was sent in; [`SeededNet`] adds seeded latency, jitter, loss, bursts,
//! reordering and duplication. No sockets, no threads: time jumps straight to the next event
//! (an arrival, the engine's or a caller's timeout, a frame a script wants to send).
//!
//! One [`World::step`] at `now`:
//! 1. delivers the datagrams due, to the engine or to the caller at their destination;
//! 2. hands the engine the sample frames it wants and `Input::Timeout`, then drains it:
//!    datagrams go on the network, every other output to [`World::outputs`];
//! 3. hands the callers what the network delivers at once;
//! 4. drives every caller that is due (str0m's timeout, its script, its output; a caller
//!    that hangs up is hung up in the engine);
//! 5. hands the engine what the network delivers at once, and drains it again.
//!
//! Built on it: the engine's unit tests (lossless, several callers), [`super::connected_pair`]
//! and [`super::str0m_session_second`] (one caller), and the daemon's simulated network
//! (`tests/common/sim.rs`: a [`SeededNet`], callers following a plan, and the daemon's
//! recorder pipeline fed from [`World::outputs`] after every step).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;

use super::{offering, params, Offering, SERVER};
use crate::engine::{
    accept_offer, EndReason, Engine, EngineConfig, EngineError, Input, OfferParams, Output, SessionId,
};

mod caller;
mod net;

pub use caller::{Caller, Script, Silent, Steady, Step};
pub use net::{NetConfig, SeededNet};

/// Opus frames played or sent in a loop, encoded once and shared.
pub type Frames = Arc<Vec<Arc<[u8]>>>;

/// Time advances by at most this much per step, unless [`World::max_step`] says otherwise.
pub const MAX_STEP: Duration = Duration::from_millis(10);
/// What is due at `now` after a step is handled this much later.
pub const MIN_STEP: Duration = Duration::from_micros(50);

/// The network between the engine and its callers.
pub trait Network {
    /// What happens to one datagram put on the network; `upstream`: from a caller to the engine.
    fn fate(&mut self, upstream: bool) -> Fate;
}

/// What the network does to one datagram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fate {
    /// Handed over within the step it was sent in, before its receiver runs next.
    AtOnce,
    /// Arrives this long after it was sent (zero: at the next step).
    After(Duration),
    /// Arrives twice, after each delay.
    Twice(Duration, Duration),
    Lost,
}

/// An instant, lossless network.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lossless;

impl Network for Lossless {
    fn fate(&mut self, _upstream: bool) -> Fate {
        Fate::AtOnce
    }
}

/// The address of the `n`-th caller (from 1): 127.0.0.2 and up, ports from 10 000.
pub fn caller_addr(n: u128) -> SocketAddr {
    let ip = [127, 0, 0, 2 + (n / 50_000) as u8];
    SocketAddr::from((ip, 10_000 + (n % 50_000) as u16))
}

/// The engine, its callers and the network between them, on one virtual clock.
pub struct World<N = Lossless> {
    pub now: Instant,
    /// The virtual clock's origin.
    pub start: Instant,
    pub engine: Engine,
    pub callers: Vec<Caller>,
    /// The engine's outputs other than datagrams and timeouts, in order (take them at will).
    pub outputs: Vec<Output>,
    pub net: N,
    /// The longest step ([`MAX_STEP`]): how long the world may go without looking.
    pub max_step: Duration,
    server: SocketAddr,
    params: &'static OfferParams,
    /// The sample's frames (none: the engine is played nothing), and the next one to play.
    sample: Frames,
    sample_next: usize,
    inflight: BinaryHeap<Reverse<Datagram>>,
    /// Datagrams the network hands over at once, in the order they were sent.
    at_once: VecDeque<Datagram>,
    order: u64,
    engine_deadline: Instant,
}

impl World<Lossless> {
    /// An engine with `config` on a lossless network, played the frames of `sample` in a loop.
    pub fn new(config: EngineConfig, sample: Frames) -> Self {
        World::with_network(config, sample, Lossless)
    }
}

impl<N: Network> World<N> {
    /// [`World::new`] on the network `net`.
    pub fn with_network(config: EngineConfig, sample: Frames, net: N) -> Self {
        #[allow(clippy::disallowed_methods)] // one real instant as the virtual clock's origin
        let start = Instant::now();
        World {
            now: start,
            start,
            engine: Engine::new(config, start),
            callers: Vec::new(),
            outputs: Vec::new(),
            net,
            max_step: MAX_STEP,
            server: SERVER.parse().expect("constant address"),
            params: params(),
            sample,
            sample_next: 0,
            inflight: BinaryHeap::new(),
            at_once: VecDeque::new(),
            order: 0,
            engine_deadline: start,
        }
    }

    /// A caller at `addr` following `script` offers now, as session `id`; `client` is the
    /// address the offer came from, as the HTTP layer knows it. Returns the engine's verdict;
    /// a refused caller is not kept.
    pub fn offer(
        &mut self,
        id: SessionId,
        addr: SocketAddr,
        client: Option<IpAddr>,
        script: Box<dyn Script>,
    ) -> Result<(), EngineError> {
        let Offering { mut rtc, mid, offer, pending } = offering(addr, self.now, None).expect("an offering caller");
        let mut accepted = accept_offer(&offer.to_sdp_string(), self.params, id, self.now).expect("offer accepted");
        accepted.client = client;
        let answer = SdpAnswer::from_sdp_string(&accepted.answer).expect("the engine's answer parses");
        rtc.sdp_api().accept_answer(pending, answer).expect("the caller takes the answer");
        self.engine.handle_input(self.now, Input::AddSession(Box::new(accepted)))?;
        self.callers.push(Caller::new(id, addr, rtc, mid, script, self.now));
        Ok(())
    }

    /// Runs for `d` of virtual time.
    pub fn run(&mut self, d: Duration) {
        self.run_until(self.now + d, |_| false);
    }

    /// Steps until `done` holds after a step (true) or the clock reaches `end` (false).
    pub fn run_until(&mut self, end: Instant, mut done: impl FnMut(&Self) -> bool) -> bool {
        while self.now < end {
            self.step();
            if done(self) {
                return true;
            }
            self.advance(end, None);
        }
        false
    }

    /// Moves the clock to the next event (or `also`, if sooner), but not past `end`.
    pub fn advance(&mut self, end: Instant, also: Option<Instant>) {
        self.now = self.next_event(also).min(end).max(self.now);
    }

    /// When the next step is due: the next arrival, timeout or frame (or `also`), within
    /// [`MIN_STEP`] and [`World::max_step`] from now.
    pub fn next_event(&self, also: Option<Instant>) -> Instant {
        let mut next = self.now + self.max_step;
        if !self.at_once.is_empty() {
            next = self.now;
        }
        if let Some(Reverse(d)) = self.inflight.peek() {
            next = next.min(d.at);
        }
        for c in self.callers.iter().filter(|c| !c.gone) {
            next = next.min(c.next_event());
        }
        if let Some(t) = also {
            next = next.min(t);
        }
        next = next.min(self.engine_deadline);
        next.max(self.now + MIN_STEP)
    }

    /// One step at `now` (see the module docs).
    pub fn step(&mut self) {
        while let Some(d) = self.next_arrival() {
            self.deliver(d);
        }
        for _ in 0..self.engine.wants_frames() {
            let Some(frame) = self.sample.get(self.sample_next % self.sample.len().max(1)).cloned() else { break };
            self.sample_next += 1;
            let _ = self.engine.handle_input(self.now, Input::SampleFrame(frame));
        }
        let _ = self.engine.handle_input(self.now, Input::Timeout);
        self.drain_engine();
        // What the engine just sent, to the callers.
        self.deliver_at_once();
        self.drive_callers();
        // What the callers just sent, to the engine.
        self.deliver_at_once();
        self.drain_engine();
    }

    /// Whether the engine reported session `id` connected.
    pub fn connected(&self, id: SessionId) -> bool {
        self.outputs.iter().any(|o| matches!(o, Output::Connected { session, .. } if *session == id))
    }

    /// Media packets the engine handed over for session `id`.
    pub fn media_count(&self, id: SessionId) -> usize {
        self.outputs.iter().filter(|o| matches!(o, Output::Media { session, .. } if *session == id)).count()
    }

    /// Why and after how long session `id` ended, if it did.
    pub fn ended(&self, id: SessionId) -> Option<(EndReason, Option<Duration>)> {
        self.outputs.iter().find_map(|o| match o {
            Output::Ended { session, reason, duration, .. } if *session == id => Some((*reason, *duration)),
            _ => None,
        })
    }

    fn drain_engine(&mut self) {
        loop {
            match self.engine.poll_output() {
                Output::Timeout(t) => {
                    self.engine_deadline = t;
                    return;
                }
                Output::Transmit { source, destination, contents } => self.send(source, destination, contents),
                other => self.outputs.push(other),
            }
        }
    }

    /// Drives the callers that are due; sends what they sent, then their hang-ups.
    fn drive_callers(&mut self) {
        let now = self.now;
        let mut outgoing = Vec::new();
        let mut hangups = Vec::new();
        for c in self.callers.iter_mut().filter(|c| !c.gone) {
            if c.drive(now) == Step::HangUp {
                hangups.push(c.id);
            }
            c.take_outbox(&mut outgoing);
        }
        for (from, to, bytes) in outgoing {
            self.send(from, to, bytes);
        }
        for id in hangups {
            let _ = self.engine.handle_input(now, Input::Hangup(id));
        }
    }

    fn deliver_at_once(&mut self) {
        while let Some(d) = self.at_once.pop_front() {
            self.deliver(d);
        }
    }

    /// The next datagram that has arrived by now: those handed over at once first, then
    /// those in flight, in order of arrival.
    fn next_arrival(&mut self) -> Option<Datagram> {
        if let Some(d) = self.at_once.pop_front() {
            return Some(d);
        }
        if self.inflight.peek().is_some_and(|Reverse(d)| d.at <= self.now) {
            return self.inflight.pop().map(|Reverse(d)| d);
        }
        None
    }

    /// Hands a datagram that arrived to the engine or to the caller it is for.
    fn deliver(&mut self, d: Datagram) {
        if d.to == self.server {
            let input = Input::Datagram { source: d.from, destination: d.to, contents: &d.bytes };
            let _ = self.engine.handle_input(self.now, input);
        } else if let Some(c) = self.callers.iter_mut().find(|c| c.addr == d.to && !c.gone) {
            c.receive(self.now, d.from, d.to, &d.bytes);
        }
    }

    /// Puts a datagram on the network.
    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        let at = self.now;
        match self.net.fate(to == self.server) {
            Fate::Lost => {}
            Fate::AtOnce => self.at_once.push_back(Datagram { at, order: 0, from, to, bytes }),
            Fate::After(delay) => self.put(at + delay, from, to, bytes),
            Fate::Twice(first, second) => {
                self.put(at + first, from, to, bytes.clone());
                self.put(at + second, from, to, bytes);
            }
        }
    }

    fn put(&mut self, at: Instant, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.order += 1;
        self.inflight.push(Reverse(Datagram { at, order: self.order, from, to, bytes }));
    }
}

/// A datagram on its way, ordered by arrival, then by when it was sent.
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
