//! Recorder workers: a small pool of threads; each session is pinned to one of them.
//!
//! A worker owns, per session, a [`Recording`] (jitter buffer, decoder, WAV writer). It
//! advances every recording about five times a second on the loop's clock (each batch of
//! messages carries the loop's time), so audio is written even while a caller is silent,
//! and refreshes each WAV header as often, so a
//! killed process leaves a playable file. When the session ends, what is still buffered is
//! written and the file is made exactly as long as the call.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::engine::{EndReason, SessionCounters, SessionId};
use crate::io::telemetry::{RecordingView, Telemetry};
use crate::media::capture::{CaptureWriter, Op, Recorder};
use crate::media::recording::{Packet, Recording, RecordingConfig, RecordingStats};

/// Niceness of recorder threads. Decoding is throughput work with a second of slack (the
/// jitter buffer); the event loop's sends are latency work. When the cores are busy, the
/// scheduler should run the loop first, so the recorders yield (nice 10 weighs about a
/// tenth of nice 0). Raising one's own niceness needs no privilege.
const RECORDER_NICE: libc::c_int = 10;
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
    /// The session ended `duration` after it connected; the worker logs its summary.
    End { session: SessionId, duration: Duration, summary: Summary },
}

/// Messages for one worker, and the loop's time when it handed them over. A worker's clock
/// is this time, not its own: when a worker falls behind (the cores are busy), its
/// recordings wait for the packets still queued for them instead of writing past them.
pub struct Batch {
    pub now: Instant,
    pub msgs: Vec<RecorderMsg>,
}

/// What the loop knows about an ended session, for its one-line summary.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub reason: EndReason,
    pub counters: SessionCounters,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counters;
        write!(
            f,
            "ended ({}); datagrams in {} ({} bytes), out {} ({} bytes); audio packets in {}, out {}",
            self.reason, c.datagrams_in, c.bytes_in, c.datagrams_out, c.bytes_out, c.media_in, c.media_out
        )
    }
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
    senders: Vec<Sender<Batch>>,
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
    pub fn spawn(
        threads: usize,
        config: RecordingConfig,
        capture: Option<PathBuf>,
        telemetry: Arc<Telemetry>,
    ) -> std::io::Result<Self> {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = unbounded();
            let capture = capture.clone();
            let telemetry = telemetry.clone();
            #[allow(clippy::disallowed_methods)] // workers own their threads
            let handle = std::thread::Builder::new().name(format!("recorder-{i}")).spawn(move || {
                yield_to_the_loop();
                Worker::new(config, capture, telemetry).run(rx)
            })?;
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
        let i = msg.session().shard(self.senders.len());
        self.urgent[i] |= !matches!(msg, RecorderMsg::Packet { .. });
        self.pending[i].push(msg);
    }

    /// Hands queued messages to their workers: a batch goes when it holds a start or an
    /// end, is large, or has waited `BATCH_DELAY`; an empty one goes every `TICK`, to move
    /// the worker's clock. Called once a loop turn.
    pub fn flush(&mut self, now: Instant) {
        for i in 0..self.pending.len() {
            let waited = now.duration_since(self.flushed[i]);
            let batch = &mut self.pending[i];
            let due = self.urgent[i] || batch.len() >= BATCH_MAX || (!batch.is_empty() && waited >= BATCH_DELAY);
            if !due && waited < TICK {
                continue;
            }
            let msgs = std::mem::take(batch);
            self.urgent[i] = false;
            self.flushed[i] = now;
            if let Err(e) = self.senders[i].send(Batch { now, msgs }) {
                log::error!("recorder worker {i} is gone; lost {} messages", e.into_inner().msgs.len());
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

/// Lowers this thread's priority to [`RECORDER_NICE`] (Linux: niceness is per thread).
fn yield_to_the_loop() {
    // SAFETY: gettid and setpriority take and return plain integers; they only change this
    // thread's scheduling weight.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, RECORDER_NICE) };
    if rc != 0 {
        log::debug!("cannot lower the recorder thread's priority: {}", std::io::Error::last_os_error());
    }
}

struct Open {
    at: Instant,
    path: PathBuf,
    /// None once writing failed: the call goes on, the file keeps what it had.
    recorder: Option<Recorder<BufWriter<File>, BufWriter<File>>>,
    flushed: Instant,
    /// The last counters published to the telemetry.
    view: RecordingView,
    failed_at: Option<Duration>,
}

impl Open {
    /// Applies `op`; on a write error, keeps what is on disk, stops recording this call,
    /// and counts and logs the failure (once).
    fn apply(&mut self, op: Op, session: SessionId, telemetry: &Telemetry) {
        let Some(recorder) = &mut self.recorder else { return };
        let Err(e) = recorder.apply(op) else { return };
        let mut recorder = self.recorder.take();
        // Rewrite the header for what is already in the file (hound does it again on drop).
        let _ = recorder.as_mut().map(|r| r.apply(Op::Flush));
        let kept = recorder.as_ref().map_or(0, |r| r.stats().samples_written);
        drop(recorder);
        self.failed_at = Some(Duration::from_secs_f64(kept as f64 / 48_000.0));
        self.view.error = Some(e.to_string());
        telemetry.recording_errors.fetch_add(1, Relaxed);
        telemetry.update_recording(session, self.view.clone());
        crate::logging::with_session(session, || {
            log::error!(
                "recording {} failed: {e}; the call goes on unrecorded, the file keeps its first {:.3} s",
                self.path.display(),
                kept as f64 / 48_000.0
            )
        });
    }

    /// Publishes the recording's progress (and the bytes written since last time).
    fn publish(&mut self, session: SessionId, stats: RecordingStats, telemetry: &Telemetry) {
        let bytes = stats.samples_written.saturating_sub(self.view.samples) * 2;
        let concealed = (stats.concealed_fec + stats.concealed_plc).saturating_sub(self.view.concealed_packets);
        telemetry.recording_bytes.fetch_add(bytes, Relaxed);
        telemetry.concealed_packets.fetch_add(concealed, Relaxed);
        self.view.samples = stats.samples_written;
        self.view.packets = stats.packets;
        self.view.lost = stats.lost;
        self.view.concealed_samples = stats.concealed_samples;
        self.view.concealed_packets = stats.concealed_fec + stats.concealed_plc;
        telemetry.update_recording(session, self.view.clone());
    }
}

struct Worker {
    config: RecordingConfig,
    capture: Option<PathBuf>,
    open: HashMap<SessionId, Open>,
    telemetry: Arc<Telemetry>,
}

impl Worker {
    fn new(config: RecordingConfig, capture: Option<PathBuf>, telemetry: Arc<Telemetry>) -> Self {
        Worker { config, capture, open: HashMap::new(), telemetry }
    }

    /// Serves batches until the pool closes; time is the loop's, as each batch carries it.
    fn run(mut self, rx: Receiver<Batch>) {
        let mut clock: Option<Instant> = None;
        let mut last_tick: Option<Instant> = None;
        let done = self.telemetry.add_recorder();
        while let Ok(batch) = rx.recv() {
            batch.msgs.into_iter().for_each(|msg| self.handle(msg));
            let now = clock.map_or(batch.now, |c| c.max(batch.now));
            clock = Some(now);
            if last_tick.is_none_or(|t| now.duration_since(t) >= TICK) {
                last_tick = Some(now);
                self.tick(now);
            }
            self.telemetry.recorder_done(&done, now);
        }
        let ids: Vec<SessionId> = self.open.keys().copied().collect();
        for id in ids {
            let duration = match (self.open.get(&id), clock) {
                (Some(o), Some(now)) => now.saturating_duration_since(o.at),
                _ => Duration::ZERO,
            };
            let summary = Summary { reason: EndReason::Shutdown, counters: SessionCounters::default() };
            self.end(id, duration, summary);
        }
    }

    fn handle(&mut self, msg: RecorderMsg) {
        match msg {
            RecorderMsg::Start { session, at, path } => self.start(session, at, path),
            RecorderMsg::Packet { session, packet } => {
                if let Some(open) = self.open.get_mut(&session) {
                    open.apply(Op::Packet(packet), session, &self.telemetry);
                }
            }
            RecorderMsg::End { session, duration, summary } => self.end(session, duration, summary),
        }
    }

    fn start(&mut self, session: SessionId, at: Instant, path: PathBuf) {
        let recorder = crate::logging::with_session(session, || {
            let file =
                File::create(&path).map_err(|e| format!("cannot create the recording {}: {e}", path.display()))?;
            let recording = Recording::new(BufWriter::with_capacity(WRITE_BUFFER, file), self.config)
                .map_err(|e| format!("cannot start the recording {}: {e}", path.display()))?;
            log::info!("recording to {}", path.display());
            Ok::<_, String>(Recorder::new(recording, self.open_capture(&path)))
        });
        let mut view = RecordingView { path: path.clone(), ..Default::default() };
        let recorder = match recorder {
            Ok(r) => Some(r),
            Err(e) => {
                crate::logging::with_session(session, || log::error!("{e}; the call goes on unrecorded"));
                self.telemetry.recording_errors.fetch_add(1, Relaxed);
                view.error = Some(e);
                None
            }
        };
        self.telemetry.update_recording(session, view.clone());
        let failed_at = recorder.is_none().then_some(Duration::ZERO);
        self.open.insert(session, Open { at, path, recorder, flushed: at, view, failed_at });
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
            open.apply(Op::Advance(now.saturating_duration_since(open.at)), *id, &self.telemetry);
            if now.duration_since(open.flushed) >= HEADER_REFRESH {
                open.flushed = now;
                open.apply(Op::Flush, *id, &self.telemetry);
            }
            if let Some(stats) = open.recorder.as_ref().map(|r| r.stats()) {
                open.publish(*id, stats, &self.telemetry);
            }
        }
    }

    /// Finalizes the recording and logs the session's one-line summary.
    fn end(&mut self, session: SessionId, duration: Duration, summary: Summary) {
        let Some(mut open) = self.open.remove(&session) else { return };
        let finished = open.recorder.take().map(|r| r.finish(duration));
        let recording = match (finished, &open.view.error) {
            (Some(Ok((stats, _))), _) => {
                open.publish(session, stats, &self.telemetry);
                let loss = if stats.packets + stats.lost == 0 {
                    0.0
                } else {
                    100.0 * stats.lost as f64 / (stats.packets + stats.lost) as f64
                };
                format!(
                    "{} packets recorded, {} lost ({loss:.1} %), {} late, {} concealed ({} ms); recording {} finalized: {:.3} s",
                    stats.packets,
                    stats.lost,
                    stats.late,
                    stats.concealed_fec + stats.concealed_plc,
                    stats.concealed_samples / 48,
                    open.path.display(),
                    stats.samples_written as f64 / 48_000.0,
                )
            }
            (Some(Err(e)), _) => {
                self.telemetry.recording_errors.fetch_add(1, Relaxed);
                format!("recording {} FAILED at the end: {e}", open.path.display())
            }
            (None, error) => format!(
                "recording {} FAILED ({}); {:.3} s kept",
                open.path.display(),
                error.as_deref().unwrap_or("unknown error"),
                open.failed_at.unwrap_or_default().as_secs_f64()
            ),
        };
        self.telemetry.remove_recording(session);
        crate::logging::with_session(session, || {
            log::info!("summary: {summary} after {:.3} s; {recording}", duration.as_secs_f64())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker that falls behind (here: its session started "10 s ago" by the loop's clock
    /// while the packets trickle in now) must keep the audio: time in a worker is the
    /// loop's time carried by each batch, so nothing queued becomes "late".
    #[test]
    #[allow(clippy::disallowed_methods)] // the test stands in for the loop and its clock
    fn a_worker_behind_the_loop_keeps_every_queued_packet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.wav");
        let telemetry = Arc::new(Telemetry::new());
        let mut pool = RecorderPool::spawn(1, RecordingConfig::default(), None, telemetry.clone()).unwrap();
        let session = SessionId::from_u128(7);
        let t0 = Instant::now() - Duration::from_secs(10);
        pool.send(RecorderMsg::Start { session, at: t0, path: path.clone() });
        pool.flush(t0);
        let tone = crate::client::encode_tone(440, Duration::from_millis(20));
        for i in 0..100u64 {
            let arrival = Duration::from_millis(20 * i + 5);
            let payload = tone[i as usize % tone.len()].clone();
            pool.send(RecorderMsg::Packet { session, packet: Packet { seq: i, rtp_time: i * 960, payload, arrival } });
            pool.flush(t0 + arrival);
        }
        let summary = Summary { reason: EndReason::Hangup, counters: SessionCounters::default() };
        pool.send(RecorderMsg::End { session, duration: Duration::from_secs(2), summary });
        pool.flush(t0 + Duration::from_secs(2));
        pool.finish();

        let samples: Vec<i16> = hound::WavReader::open(&path).unwrap().samples::<i16>().map(Result::unwrap).collect();
        // The call's length, and the last frame whole: it ran 5 ms past the hang-up.
        assert_eq!(samples.len(), 96_240, "the call's length and the last frame");
        // Every 20 ms block after the first packet carries the tone: nothing was dropped as late.
        for (k, block) in samples[1_200..95_000].chunks(960).enumerate() {
            let rms = (block.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / block.len() as f64).sqrt();
            assert!(rms > 1_000.0, "block {k} is silent (RMS {rms:.0})");
        }
        assert_eq!(telemetry.recording_errors.load(Relaxed), 0);
    }
}
