//! tapedeck's test tools. The crate root is a caller: an offering str0m peer on its own UDP
//! socket, for the end-to-end tests and the load generator ([`load`], `tapedeck-load`). It posts its offer over HTTP, connects with full ICE, DTLS and SRTP,
//! sends an Opus-encoded tone at browser pacing following a [`CallPlan`], decodes what the
//! server plays, and hangs up with `DELETE /sessions/{id}`.
//!
//! This is I/O code (it owns a socket and reads the clock); it is not part of the engine.
#![allow(clippy::disallowed_methods)] // a caller is a shell of its own: it reads the clock

pub mod flood;
pub mod http;
pub mod load;
pub mod recordings;
pub mod stamped;

use std::f32::consts::TAU;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, Input, Output, Rtc};
use tapedeck_core::engine::opus_pt;
use tapedeck_core::testkit::rng::Rng;

/// One stretch of a call, counted from the moment it connected.
#[derive(Debug, Clone, Copy)]
pub enum Segment {
    /// Send the tone.
    Tone(Duration),
    /// Send nothing (a muted microphone or DTX); RTP time runs on.
    Silence(Duration),
}

/// How a caller ends its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `DELETE /sessions/{id}`.
    Delete,
    /// Close DTLS (close_notify), as a browser's `pc.close()` does.
    DtlsClose,
    /// Just stop sending anything, as a crashed or disconnected caller does.
    Vanish,
}

/// What a caller does.
#[derive(Debug, Clone)]
pub struct CallPlan {
    /// The daemon's HTTP address.
    pub server: SocketAddr,
    /// The tone's frequency in Hz.
    pub tone_hz: f32,
    /// What to send after connecting; the call hangs up when the plan ends.
    pub talk: Vec<Segment>,
    /// Packet time of what we send.
    pub ptime: Duration,
    /// Fraction of datagrams dropped on the way to the server once connected.
    pub send_loss: f64,
    /// Seed of the loss pattern.
    pub seed: u64,
    /// How the call ends when the plan is over.
    pub ending: Ending,
    /// Give up if not connected within this time.
    pub connect_timeout: Duration,
    /// Signal with WHIP (RFC 9725: `POST /whip` with `application/sdp`, `DELETE` on the
    /// `Location`) instead of the JSON `POST /offer`.
    pub whip: bool,
    /// Sent as `Authorization: Bearer <token>` on every request.
    pub token: Option<String>,
    /// Sent as `?label=...` on the offer (the daemon's `{label}` in `--name-template`).
    pub label: Option<String>,
}

impl CallPlan {
    /// POSTs an offer to `path` (with the plan's label, token and `content_type`).
    fn post_offer_to(&self, path: &str, content_type: &str, body: &[u8]) -> Result<http::HttpResponse, String> {
        let headers = self.headers(Some(content_type));
        http::request_with(self.server, "POST", &self.offer_path(path), &headers, body, Duration::from_secs(5))
            .map_err(|e| format!("POST {path}: {e}"))
    }

    /// `path`, with the plan's label as `?label=` (percent-encoded).
    fn offer_path(&self, path: &str) -> String {
        match &self.label {
            Some(label) => {
                let encoded: String = label
                    .bytes()
                    .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
                    .collect();
                format!("{path}?label={encoded}")
            }
            None => path.to_owned(),
        }
    }

    /// A plan that sends `tone_hz` for `talk` and hangs up.
    pub fn tone(server: SocketAddr, tone_hz: f32, talk: Duration) -> Self {
        CallPlan {
            server,
            tone_hz,
            talk: vec![Segment::Tone(talk)],
            ptime: Duration::from_millis(20),
            send_loss: 0.0,
            seed: 1,
            ending: Ending::Delete,
            connect_timeout: Duration::from_secs(10),
            whip: false,
            token: None,
            label: None,
        }
    }

    fn length(&self) -> Duration {
        self.talk
            .iter()
            .map(|s| match s {
                Segment::Tone(d) | Segment::Silence(d) => *d,
            })
            .sum()
    }

    fn sends_at(&self, t: Duration) -> bool {
        let mut start = Duration::ZERO;
        for s in &self.talk {
            let (d, tone) = match s {
                Segment::Tone(d) => (*d, true),
                Segment::Silence(d) => (*d, false),
            };
            if t < start + d {
                return tone;
            }
            start += d;
        }
        false
    }
}

/// One packet received from the server.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub arrival: Instant,
    pub rtp_time: u64,
    /// Where this packet's audio starts in [`CallReport::pcm`].
    pub pcm_offset: usize,
}

/// What happened during a call.
#[derive(Debug, Clone, Default)]
pub struct CallReport {
    pub answer_status: u16,
    pub session: Option<String>,
    pub recording: Option<String>,
    pub offered_at: Option<Instant>,
    pub answered_at: Option<Instant>,
    pub connected_at: Option<Instant>,
    /// When the hang-up request was sent.
    pub hangup_at: Option<Instant>,
    pub hangup_status: Option<u16>,
    /// The session's URL (WHIP's `Location`, else `/sessions/{id}`).
    pub resource: Option<String>,
    pub sent: u64,
    pub dropped: u64,
    pub received: Vec<Received>,
    /// Everything received, decoded to 48 kHz mono, in arrival order.
    pub pcm: Vec<i16>,
    /// The server closed the call (DTLS close) before we hung up.
    pub server_closed: bool,
    pub error: Option<String>,
}

pub use tapedeck_core::testkit::audio::encode_tone;
pub use tapedeck_core::testkit::{offering, Offering};

/// Places one call following `plan`. Never panics on what the server does: failures end up
/// in [`CallReport::error`].
pub fn call(plan: &CallPlan) -> CallReport {
    let mut report = CallReport::default();
    if let Err(e) = run_call(plan, &mut report) {
        report.error = Some(e);
    }
    report
}

struct Media {
    mid: Mid,
    pt: Pt,
    encoder: opus::Encoder,
    decoder: opus::Decoder,
    phase: f32,
    rtp: u64,
    frame: Vec<i16>,
    packet: Vec<u8>,
    decoded: Vec<i16>,
}

fn run_call(plan: &CallPlan, report: &mut CallReport) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let Offering { mut rtc, mid, offer, pending } = offering(local, start, None)?;
    report.offered_at = Some(Instant::now());
    let answer = post_offer(plan, &offer.to_sdp_string(), report)?;
    report.answered_at = Some(Instant::now());
    accept(&mut rtc, pending, answer)?;
    let mut media = Media::new(&mut rtc, mid)?;
    let mut rng = Rng::new(plan.seed);
    let mut buf = vec![0u8; 2048];
    let mut next_send = start;
    loop {
        let now = Instant::now();
        let deadline = drain(&mut rtc, &socket, plan, &mut rng, &mut media, report)?;
        if !rtc.is_alive() {
            report.server_closed = true;
            return Ok(());
        }
        let Some(connected) = report.connected_at else {
            if now - start > plan.connect_timeout {
                return Err("did not connect in time".into());
            }
            wait(&socket, &mut rtc, &mut buf, local, deadline)?;
            continue;
        };
        if next_send < connected {
            next_send = connected;
        }
        while next_send <= now {
            let at = next_send - connected;
            if at >= plan.length() {
                return hang_up(plan, report, &mut rtc, &socket);
            }
            media.send(&mut rtc, plan, plan.sends_at(at), next_send)?;
            if plan.sends_at(at) {
                report.sent += 1;
            }
            next_send += plan.ptime;
        }
        wait(&socket, &mut rtc, &mut buf, local, deadline.min(next_send))?;
    }
}

fn post_offer(plan: &CallPlan, sdp: &str, report: &mut CallReport) -> Result<SdpAnswer, String> {
    if plan.whip {
        return post_whip(plan, sdp, report);
    }
    let body = serde_json::json!({ "type": "offer", "sdp": sdp }).to_string();
    let r = plan.post_offer_to("/offer", "application/json", body.as_bytes())?;
    report.answer_status = r.status;
    let json = r.json();
    if r.status != 200 {
        return Err(format!("POST /offer: {} {}", r.status, String::from_utf8_lossy(&r.body)));
    }
    report.session = json["session"].as_str().map(str::to_string);
    report.recording = json["recording"].as_str().map(str::to_string);
    report.resource = match json["location"].as_str() {
        Some(location) => Some(location.to_string()),
        None => report.session.as_ref().map(|id| format!("/sessions/{id}")),
    };
    let sdp = json["sdp"].as_str().ok_or("the answer has no sdp")?;
    SdpAnswer::from_sdp_string(sdp).map_err(|e| format!("the answer does not parse: {e}"))
}

/// RFC 9725 section 4.2: POST the offer as `application/sdp`; expect `201 Created`, a
/// `Location` for the session and the answer as `application/sdp`.
fn post_whip(plan: &CallPlan, sdp: &str, report: &mut CallReport) -> Result<SdpAnswer, String> {
    let r = plan.post_offer_to("/whip", "application/sdp", sdp.as_bytes())?;
    report.answer_status = r.status;
    if r.status != 201 {
        return Err(format!("POST /whip: {} {}", r.status, String::from_utf8_lossy(&r.body)));
    }
    let content_type = r.header("Content-Type").unwrap_or("");
    if !content_type.starts_with("application/sdp") {
        return Err(format!("POST /whip: the answer is {content_type:?}, not application/sdp"));
    }
    let location = r.header("Location").ok_or("POST /whip: 201 without a Location")?.to_string();
    report.session = location.rsplit('/').next().map(str::to_string);
    report.resource = Some(location);
    let sdp = String::from_utf8(r.body).map_err(|_| "the answer is not UTF-8")?;
    SdpAnswer::from_sdp_string(&sdp).map_err(|e| format!("the answer does not parse: {e}"))
}

impl CallPlan {
    fn headers<'a>(&'a self, content_type: Option<&'a str>) -> Vec<(&'a str, String)> {
        let mut h: Vec<(&str, String)> = content_type.map(|ct| ("Content-Type", ct.to_string())).into_iter().collect();
        if let Some(token) = &self.token {
            h.push(("Authorization", format!("Bearer {token}")));
        }
        h
    }
}

fn accept(rtc: &mut Rtc, pending: SdpPendingOffer, answer: SdpAnswer) -> Result<(), String> {
    rtc.sdp_api().accept_answer(pending, answer).map_err(|e| format!("accept_answer: {e}"))
}

fn hang_up(plan: &CallPlan, report: &mut CallReport, rtc: &mut Rtc, socket: &UdpSocket) -> Result<(), String> {
    report.hangup_at = Some(Instant::now());
    match plan.ending {
        Ending::Vanish => return Ok(()),
        Ending::DtlsClose => {
            rtc.close().map_err(|e| format!("close: {e}"))?;
            while let Ok(out) = rtc.poll_output() {
                match out {
                    Output::Transmit(t) => {
                        let _ = socket.send_to(&t.contents, t.destination);
                    }
                    Output::Timeout(_) => break,
                    Output::Event(_) => {}
                }
            }
            return Ok(());
        }
        Ending::Delete => {}
    }
    let resource = report.resource.clone().ok_or("no session to hang up")?;
    let r = http::request_with(
        plan.server,
        "DELETE",
        url_path(&resource),
        &plan.headers(None),
        b"",
        Duration::from_secs(5),
    )
    .map_err(|e| format!("DELETE: {e}"))?;
    report.hangup_status = Some(r.status);
    Ok(())
}

/// Drains the `Rtc`; returns its next deadline.
fn drain(
    rtc: &mut Rtc,
    socket: &UdpSocket,
    plan: &CallPlan,
    rng: &mut Rng,
    media: &mut Media,
    report: &mut CallReport,
) -> Result<Instant, String> {
    loop {
        match rtc.poll_output().map_err(|e| format!("str0m: {e}"))? {
            Output::Timeout(t) => return Ok(t),
            Output::Transmit(t) => {
                if report.connected_at.is_some() && plan.send_loss > 0.0 && rng.f64() < plan.send_loss {
                    report.dropped += 1;
                    continue;
                }
                let _ = socket.send_to(&t.contents, t.destination);
            }
            Output::Event(Event::Connected) => report.connected_at = Some(Instant::now()),
            Output::Event(Event::MediaData(d)) => {
                let offset = report.pcm.len();
                let rtp_time = d.time.rebase(Frequency::FORTY_EIGHT_KHZ).numer();
                let n = media.decoder.decode(&d.data, &mut media.decoded, false).unwrap_or(0);
                report.pcm.extend_from_slice(&media.decoded[..n]);
                report.received.push(Received { arrival: Instant::now(), rtp_time, pcm_offset: offset });
            }
            Output::Event(_) => {}
        }
    }
}

fn wait(socket: &UdpSocket, rtc: &mut Rtc, buf: &mut [u8], local: SocketAddr, until: Instant) -> Result<(), String> {
    let timeout = until.saturating_duration_since(Instant::now()).max(Duration::from_micros(200));
    socket.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let input_time;
    match socket.recv_from(buf) {
        Ok((n, source)) => {
            input_time = Instant::now();
            if let Ok(r) = Receive::new(Protocol::Udp, source, local, &buf[..n]) {
                return rtc.handle_input(Input::Receive(input_time, r)).map_err(|e| format!("str0m: {e}"));
            }
            Ok(())
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            rtc.handle_input(Input::Timeout(Instant::now())).map_err(|e| format!("str0m: {e}"))
        }
        Err(e) => Err(format!("recv: {e}")),
    }
}

impl Media {
    fn new(rtc: &mut Rtc, mid: Mid) -> Result<Self, String> {
        let pt = opus_pt(rtc, mid).map_err(|_| "the answer has no Opus audio")?;
        let mut encoder = opus::Encoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono, opus::Application::Voip)
            .map_err(|e| e.to_string())?;
        let _ = encoder.set_inband_fec(true);
        let _ = encoder.set_packet_loss_perc(10);
        let decoder = opus::Decoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono).map_err(|e| e.to_string())?;
        Ok(Media {
            mid,
            pt,
            encoder,
            decoder,
            phase: 0.0,
            rtp: 0,
            frame: Vec::new(),
            packet: vec![0; 1500],
            decoded: vec![0; 5760],
        })
    }

    fn send(&mut self, rtc: &mut Rtc, plan: &CallPlan, tone: bool, now: Instant) -> Result<(), String> {
        let len = (plan.ptime.as_micros() as usize) * 48 / 1000;
        let rtp = self.rtp;
        self.rtp += len as u64;
        if !tone {
            return Ok(());
        }
        self.frame.clear();
        let step = TAU * plan.tone_hz / SAMPLE_RATE_HZ as f32;
        for _ in 0..len {
            self.frame.push((self.phase.sin() * 0.3 * 32767.0) as i16);
            self.phase = (self.phase + step) % TAU;
        }
        let n = self.encoder.encode(&self.frame, &mut self.packet).map_err(|e| e.to_string())?;
        let writer = rtc.writer(self.mid).ok_or("the audio media is gone")?;
        writer
            .write(self.pt, now, MediaTime::new(rtp, Frequency::FORTY_EIGHT_KHZ), &self.packet[..n])
            .map_err(|e| format!("write: {e}"))
    }
}

/// The path of a URL the server handed out (an absolute `Location` under `--public-url`, or
/// a path): requests go to the plan's server (or proxy) whatever host the URL names.
pub fn url_path(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    }
}
