//! The sans-IO core: every `str0m::Rtc`, the session table and the sample clock.
//!
//! The engine owns no socket, thread, channel, file or clock. It is driven by exactly two
//! calls: [`Engine::handle_input`] with the current time, and [`Engine::poll_output`],
//! which the caller drains until it returns [`Output::Timeout`]. The I/O shell in
//! the daemon's event loop runs it against a real UDP socket; the tests run the very same type against
//! simulated networks.

mod demux;
mod offer;
mod session;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Receive};

pub use offer::{accept_offer, offer_sdp, opus_pt, Accepted, OfferError, OfferParams};
use session::Session;

use crate::media::recording::Packet;
pub use crate::media::Ptime;
pub use crate::session_id::SessionId;

/// Settings the engine needs; the rest of `Config` belongs to the shell.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Outgoing packet time: one sample frame is sent every `ptime`.
    pub ptime: Ptime,
    /// How long an ICE disconnection may last before the session ends.
    pub disconnect_timeout: Duration,
    /// How long a session may take from answer to connected.
    pub connect_timeout: Duration,
    /// The longest a call may last once connected; then it is ended (`--max-call-duration`).
    pub max_call_duration: Option<Duration>,
    /// Most sessions at once.
    pub max_sessions: usize,
    /// Most sessions not yet connected that one client address may hold at once (offers
    /// beyond it are refused with [`EngineError::TooManyConnecting`]). Only sessions whose
    /// [`Accepted::client`] is known count.
    pub max_connecting_per_client: usize,
    /// How long a new session may wait for the first valid STUN check from anyone before it
    /// is ended: shorter than `connect_timeout`, which is for sessions mid-handshake.
    pub stun_timeout: Duration,
}

/// Sample frames the engine keeps queued ahead of need.
pub const SAMPLE_QUEUE: usize = 4;
/// How often the engine asks to be woken when no session is connected.
const IDLE_WAKE: Duration = Duration::from_secs(3600);
/// If the loop falls this many frames behind, it skips ahead instead of bursting.
const MAX_FRAMES_BEHIND: u32 = 5;

/// What drives the engine.
#[derive(Debug)]
pub enum Input<'a> {
    /// Time has passed; let sessions and the sample clock catch up.
    Timeout,
    /// One UDP datagram, borrowed from the shell's buffer.
    Datagram { source: SocketAddr, destination: SocketAddr, contents: &'a [u8] },
    /// A session built (off the loop) from an accepted offer.
    AddSession(Box<Accepted>),
    /// End a session: the caller hung up over HTTP.
    Hangup(SessionId),
    /// The next Opus frame of the looped sample.
    SampleFrame(Arc<[u8]>),
    /// End every session and refuse new ones.
    Shutdown,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `DELETE /sessions/{id}`.
    Hangup,
    /// The peer closed DTLS (or the `Rtc` closed itself).
    Closed,
    /// ICE was disconnected for longer than the disconnect timeout, or the caller sent
    /// nothing at all for twice that long.
    IceTimeout,
    /// ICE never connected within the connect timeout.
    ConnectTimeout,
    /// No valid ICE check (STUN with the session's credentials) arrived within the STUN
    /// timeout: the offer was never followed up.
    NoIceCheck,
    /// The daemon is shutting down.
    Shutdown,
    /// str0m reported an error for this session.
    Error,
    /// The call reached the longest a call may last (`--max-call-duration`).
    MaxDuration,
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            EndReason::Hangup => "hang-up",
            EndReason::Closed => "closed by peer",
            EndReason::IceTimeout => "caller gone (ICE disconnected or silent too long)",
            EndReason::ConnectTimeout => "never connected",
            EndReason::NoIceCheck => "no ICE check arrived",
            EndReason::Shutdown => "shutdown",
            EndReason::Error => "error",
            EndReason::MaxDuration => "longest call reached (--max-call-duration)",
        };
        f.write_str(s)
    }
}

/// What the engine asks the shell to do.
#[derive(Debug)]
pub enum Output {
    /// Send a datagram.
    Transmit { source: SocketAddr, destination: SocketAddr, contents: Vec<u8> },
    /// The session connected at `at`: its recording starts here.
    Connected { session: SessionId, at: Instant },
    /// One received audio packet for the session's recorder.
    Media { session: SessionId, packet: Packet },
    /// The session ended; `duration` is the time since it connected, if it ever did.
    Ended { session: SessionId, reason: EndReason, duration: Option<Duration>, counters: SessionCounters },
    /// Nothing more until this time (or new input).
    Timeout(Instant),
}

/// One session's traffic.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionCounters {
    pub datagrams_in: u64,
    pub bytes_in: u64,
    pub datagrams_out: u64,
    pub bytes_out: u64,
    /// Audio packets received (and handed to the recorder once connected).
    pub media_in: u64,
    /// Sample frames sent.
    pub media_out: u64,
}

/// A session as `GET /sessions` shows it.
#[derive(Debug, Clone, Copy)]
pub struct SessionInfo {
    pub id: SessionId,
    pub state: SessionState,
    pub created: Instant,
    pub connected_at: Option<Instant>,
    pub counters: SessionCounters,
    /// The client's address, as the signalling saw it (behind a trusted proxy, the one
    /// it named), if known.
    pub client: Option<std::net::IpAddr>,
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Connecting,
    Connected,
    /// Connected, but ICE reports the caller disconnected (it may come back).
    Disconnected,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Connecting => "connecting",
            SessionState::Connected => "connected",
            SessionState::Disconnected => "disconnected",
        }
    }
}

/// A request the engine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("no session {0}")]
    UnknownSession(SessionId),
    #[error("session {0} exists already")]
    DuplicateSession(SessionId),
    #[error("the session limit of {0} is reached")]
    Full(usize),
    #[error("shutting down")]
    ShuttingDown,
    #[error("{0} already has {1} sessions that have not connected")]
    TooManyConnecting(std::net::IpAddr, usize),
}

/// Counters the shell may report.
#[derive(Debug, Default, Clone, Copy)]
pub struct EngineStats {
    pub sessions_added: u64,
    pub datagrams_in: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Audio packets handed to the recorders.
    pub media_in: u64,
    /// Datagrams dropped before reaching any session, by reason.
    pub dropped: Drops,
    pub transmits: u64,
    pub sample_frames: u64,
    pub sample_underruns: u64,
    pub sample_skipped: u64,
}

/// Datagrams the engine dropped before they reached a session, by why. Each costs one parse
/// and at most one map lookup and one session's check, however many sessions there are.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drops {
    /// Neither STUN, DTLS, RTP nor RTCP.
    pub not_webrtc: u64,
    /// DTLS, RTP or RTCP from an address no session has seen pass an ICE check.
    pub unknown_source: u64,
    /// STUN from a new address that is not a Binding request naming one of our sessions'
    /// ICE username fragments.
    pub stun_unknown_ufrag: u64,
    /// A Binding request naming a session's username fragment that the session refused
    /// (wrong password, so a failed MESSAGE-INTEGRITY, or the wrong remote fragment).
    pub stun_rejected: u64,
}

impl Drops {
    /// Each count with its `/metrics` label.
    pub fn by_reason(&self) -> [(&'static str, u64); 4] {
        [
            ("not_webrtc", self.not_webrtc),
            ("unknown_source", self.unknown_source),
            ("stun_unknown_ufrag", self.stun_unknown_ufrag),
            ("stun_rejected", self.stun_rejected),
        ]
    }

    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, n)| n).sum()
    }
}

/// The sans-IO core. See the module docs for its contract.
pub struct Engine {
    config: EngineConfig,
    /// Ordered, so every run visits sessions in the same order (deterministic replays).
    sessions: BTreeMap<SessionId, Session>,
    by_remote: HashMap<SocketAddr, SessionId>,
    /// Sessions by their ICE username fragment (random, so a clash is rare but possible:
    /// then each session with it is asked in turn).
    by_ufrag: HashMap<Box<[u8]>, Vec<SessionId>>,
    /// Each session's next wake-up; entries whose time no longer matches the session's
    /// `scheduled` are stale and skipped. Only sessions whose time came are visited.
    timers: BinaryHeap<Reverse<(Instant, SessionId)>>,
    due: Vec<SessionId>,
    out: VecDeque<Output>,
    frames: VecDeque<Arc<[u8]>>,
    next_frame_at: Instant,
    frame_index: u64,
    samples_per_frame: u64,
    shutting_down: bool,
    stats: EngineStats,
}

impl Engine {
    /// A new engine; the sample clock starts at `now`.
    pub fn new(config: EngineConfig, now: Instant) -> Self {
        let samples_per_frame = config.ptime.samples() as u64;
        Engine {
            config,
            sessions: BTreeMap::new(),
            by_remote: HashMap::new(),
            by_ufrag: HashMap::new(),
            timers: BinaryHeap::new(),
            due: Vec::new(),
            out: VecDeque::new(),
            frames: VecDeque::with_capacity(SAMPLE_QUEUE),
            next_frame_at: now,
            frame_index: 0,
            samples_per_frame,
            shutting_down: false,
            stats: EngineStats::default(),
        }
    }

    /// Feeds one input at time `now`. Errors are requests refused; the engine stays usable.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), EngineError> {
        match input {
            Input::Timeout => self.handle_timeout(now),
            Input::Datagram { source, destination, contents } => {
                self.handle_datagram(now, source, destination, contents)
            }
            Input::AddSession(accepted) => return self.add_session(now, *accepted),
            Input::Hangup(id) => return self.end_session(now, id, EndReason::Hangup),
            Input::SampleFrame(frame) => self.frames.push_back(frame),
            Input::Shutdown => self.shutdown(now),
        }
        Ok(())
    }

    /// The next thing to do; drain until [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        // With nobody connected the sample clock needs no wake-ups: the daemon idles.
        let mut next = if self.anyone_listening() { self.next_frame_at } else { self.next_frame_at + IDLE_WAKE };
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if self.sessions.get(&id).is_some_and(|s| s.scheduled == Some(t)) {
                next = next.min(t);
                break;
            }
            self.timers.pop(); // stale
        }
        Output::Timeout(next)
    }

    /// How many sample frames the engine would take now: none while nobody listens (the
    /// sample's position does not move then; see `send_due_frames`), else enough to hold
    /// [`SAMPLE_QUEUE`].
    pub fn wants_frames(&self) -> usize {
        if !self.anyone_listening() {
            return 0;
        }
        SAMPLE_QUEUE.saturating_sub(self.frames.len())
    }

    /// Number of sessions, connected or not.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Whether a shutdown was asked for and every session is gone.
    pub fn is_done(&self) -> bool {
        self.shutting_down && self.sessions.is_empty()
    }

    /// Counters since start.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Every session, in id order.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.sessions.values().map(Session::info).collect()
    }

    /// One session.
    pub fn session(&self, id: SessionId) -> Option<SessionInfo> {
        self.sessions.get(&id).map(Session::info)
    }

    fn add_session(&mut self, now: Instant, accepted: Accepted) -> Result<(), EngineError> {
        if self.shutting_down {
            return Err(EngineError::ShuttingDown);
        }
        if self.sessions.len() >= self.config.max_sessions {
            return Err(EngineError::Full(self.config.max_sessions));
        }
        let id = accepted.id;
        if self.sessions.contains_key(&id) {
            return Err(EngineError::DuplicateSession(id));
        }
        if let Some(client) = accepted.client {
            let limit = self.config.max_connecting_per_client;
            let connecting = self.sessions.values().filter(|s| s.connecting_client() == Some(client)).count();
            if connecting >= limit {
                return Err(EngineError::TooManyConnecting(client, limit));
            }
        }
        let mut session = Session::new(accepted, now);
        self.by_ufrag.entry(session.ufrag().into()).or_default().push(id);
        {
            let _scope = id.log_scope();
            log::debug!("added; waiting for ICE");
            session.drain(now, &mut self.out, &mut self.stats);
        }
        self.sessions.insert(id, session);
        self.stats.sessions_added += 1;
        self.schedule(id);
        Ok(())
    }

    /// Files the session's next wake-up, if it changed.
    fn schedule(&mut self, id: SessionId) {
        let ticks = self.ticks();
        if let Some(s) = self.sessions.get_mut(&id) {
            schedule(s, &self.config, ticks, &mut self.timers);
        }
    }

    /// The sample clock's grid.
    fn ticks(&self) -> Ticks {
        Ticks { next: self.next_frame_at, every: self.config.ptime.duration() }
    }

    fn handle_datagram(&mut self, now: Instant, source: SocketAddr, dest: SocketAddr, buf: &[u8]) {
        self.stats.datagrams_in += 1;
        let known = self.by_remote.get(&source).copied();
        if known.is_none() && !self.may_introduce_a_source(buf) {
            return;
        }
        let Ok(recv) = Receive::new(Protocol::Udp, source, dest, buf) else {
            self.stats.dropped.not_webrtc += 1;
            log::trace!("dropped {} bytes from {source}: not WebRTC", buf.len());
            return;
        };
        let input = str0m::Input::Receive(now, recv);
        let id = match known {
            Some(id) => id,
            None => match self.route_new_source(&input, buf) {
                Some(id) => {
                    self.by_remote.insert(source, id);
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.add_remote(source);
                    }
                    id
                }
                None => return,
            },
        };
        let Some(session) = self.sessions.get_mut(&id) else {
            self.by_remote.remove(&source);
            return;
        };
        session.count_in(buf.len());
        self.stats.bytes_in += buf.len() as u64;
        let scope = id.log_scope();
        session.bind_unannounced_ssrc(buf);
        let ok = session.handle(now, input) && session.drain(now, &mut self.out, &mut self.stats);
        drop(scope);
        if !ok || !session.is_alive() {
            let reason = if ok { EndReason::Closed } else { EndReason::Error };
            let _ = self.end_session(now, id, reason);
        } else {
            self.schedule(id);
        }
    }

    /// Whether a datagram from an address no session knows could introduce it: only an ICE
    /// check can (the caller's first, or one after its NAT moved it), and it names its session
    /// by our username fragment. Everything else is counted and dropped here, before any
    /// parsing: a flood of made-up datagrams costs one map lookup each, never a walk over the
    /// sessions.
    fn may_introduce_a_source(&mut self, buf: &[u8]) -> bool {
        let drops = &mut self.stats.dropped;
        if !demux::is_stun(buf) {
            drops.unknown_source += 1;
            log::trace!("dropped {} bytes: not STUN, from an address no session knows", buf.len());
            return false;
        }
        if !demux::stun_local_ufrag(buf).is_some_and(|ufrag| self.by_ufrag.contains_key(ufrag)) {
            drops.stun_unknown_ufrag += 1;
            log::trace!("dropped STUN naming no session");
            return false;
        }
        true
    }

    /// The session whose credentials an ICE check from a new address (one that passed
    /// [`Engine::may_introduce_a_source`]) carries, if it accepts it.
    fn route_new_source(&mut self, input: &str0m::Input<'_>, buf: &[u8]) -> Option<SessionId> {
        let candidates = demux::stun_local_ufrag(buf).and_then(|ufrag| self.by_ufrag.get(ufrag))?;
        let found = candidates.iter().copied().find(|id| self.sessions.get(id).is_some_and(|s| s.accepts(input)));
        if found.is_none() {
            self.stats.dropped.stun_rejected += 1;
            log::trace!("dropped STUN naming a session that refused it (wrong credentials)");
        }
        found
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.send_due_frames(now);
        let mut due = std::mem::take(&mut self.due);
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            if let Some(s) = self.sessions.get_mut(&id).filter(|s| s.scheduled == Some(t)) {
                s.scheduled = None;
                due.push(id);
            }
        }
        for id in due.drain(..) {
            let Some(session) = self.sessions.get_mut(&id) else { continue };
            let scope = id.log_scope();
            let ok =
                session.handle(now, str0m::Input::Timeout(now)) && session.drain(now, &mut self.out, &mut self.stats);
            let verdict = if ok { session.expired(now, &self.config) } else { Some(EndReason::Error) };
            drop(scope);
            if let Some(reason) = verdict {
                let _ = self.end_session(now, id, reason);
            } else {
                self.schedule(id);
            }
        }
        self.due = due;
    }

    fn anyone_listening(&self) -> bool {
        self.sessions.values().any(Session::is_connected)
    }

    fn send_due_frames(&mut self, now: Instant) {
        if now < self.next_frame_at {
            return;
        }
        if !self.anyone_listening() {
            // Nobody listens: the sample clock runs on, but no frame is taken, so the
            // encoder thread waits and costs nothing. Frames queued for the last listener
            // are let go: the next one starts with fresh frames, in step with whoever else
            // listens (the daemon's other loops).
            self.frames.clear();
            let passed = (now - self.next_frame_at).as_micros() / self.config.ptime.duration().as_micros() + 1;
            let passed = u32::try_from(passed).unwrap_or(u32::MAX);
            self.frame_index += u64::from(passed);
            self.next_frame_at += self.config.ptime.duration() * passed;
            return;
        }
        let behind = (now - self.next_frame_at).as_micros() / self.config.ptime.duration().as_micros();
        if behind > u128::from(MAX_FRAMES_BEHIND) {
            // The loop was stalled: skip ahead rather than burst old audio to everyone.
            let skip = behind as u64;
            self.stats.sample_skipped += skip;
            for _ in 0..skip.min(self.frames.len() as u64) {
                self.frames.pop_front();
            }
            self.frame_index += skip;
            self.next_frame_at += self.config.ptime.duration() * skip as u32;
            log::warn!("event loop fell {skip} sample frames behind; skipped them");
        }
        while self.next_frame_at <= now {
            let rtp = self.frame_index * self.samples_per_frame;
            self.frame_index += 1;
            self.next_frame_at += self.config.ptime.duration();
            let Some(frame) = self.frames.pop_front() else {
                self.stats.sample_underruns += 1;
                log::debug!("sample encoder underrun at frame {}", self.frame_index - 1);
                continue;
            };
            self.stats.sample_frames += 1;
            self.write_frame(now, rtp, &frame);
        }
    }

    /// Writes `frame` to every connected session. This is each one's full visit for the tick:
    /// the drain handles str0m's due timeouts, and our own timers are checked, so a session
    /// whose timer fell on this tick needs no second visit (its timer entry goes stale).
    fn write_frame(&mut self, now: Instant, rtp: u64, frame: &Arc<[u8]>) {
        let ticks = self.ticks();
        let mut ended = Vec::new();
        for session in self.sessions.values_mut() {
            if !session.is_connected() {
                continue;
            }
            let id = session.id();
            let scope = id.log_scope();
            let ok = session.write_sample(now, rtp, frame) && session.drain(now, &mut self.out, &mut self.stats);
            let verdict = if ok { session.expired(now, &self.config) } else { Some(EndReason::Error) };
            drop(scope);
            match verdict {
                Some(reason) => ended.push((id, reason)),
                None => schedule(session, &self.config, ticks, &mut self.timers),
            }
        }
        for (id, reason) in ended {
            let _ = self.end_session(now, id, reason);
        }
    }

    fn end_session(&mut self, now: Instant, id: SessionId, reason: EndReason) -> Result<(), EngineError> {
        let Some(mut session) = self.sessions.remove(&id) else {
            return Err(EngineError::UnknownSession(id));
        };
        for addr in session.remotes() {
            self.by_remote.remove(addr);
        }
        if let Some(ids) = self.by_ufrag.get_mut(session.ufrag()) {
            ids.retain(|&other| other != id);
            if ids.is_empty() {
                self.by_ufrag.remove(session.ufrag());
            }
        }
        let _scope = id.log_scope();
        session.close(now, &mut self.out, &mut self.stats);
        let duration = session.connected_at().map(|at| now.saturating_duration_since(at));
        log::debug!("ended ({reason}) after {:?}", duration.unwrap_or_default());
        self.out.push_back(Output::Ended { session: id, reason, duration, counters: session.counters() });
        Ok(())
    }

    fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            let _ = self.end_session(now, id, EndReason::Shutdown);
        }
    }
}

/// The sample clock's ticks: every `every`, one of them at `next`.
#[derive(Debug, Clone, Copy)]
struct Ticks {
    next: Instant,
    every: Duration,
}

impl Ticks {
    /// The first tick at or after `t` (or `next`, if `t` is before it).
    fn at_or_after(self, t: Instant) -> Instant {
        if t <= self.next {
            return self.next;
        }
        let periods = (t - self.next).as_nanos().div_ceil(self.every.as_nanos().max(1));
        self.next + self.every * u32::try_from(periods).unwrap_or(u32::MAX)
    }
}

/// Files `session`'s next wake-up in `timers`, if it changed (older entries go stale).
///
/// A connected session's timers (str0m's RTCP, feedback and ICE keep-alives, our silence
/// timeout) wait for the next tick of the sample clock, which wakes the engine every packet
/// time anyway: a turn then serves every session due, and the shell sleeps from tick to tick
/// instead of waking for each session's timer on its own. None of them needs better than a
/// packet time. A connecting session keeps its exact timers (handshake retransmissions).
fn schedule(
    session: &mut Session,
    config: &EngineConfig,
    ticks: Ticks,
    timers: &mut BinaryHeap<Reverse<(Instant, SessionId)>>,
) {
    let wake = session.wake_at(config);
    let wake = if session.is_connected() { ticks.at_or_after(wake) } else { wake };
    if session.scheduled != Some(wake) {
        session.scheduled = Some(wake);
        timers.push(Reverse((wake, session.id())));
    }
}

#[cfg(test)]
mod tests;
