//! Recorder workers: a small pool of threads; each session is pinned to one of them.
//!
//! A worker owns, per session, a [`Recording`] (jitter buffer, decoder, WAV writer). It
//! advances every recording about five times a second from its own clock, so audio is
//! written even while a caller is silent, and refreshes each WAV header as often, so a
//! killed process leaves a playable file. When the session ends, what is still buffered is
//! written and the file is made exactly as long as the call.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::BufWriter;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};

use crate::engine::SessionId;
use crate::media::capture::{CaptureWriter, Op, Recorder};
use crate::media::recording::{Packet, Recording, RecordingConfig};

/// How often a worker advances its recordings without new packets.
const TICK: Duration = Duration::from_millis(200);
/// Bytes buffered per file before a write: a sixth of a second of audio, so a recording
/// costs six write calls a second instead of twelve, for 16 KiB of memory per caller.
const WRITE_BUFFER: usize = 16 * 1024;
/// How often each WAV header is rewritten (with the write buffer), so that a killed
/// process leaves a file whose header covers all but the last fraction of a second.
const HEADER_REFRESH: Duration = TICK;

/// What the event loop tells the recorders.
#[derive(Debug)]
pub enum RecorderMsg {
    /// The session connected at `at`; record it to `path`.
    Start { session: SessionId, at: Instant, path: PathBuf },
    /// One received packet.
    Packet { session: SessionId, packet: Packet },
    /// The session ended `duration` after it connected.
    End { session: SessionId, duration: Duration },
}

impl RecorderMsg {
    fn session(&self) -> SessionId {
        match self {
            RecorderMsg::Start { session, .. }
            | RecorderMsg::Packet { session, .. }
            | RecorderMsg::End { session, .. } => *session,
        }
    }
}

/// The pool. Dropping the senders (via [`RecorderPool::finish`]) finalizes every open file.
pub struct RecorderPool {
    senders: Vec<Sender<Vec<RecorderMsg>>>,
    /// Messages gathered during one loop turn, per worker: a worker is woken once a turn,
    /// not once a packet.
    pending: Vec<Vec<RecorderMsg>>,
    /// A worker's batch holds a start or an end: hand it over at the next flush.
    urgent: Vec<bool>,
    flushed: Vec<Instant>,
    handles: Vec<JoinHandle<()>>,
}

/// Packets wait at most this long in the loop before going to their worker (the jitter
/// buffer is a second deep, so this costs nothing and saves thousands of wake-ups a second).
const BATCH_DELAY: Duration = Duration::from_millis(5);
/// A batch this large goes at once.
const BATCH_MAX: usize = 64;

impl RecorderPool {
    /// Starts `threads` workers; with `capture`, each recording's operations also go to
    /// `<capture>/<recording name>.tdcap` (see `media::capture`).
    pub fn spawn(threads: usize, config: RecordingConfig, capture: Option<PathBuf>) -> std::io::Result<Self> {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = unbounded();
            let capture = capture.clone();
            #[allow(clippy::disallowed_methods)] // workers own their threads
            let handle = std::thread::Builder::new()
                .name(format!("recorder-{i}"))
                .spawn(move || Worker::new(config, capture).run(rx))?;
            senders.push(tx);
            handles.push(handle);
        }
        let pending = senders.iter().map(|_| Vec::new()).collect();
        let urgent = vec![false; senders.len()];
        #[allow(clippy::disallowed_methods)] // the pool belongs to the workers
        let flushed = vec![Instant::now(); senders.len()];
        Ok(RecorderPool { senders, pending, urgent, flushed, handles })
    }

    /// Queues a message for the session's worker; [`RecorderPool::flush`] hands it over.
    pub fn send(&mut self, msg: RecorderMsg) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        msg.session().hash(&mut h);
        let i = (h.finish() % self.senders.len() as u64) as usize;
        self.urgent[i] |= !matches!(msg, RecorderMsg::Packet { .. });
        self.pending[i].push(msg);
    }

    /// Hands queued messages to their workers: a batch goes when it holds a start or an
    /// end, is large, or has waited `BATCH_DELAY`. Called once a loop turn.
    pub fn flush(&mut self, now: Instant) {
        for i in 0..self.pending.len() {
            let batch = &mut self.pending[i];
            let due = self.urgent[i] || batch.len() >= BATCH_MAX || now.duration_since(self.flushed[i]) >= BATCH_DELAY;
            if batch.is_empty() || !due {
                continue;
            }
            let batch = std::mem::take(batch);
            self.urgent[i] = false;
            self.flushed[i] = now;
            if let Err(e) = self.senders[i].send(batch) {
                log::error!("recorder worker {i} is gone; lost {} messages", e.into_inner().len());
            }
        }
    }

    /// Closes the pool: every worker finalizes its files and stops. Waits for them.
    pub fn finish(mut self) {
        self.urgent.iter_mut().for_each(|u| *u = true);
        #[allow(clippy::disallowed_methods)] // the pool belongs to the workers
        self.flush(Instant::now());
        drop(self.senders);
        for h in self.handles {
            if h.join().is_err() {
                log::error!("a recorder worker panicked");
            }
        }
    }
}

struct Open {
    at: Instant,
    path: PathBuf,
    recorder: Recorder<BufWriter<File>, BufWriter<File>>,
    flushed: Instant,
}

struct Worker {
    config: RecordingConfig,
    capture: Option<PathBuf>,
    open: HashMap<SessionId, Open>,
}

impl Worker {
    fn new(config: RecordingConfig, capture: Option<PathBuf>) -> Self {
        Worker { config, capture, open: HashMap::new() }
    }

    #[allow(clippy::disallowed_methods)] // workers read the clock
    fn run(mut self, rx: Receiver<Vec<RecorderMsg>>) {
        let mut last_tick = Instant::now();
        loop {
            match rx.recv_timeout(TICK) {
                Ok(batch) => batch.into_iter().for_each(|msg| self.handle(msg)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now.duration_since(last_tick) >= TICK {
                last_tick = now;
                self.tick(now);
            }
        }
        let now = Instant::now();
        let ids: Vec<SessionId> = self.open.keys().copied().collect();
        for id in ids {
            let duration = self.open.get(&id).map_or(Duration::ZERO, |o| now.duration_since(o.at));
            self.end(id, duration);
        }
    }

    fn handle(&mut self, msg: RecorderMsg) {
        match msg {
            RecorderMsg::Start { session, at, path } => self.start(session, at, path),
            RecorderMsg::Packet { session, packet } => {
                let Some(open) = self.open.get_mut(&session) else { return };
                if let Err(e) = open.recorder.apply(Op::Packet(packet)) {
                    crate::logging::with_session(session, || log::error!("recording failed: {e}"));
                }
            }
            RecorderMsg::End { session, duration } => self.end(session, duration),
        }
    }

    fn start(&mut self, session: SessionId, at: Instant, path: PathBuf) {
        crate::logging::with_session(session, || {
            let file = match File::create(&path) {
                Ok(f) => f,
                Err(e) => {
                    log::error!("cannot create the recording {}: {e}", path.display());
                    return;
                }
            };
            match Recording::new(BufWriter::with_capacity(WRITE_BUFFER, file), self.config) {
                Ok(recording) => {
                    log::info!("recording to {}", path.display());
                    let recorder = Recorder::new(recording, self.open_capture(&path));
                    self.open.insert(session, Open { at, path, recorder, flushed: at });
                }
                Err(e) => log::error!("cannot start the recording {}: {e}", path.display()),
            }
        });
    }

    fn open_capture(&self, recording: &std::path::Path) -> Option<CaptureWriter<BufWriter<File>>> {
        let dir = self.capture.as_ref()?;
        let name = recording.file_stem()?.to_string_lossy().into_owned() + ".tdcap";
        let path = dir.join(name);
        match File::create(&path).map_err(Into::into).and_then(|f| CaptureWriter::new(BufWriter::new(f), self.config)) {
            Ok(c) => {
                log::info!("capturing to {}", path.display());
                Some(c)
            }
            Err(e) => {
                log::error!("cannot capture to {}: {e}", path.display());
                None
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        for (id, open) in &mut self.open {
            let result = open.recorder.apply(Op::Advance(now.saturating_duration_since(open.at))).and_then(|()| {
                if now.duration_since(open.flushed) >= HEADER_REFRESH {
                    open.flushed = now;
                    open.recorder.apply(Op::Flush)
                } else {
                    Ok(())
                }
            });
            if let Err(e) = result {
                crate::logging::with_session(*id, || log::error!("recording {} failed: {e}", open.path.display()));
            }
        }
    }

    fn end(&mut self, session: SessionId, duration: Duration) {
        let Some(open) = self.open.remove(&session) else { return };
        crate::logging::with_session(session, || match open.recorder.finish(duration) {
            Ok((stats, _)) => log::info!(
                "recording {} finalized: {:.3} s, {} packets, {} lost, {} late, {} concealed (fec {}, plc {})",
                open.path.display(),
                duration.as_secs_f64(),
                stats.packets,
                stats.lost,
                stats.late,
                stats.concealed_fec + stats.concealed_plc,
                stats.concealed_fec,
                stats.concealed_plc,
            ),
            Err(e) => log::error!("finalizing {} failed: {e}", open.path.display()),
        });
    }
}
