//! One simulated caller: a str0m `Rtc` that offered to the engine, following its
//! [`PeerPlan`] from the moment it connected. Its microphone captures a 20 ms frame every
//! `20 ms / clock_rate`; a frame is dropped in a silent stretch, held back in a stall (and
//! sent with the rest of the backlog when the stall ends), and written to str0m otherwise.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, Rtc};
use tapedeck_core::engine::opus_pt;
use tapedeck_core::engine::SessionId;
use tapedeck_tools::encode_tone;

/// One frame of a caller's audio, on its own media clock.
const FRAME: Duration = Duration::from_millis(20);

/// Opus frames, encoded once per process.
pub(super) type Frames = Arc<Vec<Arc<[u8]>>>;

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
    /// The speed of the caller's media clock against real time: one 20 ms frame every
    /// `20 ms / clock_rate` (1.0: on time; 0.95: a slow sender; 1.05: a fast one).
    pub clock_rate: f64,
    /// (at, length): from `at`, the caller captures frames but sends none for `length`,
    /// then sends the backlog at once and carries on.
    pub stalls: Vec<(Duration, Duration)>,
}

impl PeerPlan {
    pub fn tone(tone_hz: u32, seconds: f64) -> Self {
        PeerPlan {
            tone_hz,
            silent: Vec::new(),
            hang_up_after: Duration::from_secs_f64(seconds),
            vanish_after: None,
            clock_rate: 1.0,
            stalls: Vec::new(),
        }
    }

    /// The end of the stall `since` (time since connected) falls in, if any.
    fn stalled(&self, since: Duration) -> Option<Duration> {
        self.stalls.iter().find(|&&(at, len)| since >= at && since < at + len).map(|&(at, len)| at + len)
    }
}

/// A datagram a caller sends: (source, destination, contents).
pub(super) type Outgoing = (SocketAddr, SocketAddr, Vec<u8>);

pub(super) struct Peer {
    pub(super) id: SessionId,
    pub(super) addr: SocketAddr,
    rtc: Rtc,
    mid: Mid,
    pt: Option<Pt>,
    plan: PeerPlan,
    /// The plan's tone, in 20 ms frames.
    tone: Frames,
    connected_at: Option<Instant>,
    deadline: Instant,
    /// When the caller captures its next frame (on its own media clock).
    next_send: Option<Instant>,
    /// Frames captured so far.
    captured: u64,
    rtp: u64,
    frame: usize,
    /// Frames captured during a stall, sent when it ends at `resume_at`.
    backlog: Vec<(Instant, u64, Arc<[u8]>)>,
    /// Datagrams of a backlog, and the time it goes out.
    burst: Vec<Outgoing>,
    now: Instant,
    resume_at: Option<Instant>,
    /// Audio frames written to str0m.
    pub(super) frames_sent: u64,
    /// Hung up, vanished or failed: no longer driven.
    pub(super) gone: bool,
    /// A datagram arrived since the peer was last polled.
    dirty: bool,
}

impl Peer {
    pub(super) fn new(id: SessionId, addr: SocketAddr, rtc: Rtc, mid: Mid, plan: PeerPlan, now: Instant) -> Self {
        Peer {
            id,
            addr,
            rtc,
            mid,
            pt: None,
            tone: tone_frames(plan.tone_hz),
            plan,
            connected_at: None,
            deadline: now,
            next_send: None,
            captured: 0,
            rtp: 0,
            frame: 0,
            backlog: Vec::new(),
            burst: Vec::new(),
            now,
            resume_at: None,
            frames_sent: 0,
            gone: false,
            dirty: true,
        }
    }

    /// When the caller next needs driving (str0m's timeout, a frame, the end of a stall).
    pub(super) fn next_event(&self) -> Instant {
        [self.next_send, self.resume_at].into_iter().flatten().fold(self.deadline, Instant::min)
    }

    /// A datagram reached the caller.
    pub(super) fn receive(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        if let Ok(r) = Receive::new(Protocol::Udp, from, to, bytes) {
            let _ = self.rtc.handle_input(str0m::Input::Receive(now, r));
            self.dirty = true;
        }
    }

    /// Drives the caller at `now`: str0m's timeout, the plan (frames, stalls, the end of the
    /// call), then str0m's output into `outgoing`. Returns true if the caller hangs up now.
    pub(super) fn drive(&mut self, now: Instant, outgoing: &mut Vec<Outgoing>) -> bool {
        let due = self.dirty || self.next_event() <= now;
        let ends = self.connected_at.is_some_and(|at| {
            now - at >= self.plan.hang_up_after || self.plan.vanish_after.is_some_and(|v| now - at >= v)
        });
        if !due && !ends {
            return false;
        }
        self.dirty = false;
        self.now = now;
        if self.deadline <= now {
            let _ = self.rtc.handle_input(str0m::Input::Timeout(now));
        }
        if let Some(at) = self.connected_at {
            let since = now - at;
            if self.plan.vanish_after.is_some_and(|v| since >= v) {
                self.gone = true;
                return false;
            }
            if since >= self.plan.hang_up_after {
                self.gone = true;
                return true;
            }
            while let Some(t) = self.next_send.filter(|&t| t <= now) {
                self.capture_frame(t);
                self.captured += 1;
                let next = FRAME.as_nanos() as f64 * self.captured as f64 / self.plan.clock_rate;
                self.next_send = Some(at + Duration::from_nanos(next.round() as u64));
            }
            if self.resume_at.is_some_and(|t| t <= now) {
                self.send_backlog();
            }
        }
        outgoing.append(&mut self.burst);
        self.poll(now, outgoing);
        false
    }

    /// Drains str0m until its next timeout.
    fn poll(&mut self, now: Instant, outgoing: &mut Vec<Outgoing>) {
        loop {
            match self.rtc.poll_output() {
                Ok(str0m::Output::Transmit(t)) => outgoing.push((t.source, t.destination, t.contents.to_vec())),
                Ok(str0m::Output::Event(Event::Connected)) => {
                    self.connected_at = Some(now);
                    self.next_send = Some(now);
                }
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

    /// The caller's microphone hands over the frame captured at `at`: it is dropped in a
    /// silent stretch, held back in a stall, and sent otherwise (after any backlog).
    fn capture_frame(&mut self, at: Instant) {
        let connected = self.connected_at.expect("frames are captured once connected");
        let since = at - connected;
        let rtp = self.rtp;
        self.rtp += 960;
        let frame = self.tone[self.frame % self.tone.len()].clone();
        self.frame += 1;
        if self.plan.silent.iter().any(|&(a, b)| since >= a && since < b) {
            return;
        }
        if let Some(end) = self.plan.stalled(since) {
            self.backlog.push((at, rtp, frame));
            self.resume_at = Some(connected + end);
            return;
        }
        self.send_backlog();
        self.send_frame(at, rtp, frame);
    }

    /// Sends every frame held back by a stall, in one instant, in order.
    fn send_backlog(&mut self) {
        self.resume_at = None;
        // str0m holds at most 50 written audio packets until it packetizes them on a
        // timeout (its `send_buffer_audio`), so each one goes out before the next is
        // written, as a sender pushing out a backlog would.
        for (at, rtp, frame) in std::mem::take(&mut self.backlog) {
            self.send_frame(at, rtp, frame);
            let _ = self.rtc.handle_input(str0m::Input::Timeout(self.now));
            while let Ok(str0m::Output::Transmit(t)) = self.rtc.poll_output() {
                self.burst.push((t.source, t.destination, t.contents.to_vec()));
            }
        }
    }

    /// Writes one frame to str0m; `at` is when it was captured.
    fn send_frame(&mut self, at: Instant, rtp: u64, frame: Arc<[u8]>) {
        let Some(pt) = self.pt.or_else(|| opus_pt(&mut self.rtc, self.mid).ok()) else { return };
        self.pt = Some(pt);
        let Some(writer) = self.rtc.writer(self.mid) else { return };
        if writer.write(pt, at, MediaTime::new(rtp, Frequency::FORTY_EIGHT_KHZ), frame).is_ok() {
            self.frames_sent += 1;
        }
    }
}

/// 1 s of a tone in 20 ms frames.
fn tone_frames(hz: u32) -> Frames {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<u32, Frames>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap();
    cache.entry(hz).or_insert_with(|| Arc::new(encode_tone(hz, Duration::from_millis(20)))).clone()
}
