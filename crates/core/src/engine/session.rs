//! One caller: its `Rtc`, the negotiated audio stream and the timers the engine keeps for it.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::{Event, IceConnectionState, Rtc};

use super::demux::rtp_ssrc;
use super::{
    Accepted, EndReason, EngineConfig, EngineStats, Output, SessionCounters, SessionId, SessionInfo, SessionState,
};
use crate::media::recording::Packet;

/// How many due timeouts one drain handles before leaving the rest to the next turn.
const DUE_NOW_LIMIT: u32 = 4;
/// How long closing may take to drain the DTLS close_notify before the `Rtc` is dropped.
const CLOSE_DRAIN_LIMIT: usize = 64;

#[derive(Debug, Clone, Copy)]
enum State {
    /// Answered; `contacted` once a valid ICE check (STUN with our credentials) arrived.
    Connecting {
        since: Instant,
        contacted: bool,
    },
    Connected {
        at: Instant,
        disconnected_since: Option<Instant>,
    },
}

pub(super) struct Session {
    id: SessionId,
    rtc: Rtc,
    mid: Mid,
    pt: Pt,
    sends: bool,
    state: State,
    rtc_deadline: Instant,
    /// When the last datagram for this session arrived.
    last_rx: Instant,
    remotes: Vec<SocketAddr>,
    created: Instant,
    counters: SessionCounters,
    /// The wake-up filed in the engine's timer heap, if any.
    pub scheduled: Option<Instant>,
    /// RTP SSRCs the offer did not announce that were bound to the audio m-line.
    unannounced_ssrcs: u8,
    /// The last RTP SSRC seen that str0m knows (skips the lookup for the next packets).
    known_ssrc: Option<u32>,
    /// Our ICE username fragment: STUN from a new address names it (`<ufrag>:<theirs>`).
    ufrag: Box<[u8]>,
    /// Where the offer came from, if known (sessions not yet connected are counted per client).
    client: Option<IpAddr>,
}

/// At most this many SSRCs the offer did not announce are bound to a session's audio (a
/// sender that restarts its stream gets a new one; more than a few is not a caller's audio).
const MAX_UNANNOUNCED_SSRCS: u8 = 4;

/// A connected session whose caller sends no datagram at all (no media, RTCP or ICE
/// consent checks, which browsers send at least every 6 s) for this many disconnect
/// timeouts is treated as gone, even before str0m's ICE-lite agent (15 s) says so.
const SILENT_TIMEOUTS: u32 = 2;

impl Session {
    pub fn new(mut accepted: Accepted, now: Instant) -> Self {
        let ufrag = accepted.rtc.direct_api().local_ice_credentials().ufrag.into_bytes().into_boxed_slice();
        Session {
            id: accepted.id,
            rtc: accepted.rtc,
            mid: accepted.mid,
            pt: accepted.pt,
            sends: accepted.sends,
            state: State::Connecting { since: now, contacted: false },
            rtc_deadline: now,
            last_rx: now,
            remotes: Vec::new(),
            created: now,
            counters: SessionCounters::default(),
            scheduled: None,
            unannounced_ssrcs: 0,
            known_ssrc: None,
            ufrag,
            client: accepted.client,
        }
    }

    /// Our ICE username fragment.
    pub fn ufrag(&self) -> &[u8] {
        &self.ufrag
    }

    /// The client address the offer came from, while the session has not connected.
    pub fn connecting_client(&self) -> Option<IpAddr> {
        self.client.filter(|_| !self.is_connected())
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    pub fn counters(&self) -> SessionCounters {
        self.counters
    }

    /// A datagram of `bytes` arrived for this session.
    pub fn count_in(&mut self, bytes: usize) {
        self.counters.datagrams_in += 1;
        self.counters.bytes_in += bytes as u64;
    }

    pub fn info(&self) -> SessionInfo {
        let state = match self.state {
            State::Connecting { .. } => SessionState::Connecting,
            State::Connected { disconnected_since: Some(_), .. } => SessionState::Disconnected,
            State::Connected { .. } => SessionState::Connected,
        };
        SessionInfo {
            id: self.id,
            state,
            created: self.created,
            connected_at: self.connected_at(),
            counters: self.counters,
            client: self.client,
        }
    }

    pub fn accepts(&self, input: &str0m::Input<'_>) -> bool {
        self.rtc.accepts(input)
    }

    pub fn add_remote(&mut self, addr: SocketAddr) {
        if !self.remotes.contains(&addr) {
            self.remotes.push(addr);
        }
    }

    pub fn remotes(&self) -> &[SocketAddr] {
        &self.remotes
    }

    pub fn is_alive(&self) -> bool {
        self.rtc.is_alive()
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected { .. })
    }

    pub fn connected_at(&self) -> Option<Instant> {
        match self.state {
            State::Connected { at, .. } => Some(at),
            State::Connecting { .. } => None,
        }
    }

    /// When this session next needs the engine: its `Rtc`'s timeout or one of our timers.
    pub fn wake_at(&self, config: &EngineConfig) -> Instant {
        let timer = match self.state {
            State::Connecting { since, contacted: true } => since + config.connect_timeout,
            State::Connecting { since, contacted: false } => since + config.stun_timeout.min(config.connect_timeout),
            State::Connected { disconnected_since: Some(t), .. } => t + config.disconnect_timeout,
            State::Connected { disconnected_since: None, .. } => {
                self.last_rx + config.disconnect_timeout * SILENT_TIMEOUTS
            }
        };
        let longest = match (self.state, config.max_call_duration) {
            (State::Connected { at, .. }, Some(max)) => at + max,
            _ => timer,
        };
        timer.min(longest).min(self.rtc_deadline)
    }

    /// Whether a timer of ours ended the session.
    pub fn expired(&self, now: Instant, config: &EngineConfig) -> Option<EndReason> {
        if !self.rtc.is_alive() {
            return Some(EndReason::Closed);
        }
        match self.state {
            State::Connecting { since, contacted: false } if now >= since + config.stun_timeout => {
                Some(EndReason::NoIceCheck)
            }
            State::Connecting { since, .. } if now >= since + config.connect_timeout => Some(EndReason::ConnectTimeout),
            State::Connected { at, .. } if config.max_call_duration.is_some_and(|max| now >= at + max) => {
                Some(EndReason::MaxDuration)
            }
            State::Connected { disconnected_since: Some(t), .. } if now >= t + config.disconnect_timeout => {
                Some(EndReason::IceTimeout)
            }
            State::Connected { .. } if now >= self.last_rx + config.disconnect_timeout * SILENT_TIMEOUTS => {
                Some(EndReason::IceTimeout)
            }
            _ => None,
        }
    }

    /// Binds an RTP packet's SSRC to the session's one audio m-line when str0m could not
    /// place it: the offer did not announce it (`a=ssrc`) and the packet carries no `mid`
    /// header extension, so str0m would drop every packet of the stream and the recording
    /// would be silence. GStreamer's webrtcbin does this by default (its SDP names one SSRC,
    /// the payloader sends another, and it negotiates no `mid` extension); browsers handle it
    /// the same way for a single m-line (libwebrtc's "unsignaled SSRC").
    /// `datagram` is a raw datagram from this session's caller.
    pub fn bind_unannounced_ssrc(&mut self, datagram: &[u8]) {
        let Some(ssrc) = rtp_ssrc(datagram) else { return };
        if self.known_ssrc == Some(ssrc) || !self.is_connected() || ssrc == 0 {
            return;
        }
        let mut api = self.rtc.direct_api();
        if api.stream_rx(&ssrc.into()).is_some() {
            self.known_ssrc = Some(ssrc);
            return;
        }
        if self.unannounced_ssrcs >= MAX_UNANNOUNCED_SSRCS {
            return;
        }
        self.unannounced_ssrcs += 1;
        self.known_ssrc = Some(ssrc);
        log::info!("the caller sends SSRC {ssrc}, which its offer did not announce: recording it as the audio");
        api.expect_stream_rx(ssrc.into(), None, self.mid, None);
    }

    /// Feeds one input to the `Rtc`; false if str0m reported an error.
    pub fn handle(&mut self, now: Instant, input: str0m::Input<'_>) -> bool {
        if matches!(input, str0m::Input::Receive(..)) {
            // Only datagrams str0m accepts reach a session: from an address that passed an
            // ICE check, or a check naming this session's credentials.
            self.last_rx = now;
            if let State::Connecting { contacted, .. } = &mut self.state {
                *contacted = true;
            }
        }
        match self.rtc.handle_input(input) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("str0m refused input: {e}");
                false
            }
        }
    }

    /// Writes one frame of the sample; false if str0m reported an error.
    pub fn write_sample(&mut self, now: Instant, rtp: u64, frame: &Arc<[u8]>) -> bool {
        if !self.sends {
            return true;
        }
        let Some(writer) = self.rtc.writer(self.mid) else {
            // Closing: nothing more to send.
            return true;
        };
        let time = MediaTime::new(rtp, Frequency::FORTY_EIGHT_KHZ);
        match writer.write(self.pt, now, time, frame.clone()) {
            Ok(()) => {
                self.counters.media_out += 1;
                true
            }
            Err(e) => {
                log::warn!("writing the sample failed: {e}");
                false
            }
        }
    }

    /// Drains the `Rtc` until its timeout; false if str0m reported an error.
    ///
    /// A timeout that has already come is handled at once, a few times at most: str0m asks
    /// for one after every write (it packetizes queued media on a timeout) and after much of
    /// what it receives. Handling it here sends the frame in this turn instead of the next,
    /// and saves the session a second visit (a timer entry, a lookup and another drain).
    pub fn drain(&mut self, now: Instant, out: &mut VecDeque<Output>, stats: &mut EngineStats) -> bool {
        let mut nudges = 0;
        loop {
            match self.rtc.poll_output() {
                Ok(str0m::Output::Timeout(t)) if t <= now && nudges < DUE_NOW_LIMIT && self.rtc.is_alive() => {
                    nudges += 1;
                    if let Err(e) = self.rtc.handle_input(str0m::Input::Timeout(now)) {
                        log::warn!("str0m refused a timeout: {e}");
                        return false;
                    }
                }
                Ok(str0m::Output::Timeout(t)) => {
                    self.rtc_deadline = t;
                    return true;
                }
                Ok(str0m::Output::Transmit(t)) => {
                    stats.transmits += 1;
                    stats.bytes_out += t.contents.len() as u64;
                    self.counters.datagrams_out += 1;
                    self.counters.bytes_out += t.contents.len() as u64;
                    out.push_back(Output::Transmit {
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.into(),
                    });
                }
                Ok(str0m::Output::Event(e)) => self.handle_event(now, e, out, stats),
                Err(e) => {
                    log::warn!("str0m failed: {e}");
                    return false;
                }
            }
        }
    }

    /// Starts a local close (DTLS close_notify) and sends what it produces.
    pub fn close(&mut self, now: Instant, out: &mut VecDeque<Output>, stats: &mut EngineStats) {
        if !self.rtc.is_alive() {
            return;
        }
        if let Err(e) = self.rtc.close() {
            log::debug!("close failed: {e}");
        }
        for _ in 0..CLOSE_DRAIN_LIMIT {
            if !self.rtc.is_alive() || !self.drain(now, out, stats) {
                break;
            }
            if self.rtc_deadline > now {
                break;
            }
            let _ = self.rtc.handle_input(str0m::Input::Timeout(now));
        }
        self.rtc.disconnect();
    }

    fn handle_event(&mut self, now: Instant, event: Event, out: &mut VecDeque<Output>, stats: &mut EngineStats) {
        match event {
            Event::Connected => {
                if let State::Connecting { since, .. } = self.state {
                    log::info!("connected after {:?}", now.saturating_duration_since(since));
                    self.state = State::Connected { at: now, disconnected_since: None };
                    out.push_back(Output::Connected { session: self.id, at: now });
                }
            }
            Event::IceConnectionStateChange(ice) => {
                log::debug!("ICE {ice:?}");
                if let State::Connected { disconnected_since, .. } = &mut self.state {
                    *disconnected_since = match ice {
                        IceConnectionState::Disconnected => Some(disconnected_since.unwrap_or(now)),
                        _ => None,
                    };
                }
            }
            Event::MediaData(data) => {
                let State::Connected { at, .. } = self.state else { return };
                if data.mid != self.mid {
                    return;
                }
                let packet = Packet {
                    seq: **data.seq_range.start(),
                    rtp_time: data.time.rebase(Frequency::FORTY_EIGHT_KHZ).numer(),
                    payload: data.data,
                    arrival: data.network_time.saturating_duration_since(at),
                };
                log::trace!("media seq {} rtp {} {} bytes", packet.seq, packet.rtp_time, packet.payload.len());
                self.counters.media_in += 1;
                stats.media_in += 1;
                out.push_back(Output::Media { session: self.id, packet });
            }
            Event::MediaAdded(m) => log::debug!("media {} {:?} {:?}", m.mid, m.kind, m.direction),
            _ => {}
        }
    }
}
