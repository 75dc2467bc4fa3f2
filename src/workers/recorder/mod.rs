//! Recorder workers: a small pool of threads; each session is pinned to one of them.
//!
//! A worker is a thread around a [`Pipeline`] (see [`pipeline`]: the per-session recording
//! logic, sans-IO, which the simulated-network tests drive too) writing files through
//! [`FileStorage`]. The loop gathers each worker's messages during a turn and hands them over
//! as one [`Batch`] carrying the loop's time; the worker's clock is that time, not its own.
//! An empty batch goes every [`TICK`], so recordings advance while callers are silent.

pub mod pipeline;
pub mod segments;
pub mod storage;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::telemetry::Telemetry;
use crate::workers::uploads::UploadQueue;
use crate::workers::webhooks::WebhookQueue;
pub use pipeline::{Ended, Opened, Pipeline, RecorderMsg, Summary, HEADER_REFRESH, TICK};
pub use segments::Output;
pub use storage::{FileStorage, MemStorage, Storage, WRITE_BUFFER};
use tapedeck_core::media::recording::RecordingConfig;

/// Niceness of recorder threads. Decoding is throughput work with a second of slack (the
/// jitter buffer); the event loop's sends are latency work. When the cores are busy, the
/// scheduler should run the loop first, so the recorders yield (nice 10 weighs about a
/// tenth of nice 0). Raising one's own niceness needs no privilege.
const RECORDER_NICE: libc::c_int = 10;

/// Messages for one worker, and the loop's time when it handed them over. A worker's clock
/// is this time, not its own: when a worker falls behind (the cores are busy), its
/// recordings wait for the packets still queued for them instead of writing past them.
pub struct Batch {
    pub now: Instant,
    pub msgs: Vec<RecorderMsg>,
}

/// The pool: the worker threads, and a [`Recorders`] front of its own (for tests and tools
/// that stand in for one loop). Each event loop has a front of its own ([`RecorderPool::front`]);
/// a session's messages all come from its loop, so they stay in order.
pub struct RecorderPool {
    front: Recorders,
    handles: Vec<JoinHandle<()>>,
}

/// One loop's way to the workers: messages gathered during a turn, per worker, so a worker
/// is woken once a turn, not once a packet. Closing every front (and the pool's, in
/// [`RecorderPool::finish`]) finalizes every open file.
pub struct Recorders {
    senders: Vec<Sender<Batch>>,
    pending: Vec<Vec<RecorderMsg>>,
    /// A worker's batch holds a start or an end: hand it over at the next flush.
    urgent: Vec<bool>,
    flushed: Vec<Instant>,
}

/// Packets wait at most this long in the loop before going to their worker (the jitter
/// buffer is a second deep, so this costs nothing and saves thousands of wake-ups a second):
/// a worker wakes every other loop turn, whatever the number of callers.
const BATCH_DELAY: Duration = Duration::from_millis(20);
/// A batch this large goes at once.
const BATCH_MAX: usize = 256;

impl RecorderPool {
    /// Starts `threads` workers writing the files `output` says; with `capture`, each
    /// recording's operations also go to `<capture>/<recording name>.tdcap` (see
    /// `media::capture`).
    /// With `uploads`, finished recordings go to the uploader (which announces them once
    /// uploaded), else straight to the webhooks.
    pub fn spawn(
        threads: usize,
        config: RecordingConfig,
        output: Output,
        capture: Option<PathBuf>,
        telemetry: Arc<Telemetry>,
        webhooks: WebhookQueue,
        uploads: Option<UploadQueue>,
    ) -> std::io::Result<Self> {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = unbounded();
            let capture = capture.clone();
            let telemetry = telemetry.clone();
            let webhooks = webhooks.clone();
            let uploads = uploads.clone();
            #[allow(clippy::disallowed_methods)] // workers own their threads
            let handle = std::thread::Builder::new().name(format!("recorder-{i}")).spawn(move || {
                yield_to_the_loop();
                run(
                    Pipeline::new(config, capture, FileStorage, telemetry).with_output(output),
                    rx,
                    &webhooks,
                    uploads.as_ref(),
                )
            })?;
            senders.push(tx);
            handles.push(handle);
        }
        Ok(RecorderPool { front: Recorders::new(senders), handles })
    }

    /// A front for one event loop.
    pub fn front(&self) -> Recorders {
        Recorders::new(self.front.senders.clone())
    }

    /// See [`Recorders::send`].
    pub fn send(&mut self, msg: RecorderMsg) {
        self.front.send(msg);
    }

    /// See [`Recorders::flush`].
    pub fn flush(&mut self, now: Instant) {
        self.front.flush(now);
    }

    /// Closes the pool's front and waits for every worker to finalize its files and stop,
    /// which they do once every loop's front is closed too.
    pub fn finish(self) {
        self.front.close();
        for h in self.handles {
            if h.join().is_err() {
                log::error!("a recorder worker panicked");
            }
        }
    }
}

impl Recorders {
    fn new(senders: Vec<Sender<Batch>>) -> Self {
        let pending = senders.iter().map(|_| Vec::new()).collect();
        let urgent = vec![false; senders.len()];
        #[allow(clippy::disallowed_methods)] // the first flush's reference
        let flushed = vec![Instant::now(); senders.len()];
        Recorders { senders, pending, urgent, flushed }
    }

    /// Queues a message for the session's worker; [`Recorders::flush`] hands it over.
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

    /// Hands over everything queued and lets go of the workers.
    pub fn close(mut self) {
        self.urgent.iter_mut().for_each(|u| *u = true);
        #[allow(clippy::disallowed_methods)] // the last batch's time
        self.flush(Instant::now());
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

/// A worker thread: serves batches until the pool closes, then finalizes what is open.
/// Each finalized recording is announced to the webhooks (`recording.finished`), or with
/// `uploads` handed to the uploader, which announces it once uploaded.
fn run(
    mut pipeline: Pipeline<FileStorage>,
    rx: Receiver<Batch>,
    webhooks: &WebhookQueue,
    uploads: Option<&UploadQueue>,
) {
    while let Ok(batch) = rx.recv() {
        let ended = pipeline.handle_batch(batch.now, batch.msgs);
        note_opened(uploads, pipeline.take_opened());
        announce(webhooks, uploads, ended);
    }
    let ended = pipeline.shutdown();
    note_opened(uploads, pipeline.take_opened());
    announce(webhooks, uploads, ended);
}

/// With `uploads`, journals each file opened as being recorded (see
/// [`UploadQueue::recording`]): one the daemon never finalizes is uploaded at the next start.
fn note_opened(uploads: Option<&UploadQueue>, opened: Vec<Opened>) {
    let Some(uploads) = uploads else { return };
    for o in opened {
        let name = o.path.file_name().map(|n| n.to_string_lossy().into_owned());
        let data = serde_json::json!({
            "session": o.session.to_string(),
            "file": name,
            "format": o.format,
            "segment": o.segment,
        });
        uploads.recording(&o.path, data);
    }
}

/// `recording.finished` for each recording finalized (after its upload, with `uploads`:
/// here only its journal entry is written).
fn announce(webhooks: &WebhookQueue, uploads: Option<&UploadQueue>, ended: Vec<Ended>) {
    for e in ended {
        match uploads {
            Some(u) => u.submit(&e.path, finished(&e)),
            None => webhooks.send("recording.finished", || finished(&e), Some(e.path.clone())),
        }
    }
}

/// A finished recording's `recording.finished` data (the webhook thread adds the file's
/// size and SHA-256).
fn finished(e: &Ended) -> serde_json::Value {
    let name = e.path.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut data = serde_json::json!({
        "session": e.session.to_string(),
        "file": name,
        "format": e.format,
        "segment": e.segment,
        "offset_s": e.offset as f64 / 48_000.0,
        "duration_s": e.duration.as_secs_f64(),
        "end_reason": e.reason.map_or("segment".to_string(), |r| r.to_string()),
    });
    match e.stats {
        Some(s) => {
            data["samples"] = e.samples.into();
            data["packets"] = s.packets.into();
            data["lost"] = s.lost.into();
            data["late"] = s.late.into();
            data["concealed_packets"] = (s.concealed_fec + s.concealed_plc).into();
            data["concealed_ms"] = (s.concealed_samples / 48).into();
            data["drift_ms"] = (s.drift_samples / 48).into();
            data["clock_ppm"] = s.clock_ppm.into();
            data["error"] = serde_json::Value::Null;
        }
        None => data["error"] = "writing failed; the file keeps what was written before".into(),
    }
    data
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;
    use tapedeck_core::engine::{EndReason, SessionCounters, SessionId};
    use tapedeck_core::media::recording::Packet;

    /// A worker that falls behind (here: its session started "10 s ago" by the loop's clock
    /// while the packets trickle in now) must keep the audio: time in a worker is the
    /// loop's time carried by each batch, so nothing queued becomes "late".
    #[test]
    #[allow(clippy::disallowed_methods)] // the test stands in for the loop and its clock
    fn a_worker_behind_the_loop_keeps_every_queued_packet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.wav");
        let telemetry = Arc::new(Telemetry::new());
        let mut pool = RecorderPool::spawn(
            1,
            RecordingConfig::default(),
            Output::default(),
            None,
            telemetry.clone(),
            WebhookQueue::default(),
            None,
        )
        .unwrap();
        let session = SessionId::from_u128(7);
        let t0 = Instant::now() - Duration::from_secs(10);
        pool.send(RecorderMsg::Start { session, at: t0, path: path.clone() });
        pool.flush(t0);
        let tone = tapedeck_core::testkit::audio::encode_tone(440, Duration::from_millis(20));
        for i in 0..100u64 {
            let arrival = Duration::from_millis(20 * i + 5);
            let payload = tone[i as usize % tone.len()].clone();
            pool.send(RecorderMsg::Packet { session, packet: Packet { seq: i, rtp_time: i * 960, payload, arrival } });
            pool.flush(t0 + arrival);
        }
        let summary = Summary { reason: EndReason::Hangup, counters: Some(SessionCounters::default()) };
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
