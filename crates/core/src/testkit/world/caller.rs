//! A caller in the world: an offering str0m `Rtc` on one address, driven when it is due
//! (a datagram arrived, str0m's timeout, its [`Script`]'s next event). Once connected, its
//! script decides what it sends and when the call ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, Rtc};

use crate::engine::{opus_pt, SessionId};
use crate::media::SAMPLE_RATE_HZ;

/// What a caller does once connected: the audio it writes, and when its call ends.
pub trait Script {
    /// The caller connected at `now`.
    fn connected(&mut self, now: Instant);
    /// When the script next wants to run (a frame due, say), if ever.
    fn next_event(&self) -> Option<Instant>;
    /// Whether the call is over `since` the caller connected (the caller is then driven
    /// even if nothing else is due).
    fn ends(&self, since: Duration) -> bool {
        let _ = since;
        false
    }
    /// Runs at `now` for the caller connected at `at`: writes its audio
    /// ([`Caller::write`], [`Caller::flush`]) and says whether the call goes on.
    fn drive(&mut self, caller: &mut Caller, at: Instant, now: Instant) -> Step;
}

/// What a caller does after its script ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// Hangs up (the engine is told, as a DELETE would) and sends nothing more.
    HangUp,
    /// Stops sending anything, without a word.
    Vanish,
}

/// A script that sends no audio.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Script for Silent {
    fn connected(&mut self, _now: Instant) {}

    fn next_event(&self) -> Option<Instant> {
        None
    }

    fn drive(&mut self, _caller: &mut Caller, _at: Instant, _now: Instant) -> Step {
        Step::Continue
    }
}

/// A script that writes one frame every `every` from the moment the caller connected, its
/// RTP time advancing by `every` at the sample rate, and sends it at once. The call goes on
/// until the test ends it.
#[derive(Debug, Clone)]
pub struct Steady {
    frame: Arc<[u8]>,
    every: Duration,
    next: Option<Instant>,
    rtp: u64,
}

impl Steady {
    pub fn new(frame: Arc<[u8]>, every: Duration) -> Self {
        Steady { frame, every, next: None, rtp: 0 }
    }
}

impl Script for Steady {
    fn connected(&mut self, now: Instant) {
        self.next = Some(now);
    }

    fn next_event(&self) -> Option<Instant> {
        self.next
    }

    fn drive(&mut self, caller: &mut Caller, _at: Instant, now: Instant) -> Step {
        while let Some(t) = self.next.filter(|&t| t <= now) {
            caller.write(t, self.rtp, self.frame.clone());
            self.rtp += self.every.as_micros() as u64 * u64::from(SAMPLE_RATE_HZ) / 1_000_000;
            self.next = Some(t + self.every);
        }
        // str0m packetizes what was written on a timeout: this one sends it now.
        let _ = caller.rtc.handle_input(str0m::Input::Timeout(now));
        Step::Continue
    }
}

/// An offering str0m caller in the world.
pub struct Caller {
    pub id: SessionId,
    /// Where the caller is, as the network sees it: what it sends comes from here, what is
    /// sent here reaches it (a test may move it, as a NAT rebinding would).
    pub addr: SocketAddr,
    pub rtc: Rtc,
    pub mid: Mid,
    /// What it sends other than STUN is lost on the way (its DTLS never arrives, say).
    pub only_stun: bool,
    /// When str0m reported the caller connected.
    pub connected_at: Option<Instant>,
    /// Media packets it received.
    pub received: usize,
    /// Audio frames it wrote to str0m.
    pub frames_sent: u64,
    /// Hung up, vanished or failed: no longer driven.
    pub gone: bool,
    script: Box<dyn Script>,
    pt: Option<Pt>,
    deadline: Instant,
    /// A datagram arrived since it was last driven.
    dirty: bool,
    /// What it sent since the world last took it: (destination, contents).
    outbox: Vec<(SocketAddr, Vec<u8>)>,
}

impl Caller {
    pub(super) fn new(
        id: SessionId,
        addr: SocketAddr,
        rtc: Rtc,
        mid: Mid,
        script: Box<dyn Script>,
        now: Instant,
    ) -> Self {
        Caller {
            id,
            addr,
            rtc,
            mid,
            only_stun: false,
            connected_at: None,
            received: 0,
            frames_sent: 0,
            gone: false,
            script,
            pt: None,
            deadline: now,
            dirty: true,
            outbox: Vec::new(),
        }
    }

    /// Writes one audio frame captured at `at` to str0m (sent on its next timeout); counted
    /// in [`Caller::frames_sent`] if str0m took it.
    pub fn write(&mut self, at: Instant, rtp: u64, frame: Arc<[u8]>) {
        let Some(pt) = self.pt.or_else(|| opus_pt(&mut self.rtc, self.mid).ok()) else { return };
        self.pt = Some(pt);
        let Some(writer) = self.rtc.writer(self.mid) else { return };
        if writer.write(pt, at, MediaTime::new(rtp, Frequency::FORTY_EIGHT_KHZ), frame).is_ok() {
            self.frames_sent += 1;
        }
    }

    /// Lets str0m packetize what was written, at `now`, and takes the datagrams it sends
    /// right away (up to its first other output, which is dropped), as a sender pushing out a
    /// backlog one packet at a time would.
    pub fn flush(&mut self, now: Instant) {
        let _ = self.rtc.handle_input(str0m::Input::Timeout(now));
        while let Ok(str0m::Output::Transmit(t)) = self.rtc.poll_output() {
            self.outbox.push((t.destination, t.contents.to_vec()));
        }
    }

    /// When the caller next needs driving: str0m's timeout or its script's next event.
    pub(super) fn next_event(&self) -> Instant {
        self.script.next_event().map_or(self.deadline, |t| t.min(self.deadline))
    }

    /// A datagram reached the caller.
    pub(super) fn receive(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        if let Ok(r) = Receive::new(Protocol::Udp, from, to, bytes) {
            let _ = self.rtc.handle_input(str0m::Input::Receive(now, r));
            self.dirty = true;
        }
    }

    /// Drives the caller at `now`, if it is due or its call ends: str0m's timeout, its
    /// script, then str0m's output. A caller that hangs up or vanishes sends nothing more.
    pub(super) fn drive(&mut self, now: Instant) -> Step {
        let due = self.dirty || self.next_event() <= now;
        let ends = self.connected_at.is_some_and(|at| self.script.ends(now - at));
        if !due && !ends {
            return Step::Continue;
        }
        self.dirty = false;
        if self.deadline <= now {
            let _ = self.rtc.handle_input(str0m::Input::Timeout(now));
        }
        if let Some(at) = self.connected_at {
            // The script drives this caller; a placeholder holds its place meanwhile.
            let mut script = std::mem::replace(&mut self.script, Box::new(Silent));
            let step = script.drive(self, at, now);
            self.script = script;
            if step != Step::Continue {
                self.gone = true;
                self.outbox.clear();
                return step;
            }
        }
        self.poll(now);
        Step::Continue
    }

    /// Moves what the caller sent into `outgoing` as (source, destination, contents).
    pub(super) fn take_outbox(&mut self, outgoing: &mut Vec<(SocketAddr, SocketAddr, Vec<u8>)>) {
        for (to, bytes) in self.outbox.drain(..) {
            // STUN messages start with 0 or 1; DTLS, RTP and RTCP with more.
            if self.only_stun && bytes.first().is_some_and(|&b| b > 3) {
                continue;
            }
            outgoing.push((self.addr, to, bytes));
        }
    }

    /// Drains str0m until its next timeout.
    fn poll(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output() {
                Ok(str0m::Output::Transmit(t)) => self.outbox.push((t.destination, t.contents.to_vec())),
                Ok(str0m::Output::Event(Event::Connected)) => {
                    self.connected_at = Some(now);
                    self.script.connected(now);
                }
                Ok(str0m::Output::Event(Event::MediaData(_))) => self.received += 1,
                Ok(str0m::Output::Event(_)) => {}
                Ok(str0m::Output::Timeout(t)) => {
                    self.deadline = t;
                    return;
                }
                Err(_) => {
                    self.gone = true;
                    return;
                }
            }
        }
    }
}
