//! What a simulated caller does: the world's caller (`tapedeck_core::testkit::world::Caller`)
//! running a [`PlanScript`], which follows its [`PeerPlan`] from the moment it connected. Its
//! microphone captures a 20 ms frame every `20 ms / clock_rate`; a frame is dropped in a
//! silent stretch, held back in a stall (and sent with the rest of the backlog when the stall
//! ends), and written to str0m otherwise.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tapedeck_core::media::SAMPLE_RATE_HZ;
use tapedeck_core::testkit::audio::encode_tone;
use tapedeck_core::testkit::world::{Caller, Frames, Script, Step};

/// One frame of a caller's audio, on its own media clock.
const FRAME: Duration = Duration::from_millis(20);
/// A frame's length in RTP time (the sample rate's clock).
const FRAME_RTP: u64 = SAMPLE_RATE_HZ as u64 * FRAME.as_millis() as u64 / 1000;

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

/// A caller's plan in motion: what it captured and what it holds back.
pub(super) struct PlanScript {
    plan: PeerPlan,
    /// The plan's tone, in 20 ms frames.
    tone: Frames,
    /// When the caller captures its next frame (on its own media clock).
    next_send: Option<Instant>,
    /// Frames captured so far.
    captured: u64,
    rtp: u64,
    frame: usize,
    /// Frames captured during a stall, sent when it ends at `resume_at`.
    backlog: Vec<(Instant, u64, Arc<[u8]>)>,
    resume_at: Option<Instant>,
}

impl PlanScript {
    pub(super) fn new(plan: PeerPlan) -> Self {
        PlanScript {
            tone: tone_frames(plan.tone_hz),
            plan,
            next_send: None,
            captured: 0,
            rtp: 0,
            frame: 0,
            backlog: Vec::new(),
            resume_at: None,
        }
    }

    /// The caller's microphone hands over the frame captured at `at` (the caller connected
    /// at `connected`): it is dropped in a silent stretch, held back in a stall, and sent
    /// otherwise (after any backlog).
    fn capture_frame(&mut self, caller: &mut Caller, connected: Instant, at: Instant, now: Instant) {
        let since = at - connected;
        let rtp = self.rtp;
        self.rtp += FRAME_RTP;
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
        self.send_backlog(caller, now);
        caller.write(at, rtp, frame);
    }

    /// Sends every frame held back by a stall, at `now`, in order.
    fn send_backlog(&mut self, caller: &mut Caller, now: Instant) {
        self.resume_at = None;
        // str0m holds at most 50 written audio packets until it packetizes them on a
        // timeout (its `send_buffer_audio`), so each one goes out before the next is
        // written, as a sender pushing out a backlog would.
        for (at, rtp, frame) in std::mem::take(&mut self.backlog) {
            caller.write(at, rtp, frame);
            caller.flush(now);
        }
    }
}

impl Script for PlanScript {
    fn connected(&mut self, now: Instant) {
        self.next_send = Some(now);
    }

    /// A frame to capture, the end of a stall.
    fn next_event(&self) -> Option<Instant> {
        [self.next_send, self.resume_at].into_iter().flatten().min()
    }

    fn ends(&self, since: Duration) -> bool {
        since >= self.plan.hang_up_after || self.plan.vanish_after.is_some_and(|v| since >= v)
    }

    /// The end of the call, then the frames captured by `now`, then the end of a stall.
    fn drive(&mut self, caller: &mut Caller, at: Instant, now: Instant) -> Step {
        let since = now - at;
        if self.plan.vanish_after.is_some_and(|v| since >= v) {
            return Step::Vanish;
        }
        if since >= self.plan.hang_up_after {
            return Step::HangUp;
        }
        while let Some(t) = self.next_send.filter(|&t| t <= now) {
            self.capture_frame(caller, at, t, now);
            self.captured += 1;
            let next = FRAME.as_nanos() as f64 * self.captured as f64 / self.plan.clock_rate;
            self.next_send = Some(at + Duration::from_nanos(next.round() as u64));
        }
        if self.resume_at.is_some_and(|t| t <= now) {
            self.send_backlog(caller, now);
        }
        Step::Continue
    }
}

/// 1 s of a tone in 20 ms frames.
fn tone_frames(hz: u32) -> Frames {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<u32, Frames>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap();
    cache.entry(hz).or_insert_with(|| Arc::new(encode_tone(hz, FRAME))).clone()
}
