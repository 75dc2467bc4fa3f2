//! Many callers from one thread: the engine of `tapedeck-load`.
//!
//! One signalling thread posts offers at the ramp rate (blocking HTTP, about 3 ms each) and
//! hands each negotiated `Rtc` and its own UDP socket to the media loop, a single mio loop
//! that runs every caller: ICE, DTLS, SRTP, a pre-encoded tone at `ptime` pacing (on a media
//! clock that may run fast or slow, [`LoadConfig::clock_rate`]), and counting what the server
//! sends. Hang-ups go back to the signalling thread, so the loop never blocks. Received audio
//! is not decoded: the load generator measures, it does not listen.
//!
//! With [`LoadConfig::flood`], a STUN flood runs beside the callers on a thread and socket
//! of its own (see [`crate::flood`]), aimed at the daemon's UDP address from the answers.
#![allow(clippy::disallowed_methods)] // a load generator owns its threads and its clock

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use str0m::change::SdpAnswer;
use str0m::config::DtlsCert;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, Rtc};

use crate::flood::{self, FloodConfig, FloodReport, FloodTarget};
use crate::{encode_tone, http, offering, stamped, Offering};
use tapedeck_core::engine::opus_pt;

const WAKER: Token = Token(usize::MAX);

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub server: SocketAddr,
    pub callers: usize,
    /// How long each caller talks after connecting.
    pub talk: Duration,
    /// Offers per second.
    pub ramp: f64,
    /// Packet time of what the callers send.
    pub ptime: Duration,
    /// Packet time the server sends (for the expected count and the pacing schedule).
    pub server_ptime: Duration,
    /// How fast each caller's media clock runs against real time: a caller sends one frame
    /// of `ptime` (RTP advancing by its samples) every `ptime / clock_rate` of real time, as
    /// a sound card whose crystal runs fast or slow does. 1.0 is an exact clock.
    pub clock_rate: f64,
    /// A STUN flood to run beside the callers, if any.
    pub flood: Option<FloodConfig>,
}

/// What a run did: one result per caller, in order, and the flood's report if it ran.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub callers: Vec<CallerResult>,
    pub flood: Option<FloodReport>,
}

/// The slowest `LoadConfig::clock_rate` allowed: half speed.
pub const MIN_CLOCK_RATE: f64 = 0.5;
/// The fastest `LoadConfig::clock_rate` allowed: double speed.
pub const MAX_CLOCK_RATE: f64 = 2.0;

/// Parses a clock rate (`1.0`, `0.95`) within [`MIN_CLOCK_RATE`, `MAX_CLOCK_RATE`].
pub fn parse_clock_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number (a rate such as 0.95 or 1.05)"))?;
    if !(MIN_CLOCK_RATE..=MAX_CLOCK_RATE).contains(&rate) {
        return Err(format!("{rate} is outside {MIN_CLOCK_RATE} to {MAX_CLOCK_RATE} (half to double real time)"));
    }
    Ok(rate)
}

/// One caller's outcome.
#[derive(Debug, Clone, Default)]
pub struct CallerResult {
    pub error: Option<String>,
    pub answer_ms: Option<f64>,
    pub connect_ms: Option<f64>,
    pub talked: Option<Duration>,
    pub sent: u64,
    pub received: u64,
    /// Largest gap between two received packets, ms, by the kernel's arrival stamps (on
    /// loopback: when the server sent them).
    pub max_gap_ms: f64,
    /// The same gap by when this process got to read them.
    pub max_gap_seen_ms: f64,
    /// Deviations of arrival times from the ideal schedule (ms, after removing the median),
    /// by the kernel's arrival stamps: the server's pacing.
    pub deviations_ms: Vec<f32>,
    /// The same deviations by when this process read each packet (its own delays included).
    pub seen_deviations_ms: Vec<f32>,
    pub hangup_status: Option<u16>,
    /// The recording's file name, from the answer.
    pub recording: Option<String>,
    /// The tone this caller sent, Hz.
    pub tone_hz: u32,
}

struct Caller {
    index: usize,
    socket: UdpSocket,
    local: SocketAddr,
    rtc: Rtc,
    mid: Mid,
    pt: Option<Pt>,
    session: String,
    answered_at: Instant,
    connected_at: Option<Instant>,
    next_send: Option<Instant>,
    /// Real time between two frames: `ptime / clock_rate`.
    send_interval: Duration,
    wake: Instant,
    /// The wake-up filed in the timer heap, if any (older entries are stale).
    scheduled: Option<Instant>,
    rtp: u64,
    frame_samples: u64,
    frame: usize,
    tone: Arc<Vec<Arc<[u8]>>>,
    /// The kernel's stamp of the datagram being handled (see [`crate::stamped`]).
    stamp: Option<Duration>,
    last_rx: Option<(Instant, Duration)>,
    first_rx: Option<(Instant, Duration, u64)>,
    result: CallerResult,
    done: bool,
}

enum ToLoop {
    Caller(Box<Caller>),
    Failed(usize, CallerResult),
}

enum ToSignalling {
    Hangup(usize, String),
}

/// Runs the load (and the flood, if asked for).
pub fn run(config: &LoadConfig) -> std::io::Result<Outcome> {
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (to_loop, from_signalling) = unbounded();
    let (to_signalling, hangups) = unbounded();
    let stop_flood = Arc::new(AtomicBool::new(false));
    let (to_flood, flooding) = match &config.flood {
        Some(f) => {
            let (tx, rx) = unbounded();
            (Some(tx), Some(flood::spawn(f.clone(), rx, stop_flood.clone())?))
        }
        None => (None, None),
    };
    let signalling = {
        let config = config.clone();
        let waker = waker.clone();
        std::thread::Builder::new()
            .name("load-signalling".into())
            .spawn(move || signalling(&config, &to_loop, &hangups, to_flood.as_ref(), &waker))?
    };
    let results = media_loop(config, &mut poll, &from_signalling, &to_signalling);
    stop_flood.store(true, Ordering::Relaxed);
    drop(to_signalling);
    let hangup_statuses = signalling.join().unwrap_or_default();
    let flood = flooding.map(|f| f.join().unwrap_or_default());
    let mut results = results?;
    for (i, status) in hangup_statuses {
        if let Some(r) = results.get_mut(i) {
            r.hangup_status = Some(status);
        }
    }
    Ok(Outcome { callers: results, flood })
}

fn signalling(
    config: &LoadConfig,
    to_loop: &Sender<ToLoop>,
    hangups: &Receiver<ToSignalling>,
    to_flood: Option<&Sender<FloodTarget>>,
    waker: &Waker,
) -> Vec<(usize, u16)> {
    let cert = str0m::crypto::from_feature_flags().dtls_provider.generate_certificate();
    let gap = Duration::from_secs_f64(1.0 / config.ramp.max(0.01));
    let start = Instant::now();
    let mut statuses = Vec::new();
    let hang_up = |msg: ToSignalling, statuses: &mut Vec<(usize, u16)>| {
        let ToSignalling::Hangup(i, session) = msg;
        let path = format!("/sessions/{session}");
        if let Ok(r) = http::request(config.server, "DELETE", &path, None, b"", Duration::from_secs(5)) {
            statuses.push((i, r.status));
        }
    };
    for i in 0..config.callers {
        let due = start + gap * i as u32;
        while let Ok(msg) = hangups.recv_deadline(due) {
            hang_up(msg, &mut statuses);
        }
        let msg = match offer(config, i, cert.clone(), to_flood) {
            Ok(c) => ToLoop::Caller(Box::new(c)),
            Err(e) => ToLoop::Failed(i, CallerResult { error: Some(e), ..Default::default() }),
        };
        if to_loop.send(msg).is_err() {
            break;
        }
        let _ = waker.wake();
    }
    for msg in hangups.iter() {
        hang_up(msg, &mut statuses);
    }
    statuses
}

fn offer(
    config: &LoadConfig,
    index: usize,
    cert: Option<DtlsCert>,
    to_flood: Option<&Sender<FloodTarget>>,
) -> Result<Caller, String> {
    let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    std_socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    stamped::enable(&std_socket).map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
    let local = std_socket.local_addr().map_err(|e| e.to_string())?;
    let now = Instant::now();
    let Offering { mut rtc, mid, offer, pending } = offering(local, now, cert)?;
    let body = serde_json::json!({ "type": "offer", "sdp": offer.to_sdp_string() }).to_string();
    // Offer-to-answer is the daemon's part: from the request (our own Rtc is built) to the answer.
    let posted = Instant::now();
    let r = http::request(
        config.server,
        "POST",
        "/offer",
        Some("application/json"),
        body.as_bytes(),
        Duration::from_secs(5),
    )
    .map_err(|e| format!("POST /offer: {e}"))?;
    if r.status != 200 {
        return Err(format!("POST /offer: {} {}", r.status, String::from_utf8_lossy(&r.body)));
    }
    let answered_at = Instant::now();
    let json = r.json();
    let session = json["session"].as_str().ok_or("no session in the answer")?.to_string();
    let answer_sdp = json["sdp"].as_str().ok_or("no sdp")?;
    if let (Some(tx), Some(target)) = (to_flood, flood::answer_target(answer_sdp)) {
        let _ = tx.send(target);
    }
    let answer = SdpAnswer::from_sdp_string(answer_sdp).map_err(|e| e.to_string())?;
    rtc.sdp_api().accept_answer(pending, answer).map_err(|e| e.to_string())?;
    let tone_hz = 200 + 20 * (index % 40) as u32;
    let tone = tone(tone_hz, config.ptime);
    Ok(Caller {
        index,
        socket: UdpSocket::from_std(std_socket),
        local,
        rtc,
        mid,
        pt: None,
        session,
        answered_at,
        connected_at: None,
        next_send: None,
        send_interval: config.ptime.div_f64(config.clock_rate),
        wake: answered_at,
        scheduled: None,
        rtp: 0,
        frame_samples: config.ptime.as_micros() as u64 * 48 / 1000,
        frame: 0,
        tone,
        stamp: None,
        last_rx: None,
        first_rx: None,
        result: CallerResult {
            answer_ms: Some((answered_at - posted).as_secs_f64() * 1000.0),
            recording: json["recording"].as_str().map(str::to_string),
            tone_hz,
            ..Default::default()
        },
        done: false,
    })
}

/// A tone's frames, encoded once and shared by every caller with that tone.
fn tone(hz: u32, ptime: Duration) -> Arc<Vec<Arc<[u8]>>> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Tones = Mutex<HashMap<(u32, Duration), Arc<Vec<Arc<[u8]>>>>>;
    static TONES: OnceLock<Tones> = OnceLock::new();
    let tones = TONES.get_or_init(Default::default);
    let mut tones = tones.lock().unwrap_or_else(|p| p.into_inner());
    tones.entry((hz, ptime)).or_insert_with(|| Arc::new(encode_tone(hz, ptime))).clone()
}

/// Shortest time between two turns of the media loop. Without it every caller's 20 ms send
/// and every received datagram would be a wake-up of its own; with it one turn serves all
/// that came due, at the cost of sending up to this much late (browsers pace no better).
const MIN_TURN: Duration = Duration::from_millis(1);

fn media_loop(
    config: &LoadConfig,
    poll: &mut Poll,
    from_signalling: &Receiver<ToLoop>,
    to_signalling: &Sender<ToSignalling>,
) -> std::io::Result<Vec<CallerResult>> {
    let mut callers: Vec<Option<Caller>> = (0..config.callers).map(|_| None).collect();
    let mut results: Vec<Option<CallerResult>> = vec![None; config.callers];
    let mut remaining = config.callers;
    let mut timers: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 2048];
    let mut due = Vec::new();
    let mut finished = Vec::new();
    let deadline = Instant::now()
        + Duration::from_secs_f64(config.callers as f64 / config.ramp.max(0.01))
        + config.talk
        + Duration::from_secs(30);
    let mut last_turn = Instant::now();
    while remaining > 0 && Instant::now() < deadline {
        let now = Instant::now();
        let next = timers.peek().map_or(now + Duration::from_millis(50), |Reverse((t, _))| *t);
        poll.poll(&mut events, Some(next.saturating_duration_since(now).min(Duration::from_millis(50))))?;
        let mut now = Instant::now();
        if now < last_turn + MIN_TURN {
            // Gather what else comes due in the meantime into this turn.
            std::thread::sleep(last_turn + MIN_TURN - now);
            now = Instant::now();
        }
        last_turn = now;
        for msg in from_signalling.try_iter() {
            match msg {
                ToLoop::Failed(i, r) => {
                    results[i] = Some(r);
                    remaining -= 1;
                }
                ToLoop::Caller(mut c) => {
                    let i = c.index;
                    poll.registry().register(&mut c.socket, Token(i), Interest::READABLE)?;
                    c.wake = now;
                    c.schedule(&mut timers);
                    callers[i] = Some(*c);
                }
            }
        }
        for ev in events.iter() {
            if ev.token() == WAKER {
                continue;
            }
            if let Some(c) = callers.get_mut(ev.token().0).and_then(Option::as_mut) {
                // Reading drains str0m after each datagram; a turn (timeouts, sending) only
                // when one is due, else the timer heap brings the caller back in time.
                c.read(&mut buf, now);
                if c.wake <= now && !c.done {
                    c.turn(now, config, to_signalling);
                }
                if c.done {
                    finished.push(c.index);
                } else {
                    c.schedule(&mut timers);
                }
            }
        }
        while let Some(&Reverse((t, i))) = timers.peek() {
            if t > now {
                break;
            }
            timers.pop();
            if let Some(c) = callers[i].as_mut().filter(|c| c.scheduled == Some(t) && !c.done) {
                c.scheduled = None;
                due.push(i); // else superseded by a later wake-up
            }
        }
        for i in due.drain(..) {
            let Some(c) = callers[i].as_mut() else { continue };
            c.turn(now, config, to_signalling);
            if c.done {
                finished.push(i);
            } else {
                c.schedule(&mut timers);
            }
        }
        for i in finished.drain(..) {
            if let Some(mut c) = callers[i].take() {
                let _ = poll.registry().deregister(&mut c.socket);
                results[i] = Some(c.finish());
                remaining -= 1;
            }
        }
    }
    for c in callers.into_iter().flatten() {
        let i = c.index;
        let mut r = c.finish();
        r.error.get_or_insert_with(|| "did not finish in time".into());
        results[i] = Some(r);
    }
    Ok(results.into_iter().map(Option::unwrap_or_default).collect())
}

impl Caller {
    /// Files the caller's wake-up in `timers`, unless that very time is filed already.
    fn schedule(&mut self, timers: &mut BinaryHeap<Reverse<(Instant, usize)>>) {
        if self.scheduled != Some(self.wake) {
            self.scheduled = Some(self.wake);
            timers.push(Reverse((self.wake, self.index)));
        }
    }

    fn read(&mut self, buf: &mut [u8], now: Instant) {
        loop {
            match stamped::recv(&self.socket, buf) {
                Ok((n, source, stamp)) => {
                    if let Ok(r) = Receive::new(Protocol::Udp, source, self.local, &buf[..n]) {
                        let _ = self.rtc.handle_input(str0m::Input::Receive(now, r));
                        // Drain now, so the audio this datagram completes gets its stamp.
                        self.stamp = stamp;
                        self.drain(now);
                        self.stamp = None;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Timeouts, sending, draining; sets the next wake-up.
    fn turn(&mut self, now: Instant, config: &LoadConfig, hangups: &Sender<ToSignalling>) {
        if self.done {
            return;
        }
        let _ = self.rtc.handle_input(str0m::Input::Timeout(now));
        if let Some(connected) = self.connected_at {
            if now - connected >= config.talk {
                self.result.talked = Some(now - connected);
                let _ = hangups.send(ToSignalling::Hangup(self.index, self.session.clone()));
                self.done = true;
                return;
            }
            while let Some(t) = self.next_send.filter(|t| *t <= now) {
                self.send_frame(t);
                self.next_send = Some(t + self.send_interval);
            }
        } else if now - self.answered_at > Duration::from_secs(15) {
            self.result.error = Some("did not connect within 15 s".into());
            self.done = true;
            return;
        }
        self.drain(now);
    }

    fn drain(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output() {
                Ok(str0m::Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Ok(str0m::Output::Event(Event::Connected)) => {
                    self.connected_at = Some(now);
                    self.next_send = Some(now);
                    self.result.connect_ms = Some((now - self.answered_at).as_secs_f64() * 1000.0);
                }
                Ok(str0m::Output::Event(Event::MediaData(d))) => {
                    let rtp = d.time.rebase(Frequency::FORTY_EIGHT_KHZ).numer();
                    self.arrived(now, rtp);
                }
                Ok(str0m::Output::Event(_)) => {}
                Ok(str0m::Output::Timeout(t)) => {
                    self.wake = self.next_send.map_or(t, |s| s.min(t)).max(now);
                    return;
                }
                Err(e) => {
                    self.result.error = Some(format!("str0m: {e}"));
                    self.done = true;
                    return;
                }
            }
        }
    }

    /// Counts one received audio packet and how far its arrival strays from the schedule the
    /// first packet set, by the kernel's stamp and by when this process read it.
    fn arrived(&mut self, seen: Instant, rtp: u64) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        // Without a stamp (there always is one on Linux), the read time stands in.
        let sent = self.stamp.unwrap_or_else(|| {
            let (seen0, sent0, _) = self.first_rx.unwrap_or((seen, Duration::ZERO, 0));
            sent0 + seen.saturating_duration_since(seen0)
        });
        self.result.received += 1;
        if let Some((last_seen, last_sent)) = self.last_rx {
            self.result.max_gap_ms = self.result.max_gap_ms.max(ms(sent.saturating_sub(last_sent)));
            self.result.max_gap_seen_ms =
                self.result.max_gap_seen_ms.max(ms(seen.saturating_duration_since(last_seen)));
        }
        self.last_rx = Some((seen, sent));
        let (seen0, sent0, rtp0) = *self.first_rx.get_or_insert((seen, sent, rtp));
        let ideal = rtp.wrapping_sub(rtp0) as f64 / 48.0;
        self.result.deviations_ms.push((ms(sent.saturating_sub(sent0)) - ideal) as f32);
        self.result.seen_deviations_ms.push((ms(seen.saturating_duration_since(seen0)) - ideal) as f32);
    }

    fn send_frame(&mut self, at: Instant) {
        let rtp = self.rtp;
        self.rtp += self.frame_samples;
        let frame = self.tone[self.frame % self.tone.len()].clone();
        self.frame += 1;
        let Some(pt) = self.pt.or_else(|| opus_pt(&mut self.rtc, self.mid).ok()) else { return };
        self.pt = Some(pt);
        let Some(writer) = self.rtc.writer(self.mid) else { return };
        if writer.write(pt, at, MediaTime::new(rtp, Frequency::FORTY_EIGHT_KHZ), frame).is_ok() {
            self.result.sent += 1;
        }
    }

    fn finish(self) -> CallerResult {
        let mut r = self.result;
        around_median(&mut r.deviations_ms);
        around_median(&mut r.seen_deviations_ms);
        r
    }
}

/// Replaces each value by its distance from the median (a constant offset is no deviation).
fn around_median(values: &mut [f32]) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    for v in values {
        *v = (*v - median).abs();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_rate_is_a_number_from_half_to_double_speed() {
        assert_eq!(parse_clock_rate("1.0"), Ok(1.0));
        assert_eq!(parse_clock_rate("0.95"), Ok(0.95));
        assert_eq!(parse_clock_rate("2"), Ok(2.0));
        assert!(parse_clock_rate("0.49").unwrap_err().contains("outside 0.5 to 2"));
        assert!(parse_clock_rate("3").is_err());
        assert!(parse_clock_rate("NaN").is_err());
        assert!(parse_clock_rate("fast").unwrap_err().contains("not a number"));
    }
}
