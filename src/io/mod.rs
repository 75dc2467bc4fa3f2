//! The I/O shell: the mio event loops around the engines, and the HTTP signalling threads.
//!
//! A daemon runs `--loops` event loops, each on a thread of its own with its own socket,
//! engine and calls ([`loops`] is how signalling picks one, [`lifecycle`] how they end).
//! Each turn a loop reads the clock once, drains the command channel, tops up the engine's
//! sample frames, lets the engine catch up with time and performs everything it asks (sends
//! the tick's frames, hands media to the recorders), then drains the UDP socket until
//! `WouldBlock` and performs again. It sleeps until the engine's next deadline (a tick of the
//! sample clock, or a connecting session's timer) or a command's wake-up. It never touches a
//! file, a codec or anything else measured in milliseconds.
//!
//! The socket does not wake the loop: datagrams wait in the kernel's buffer (4 MiB, over a
//! second of input at 500 callers) until the next turn, at most [`RECV_EVERY`] later, and are
//! read together. A turn then serves tens of datagrams and a frame for every caller, instead
//! of one turn per arriving datagram; nothing received is late for the recorders (their
//! jitter buffer is a second deep) and a handshake's flight waits at most that long.

pub mod api;
pub mod assets;
pub mod batch;
pub mod http;
pub mod lifecycle;
pub mod loops;
pub mod recordings;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use mio::net::UdpSocket;
use mio::{Events, Poll, Token};

use crate::telemetry::Telemetry;
use crate::workers::encoder::Frames;
use crate::workers::recorder::{RecorderMsg, Recorders, Summary};
use crate::workers::webhooks::WebhookQueue;
use lifecycle::Lifecycle;
use loops::Seats;
use tapedeck_core::engine::{Accepted, Engine, EngineError, Input, Output, SessionId, SessionInfo};

/// The waker's token (signalling commands, signals).
pub const WAKER: Token = Token(1);
/// Largest datagram read; WebRTC keeps packets under the 1200-byte MTU.
const RECV_BUF: usize = 2048;
/// Longest the loop sleeps even without a deadline, to notice a shutdown flag. With no
/// session nothing that arrives can be for anyone; it is read (and dropped) this late.
const MAX_SLEEP: Duration = Duration::from_millis(500);
/// Longest a datagram waits in the socket while a session exists (see the module docs).
/// One packet time at the default 10 ms: the loop turns once a sample frame.
pub const RECV_EVERY: Duration = Duration::from_millis(10);

/// What the signalling threads ask of the loop.
pub enum Command {
    /// Add the session; reply when the engine took it.
    Offer { accepted: Box<Accepted>, recording: PathBuf, reply: Sender<Result<(), EngineError>> },
    /// End the session.
    Hangup { session: SessionId, reply: Sender<Result<(), EngineError>> },
    /// Describe one session, or every session.
    Sessions { session: Option<SessionId>, reply: Sender<Vec<SessionInfo>> },
}

/// One event loop and everything it owns. A daemon runs `--loops` of them, each on a thread
/// of its own with its own socket and calls (see [`loops`]).
pub struct EventLoop {
    /// Which loop this is (for telemetry and seats).
    pub index: usize,
    pub poll: Poll,
    pub socket: UdpSocket,
    /// The address in the ICE candidate; str0m wants it as every datagram's destination.
    pub candidate: SocketAddr,
    pub engine: Engine,
    pub commands: Receiver<Command>,
    pub frames: Frames,
    pub recorders: Recorders,
    pub lifecycle: Arc<Lifecycle>,
    /// This loop gives back a call's seat when the call ends (see [`Seats`]).
    pub seats: Arc<Seats>,
    pub telemetry: Arc<Telemetry>,
    /// `call.started` and `call.ended` go here (a queue: no HTTP on the loop).
    pub webhooks: WebhookQueue,
    /// Datagrams the engine asked for this turn, sent many to a syscall.
    pub outgoing: batch::SendBatch,
}

impl EventLoop {
    /// Runs until its calls were ended (see [`Lifecycle::ends_calls`]) and have ended; then
    /// hands the recorders everything queued and returns (the pool finalizes the files once
    /// every loop has returned). Every exit does that: should the loop fail (an epoll
    /// error), it stops the daemon, ends every call as at shutdown and hands their queued
    /// audio to the recorders before the error is returned.
    pub fn run(mut self) -> std::io::Result<()> {
        let mut paths: HashMap<SessionId, PathBuf> = HashMap::new();
        let result = self.turn_until_done(&mut paths);
        match &result {
            Ok(()) => log::debug!("loop {} stopped", self.index),
            Err(e) => {
                log::error!("event loop {} failed: {e}; ending every call and finalizing its recording", self.index);
                self.lifecycle.stop();
                #[allow(clippy::disallowed_methods)] // the shell reads the clock
                let now = Instant::now();
                let _ = self.engine.handle_input(now, Input::Shutdown);
                self.perform(&mut paths);
            }
        }
        self.recorders.close();
        result
    }

    fn turn_until_done(&mut self, paths: &mut HashMap<SessionId, PathBuf>) -> std::io::Result<()> {
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; RECV_BUF];
        let mut shutdown_sent = false;
        loop {
            #[allow(clippy::disallowed_methods)] // the shell reads the clock, once a turn
            let now = Instant::now();
            self.handle_commands(now, paths);
            if !shutdown_sent && self.lifecycle.ends_calls(now, self.engine.session_count()) {
                match self.engine.session_count() {
                    0 => log::debug!("loop {}: no call to end", self.index),
                    n => log::info!("loop {}: ending {n} calls", self.index),
                }
                shutdown_sent = true;
                let _ = self.engine.handle_input(now, Input::Shutdown);
            }
            self.top_up_frames(now);
            let _ = self.engine.handle_input(now, Input::Timeout);
            // The tick's frames leave first, so when they leave does not depend on how many
            // datagrams waited for this turn; then what arrived is read and answered.
            self.perform(paths);
            self.read_socket(now, &mut buf);
            let deadline = self.perform(paths);
            self.recorders.flush(now);
            #[allow(clippy::disallowed_methods)] // the shell reads the clock
            let took = Instant::now().saturating_duration_since(now);
            self.telemetry.turned(self.index, now, took, &self.engine.stats(), self.engine.session_count());
            if self.engine.is_done() {
                return Ok(());
            }
            let longest = if self.engine.session_count() > 0 { RECV_EVERY } else { MAX_SLEEP };
            let deadline = match self.lifecycle.drain_deadline() {
                Some(drained) if !shutdown_sent => deadline.min(drained),
                _ => deadline,
            };
            #[allow(clippy::disallowed_methods)] // the shell reads the clock
            let wait = deadline.min(now + longest).saturating_duration_since(Instant::now());
            match self.poll.poll(&mut events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn read_socket(&mut self, now: Instant, buf: &mut [u8]) {
        loop {
            match self.socket.recv_from(buf) {
                Ok((n, source)) => {
                    let input = Input::Datagram { source, destination: self.candidate, contents: &buf[..n] };
                    let _ = self.engine.handle_input(now, input);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // ICMP errors surface here on some systems; they concern one peer only.
                    log::debug!("UDP receive error: {e}");
                    return;
                }
            }
        }
    }

    fn handle_commands(&mut self, now: Instant, paths: &mut HashMap<SessionId, PathBuf>) {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Offer { accepted, recording, reply }) => {
                    let id = accepted.id;
                    let result = self.engine.handle_input(now, Input::AddSession(accepted));
                    let added = result.is_ok();
                    if added {
                        paths.insert(id, recording);
                    } else {
                        self.seats.release(self.index);
                    }
                    if reply.send(result).is_err() && added {
                        // The request gave up waiting (504): nobody will ever use the answer.
                        log::info!("[session {id}] dropped: its offer timed out before the loop took it");
                        let _ = self.engine.handle_input(now, Input::Hangup(id));
                    }
                }
                Ok(Command::Hangup { session, reply }) => {
                    let _ = reply.send(self.engine.handle_input(now, Input::Hangup(session)));
                }
                Ok(Command::Sessions { session, reply }) => {
                    let infos = match session {
                        Some(id) => self.engine.session(id).into_iter().collect(),
                        None => self.engine.sessions(),
                    };
                    let _ = reply.send(infos);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    fn top_up_frames(&mut self, now: Instant) {
        for _ in 0..self.engine.wants_frames() {
            let Some(frame) = self.frames.next_frame() else { return };
            let _ = self.engine.handle_input(now, Input::SampleFrame(frame));
        }
    }

    /// Carries out the engine's outputs; returns its next deadline.
    fn perform(&mut self, paths: &mut HashMap<SessionId, PathBuf>) -> Instant {
        loop {
            match self.engine.poll_output() {
                Output::Transmit { destination, contents, .. } => self.outgoing.push(destination, contents),
                Output::Connected { session, at } => match paths.get(&session) {
                    Some(path) => {
                        let data = || {
                            let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
                            serde_json::json!({ "session": session.to_string(), "file": file })
                        };
                        self.webhooks.send("call.started", data, None);
                        self.recorders.send(RecorderMsg::Start { session, at, path: path.clone() })
                    }
                    None => log::error!("[session {session}] connected without a recording path"),
                },
                Output::Media { session, packet } => self.recorders.send(RecorderMsg::Packet { session, packet }),
                Output::Ended { session, duration, reason, counters } => {
                    paths.remove(&session);
                    self.seats.release(self.index);
                    if let Some(d) = duration {
                        let data = || {
                            serde_json::json!({
                                "session": session.to_string(),
                                "duration_s": d.as_secs_f64(),
                                "end_reason": reason.to_string(),
                            })
                        };
                        self.webhooks.send("call.ended", data, None);
                    }
                    let summary = Summary { reason, counters: Some(counters) };
                    match duration {
                        Some(duration) => self.recorders.send(RecorderMsg::End { session, duration, summary }),
                        None => {
                            let _scope = session.log_scope();
                            log::info!("summary: {summary}; never connected, nothing recorded");
                        }
                    }
                }
                Output::Timeout(t) => {
                    self.send_outgoing();
                    return t;
                }
            }
        }
    }

    fn send_outgoing(&mut self) {
        if self.outgoing.is_empty() {
            return;
        }
        let sent = self.outgoing.send(&self.socket);
        self.telemetry.send_failed(self.index, sent.would_block + sent.failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workers::recorder::RecorderPool;
    use tapedeck_core::engine::{EngineConfig, Ptime};
    use tapedeck_core::media::recording::{Packet, RecordingConfig};
    use tapedeck_core::media::SAMPLE_RATE_HZ;

    /// A loop whose first step fails (its poll cannot wait) still hands the recorders what
    /// it had queued, so they finalize every file, and stops the daemon's other loops.
    #[test]
    #[allow(clippy::disallowed_methods)] // a real loop: real time, threads and sockets
    fn a_loop_that_fails_still_finalizes_every_recording() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("call.wav");
        let telemetry = Arc::new(Telemetry::new());
        let pool = RecorderPool::spawn(
            1,
            RecordingConfig::default(),
            Default::default(),
            None,
            telemetry.clone(),
            Default::default(),
            None,
        )
        .expect("recorders");
        let mut recorders = pool.front();
        let session = SessionId::from_u128(7);
        let at = Instant::now();
        recorders.send(RecorderMsg::Start { session, at, path: path.clone() });
        let tone = tapedeck_core::testkit::audio::encode_tone(440, Duration::from_millis(20));
        for (i, payload) in tone.iter().cycle().take(100).enumerate() {
            let packet = Packet {
                seq: i as u64,
                rtp_time: i as u64 * 960,
                payload: payload.clone(),
                arrival: Duration::from_millis(20 * i as u64),
            };
            recorders.send(RecorderMsg::Packet { session, packet });
        }
        let poll = Poll::new().expect("poll");
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).expect("socket");
        // The poll's descriptor becomes a plain file: its first wait fails (EINVAL).
        let plain = std::fs::File::open("/dev/null").expect("a plain file");
        // SAFETY: dup2 onto a descriptor this test owns (the poll's); the poll closes it.
        let rc = unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&plain), std::os::fd::AsRawFd::as_raw_fd(&poll)) };
        assert!(rc >= 0, "dup2: {}", std::io::Error::last_os_error());
        let config = EngineConfig {
            ptime: Ptime::Ms10,
            disconnect_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(15),
            max_call_duration: None,
            max_sessions: 10,
            max_connecting_per_client: 10,
            stun_timeout: Duration::from_secs(5),
        };
        let (_commands_tx, commands) = crossbeam_channel::unbounded();
        let silence = tapedeck_core::media::sample::LoopEncoder::new(vec![0i16; 4800].into(), Ptime::Ms10).unwrap();
        let (mut frames, _encoder) = crate::workers::encoder::spawn(silence, 1).expect("encoder");
        let lifecycle = Arc::new(Lifecycle::new(Duration::from_secs(5), Vec::new()));
        let event_loop = EventLoop {
            index: 0,
            poll,
            candidate: socket.local_addr().expect("address"),
            socket,
            engine: Engine::new(config, at),
            commands,
            frames: frames.remove(0),
            recorders,
            lifecycle: lifecycle.clone(),
            seats: Arc::new(Seats::new(10, 1)),
            telemetry,
            webhooks: Default::default(),
            outgoing: Default::default(),
        };
        assert!(event_loop.run().is_err(), "the loop should have failed");
        assert_eq!(lifecycle.state(), lifecycle::State::Stopping, "the other loops were not stopped");
        pool.finish();
        let reader = hound::WavReader::open(&path).expect("a finalized WAV");
        let seconds = reader.duration() as f64 / f64::from(SAMPLE_RATE_HZ);
        assert!(seconds >= 1.9, "the queued 2 s of audio is not all in the file: {seconds} s");
    }
}
