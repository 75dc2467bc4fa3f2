//! Uploads (`--upload s3://BUCKET[/PREFIX]`): each finished recording goes to S3-compatible
//! storage from one worker thread, as `PREFIX/<file name>`.
//!
//! The recorder that finalized a file only writes its journal entry ([`journal`]: the
//! `recording.finished` data, in `<recordings>/.uploads/<file name>.json`) and hands the
//! upload over a channel ([`UploadQueue::submit`]); nothing here runs on an event loop or a
//! recorder. The uploader ([`s3`]) sends the file in one PUT, or in parts of 8 MiB when it is
//! larger, and confirms it by the ETag the server returns (the MD5 it computed). Then it
//! sends `recording.finished` (with `bucket`, `key`, `bytes` and `sha256` added) to the
//! webhooks, forgets the journal entry and deletes the file (unless `--keep-local`).
//!
//! A failed attempt is retried after 1, 2, 4 ... s, at most [`MAX_BACKOFF`] apart, forever:
//! the file stays on disk and in the journal until an upload is confirmed. A failed file
//! goes to the back of the queue, so one that the server refuses does not hold up the rest
//! for good. At start the journal is read: uploads pending when the daemon stopped (or was
//! killed) resume, and so do files that were still being recorded then (journaled when
//! they open, see [`UploadQueue::recording`]). At shutdown the uploader has [`SHUTDOWN_GRACE`] to finish what it is
//! doing; what is left stays in the journal for the next start.
#![allow(clippy::disallowed_methods)] // a worker: its own thread and clock

pub mod journal;
pub mod s3;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};

use crate::config::{Config, S3Url};
use crate::workers::webhooks::WebhookQueue;
use journal::{Entry, Journal};

/// The wait after the first failure; it doubles with each failure in a row, up to
/// [`MAX_BACKOFF`], and starts over after a success.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The journal entry's mark of a file being recorded (see [`UploadQueue::recording`]).
const IN_PROGRESS: &str = "in_progress";

/// The `recording.finished` data of a file whose recording never ended: the daemon was
/// killed or crashed mid-call. What it holds is everything written up to about 200 ms
/// before (the header refresh), and it plays; it is delivered with that said.
fn interrupted(mut data: serde_json::Value) -> serde_json::Value {
    if let Some(map) = data.as_object_mut() {
        map.remove(IN_PROGRESS);
    }
    data["end_reason"] = "interrupted".into();
    data["error"] =
        "the daemon stopped before the recording was finalized (killed or crashed); the file holds what was written until then"
            .into();
    data
}

/// At shutdown, how long the uploader may still work.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Where and how recordings are uploaded, from the [`Config`].
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub target: S3Url,
    /// Path-style endpoint; `None` is AWS S3 of the region.
    pub endpoint: Option<String>,
    pub region: String,
    /// Access key id and secret; `None` sends unsigned requests.
    pub credentials: Option<(String, String)>,
    pub keep_local: bool,
    /// The recordings folder; the journal is its `.uploads`.
    pub recordings: PathBuf,
}

impl UploadSettings {
    /// The settings of `--upload`, if given.
    pub fn from_config(c: &Config) -> Option<UploadSettings> {
        let credentials = match (&c.upload_access_key_id, &c.upload_secret_access_key) {
            (Some(id), Some(secret)) => Some((id.expose().to_owned(), secret.expose().to_owned())),
            _ => None,
        };
        Some(UploadSettings {
            target: c.upload.clone()?,
            endpoint: c.upload_endpoint.clone(),
            region: c.upload_region.clone().unwrap_or_else(|| crate::config::DEFAULT_UPLOAD_REGION.to_owned()),
            credentials,
            keep_local: c.keep_local,
            recordings: c.recordings.clone(),
        })
    }
}

/// Counters for `/metrics` and `/healthz`.
#[derive(Debug, Default)]
pub struct UploadStats {
    pub pending: AtomicU64,
    pub completed: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub bytes: AtomicU64,
    /// The last failure, until an upload succeeds.
    last_error: Mutex<Option<String>>,
}

impl UploadStats {
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_last_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = e;
    }

    /// `/healthz`'s `uploads` detail.
    pub fn health(&self) -> serde_json::Value {
        serde_json::json!({
            "pending": self.pending.load(Relaxed),
            "completed": self.completed.load(Relaxed),
            "failed_attempts": self.failed_attempts.load(Relaxed),
            "last_error": self.last_error(),
        })
    }
}

/// A recording to upload.
struct Job {
    file: String,
    path: PathBuf,
    data: serde_json::Value,
    attempts: u32,
}

/// What the recorders hold: hands finished recordings to the uploader.
#[derive(Clone)]
pub struct UploadQueue {
    tx: Sender<Job>,
    journal: Journal,
    stats: Arc<UploadStats>,
}

impl UploadQueue {
    /// Journals the file at `path` as being recorded (`data`: what is known of it so far),
    /// without uploading it: the finished recording's entry replaces this one. An entry
    /// still marked so at start is a file the daemon never finalized (it was killed or
    /// crashed): it is uploaded as it is (see [`interrupted`]).
    pub fn recording(&self, path: &Path, mut data: serde_json::Value) {
        let Some(file) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { return };
        data[IN_PROGRESS] = true.into();
        if let Err(e) = self.journal.write(&Entry { file: file.clone(), data }) {
            log::error!(
                "cannot write the upload journal entry of {file} in {}: {e}; if the daemon dies \
                 before the call ends, the file is not uploaded at the next start",
                self.journal.dir().display()
            );
        }
    }

    /// Journals the finished recording at `path` with its `recording.finished` data, then
    /// hands it to the uploader. Called on a recorder thread: a small file write, no I/O
    /// with the storage.
    pub fn submit(&self, path: &Path, data: serde_json::Value) {
        let Some(file) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            log::error!("cannot upload {}: no file name", path.display());
            return;
        };
        let entry = Entry { file: file.clone(), data };
        if let Err(e) = self.journal.write(&entry) {
            log::error!(
                "cannot write the upload journal entry of {file} in {}: {e}; uploading it anyway, \
                 but a restart before the upload is confirmed will not resume it",
                self.journal.dir().display()
            );
        }
        self.stats.pending.fetch_add(1, Relaxed);
        let job = Job { file, path: path.to_owned(), data: entry.data, attempts: 0 };
        if self.tx.send(job).is_err() {
            log::error!("the uploader is gone; {} stays on disk and in the journal", path.display());
        }
    }
}

/// The uploader thread, and the [`UploadQueue`] for everyone else.
pub struct Uploads {
    queue: UploadQueue,
    handle: JoinHandle<()>,
    /// Set by [`Uploads::finish`]: the thread stops [`SHUTDOWN_GRACE`] later.
    closing: Arc<OnceLock<Instant>>,
    pub stats: Arc<UploadStats>,
}

impl Uploads {
    /// Starts the uploader, with the uploads the journal holds queued first; confirmed
    /// uploads are announced to `webhooks`.
    pub fn spawn(settings: UploadSettings, webhooks: WebhookQueue) -> Result<Uploads, String> {
        let client = s3::Client::new(
            settings.endpoint.as_deref(),
            &settings.target.bucket,
            &settings.region,
            settings.credentials.clone(),
        )?;
        let journal = Journal::new(&settings.recordings);
        let stats = Arc::new(UploadStats::default());
        let (tx, rx) = unbounded();
        let mut pending = journal.scan();
        for entry in &mut pending {
            if entry.data[IN_PROGRESS] == true {
                log::warn!(
                    "{} was being recorded when the daemon stopped (killed or crashed): uploading what it holds",
                    entry.file
                );
                entry.data = interrupted(std::mem::take(&mut entry.data));
                if let Err(e) = journal.write(entry) {
                    log::error!("cannot update the upload journal entry of {}: {e}", entry.file);
                }
            }
            stats.pending.fetch_add(1, Relaxed);
            let path = settings.recordings.join(&entry.file);
            let job = Job { file: entry.file.clone(), path, data: entry.data.clone(), attempts: 0 };
            let _ = tx.send(job);
        }
        log::info!(
            "uploading recordings to {} at {} ({}, {}); {} pending from the journal {}",
            settings.target,
            settings.endpoint.as_deref().unwrap_or("AWS S3"),
            settings.region,
            if settings.credentials.is_some() { "signed" } else { "unsigned: no credentials" },
            pending.len(),
            journal.dir().display()
        );
        let closing = Arc::new(OnceLock::new());
        let uploader = Uploader {
            client,
            settings,
            journal: journal.clone(),
            webhooks,
            stats: stats.clone(),
            closing: closing.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("uploads".into())
            .spawn(move || uploader.run(&rx))
            .map_err(|e| format!("cannot start the upload thread: {e}"))?;
        Ok(Uploads { queue: UploadQueue { tx, journal, stats: stats.clone() }, handle, closing, stats })
    }

    pub fn queue(&self) -> UploadQueue {
        self.queue.clone()
    }

    /// Gives the uploader [`SHUTDOWN_GRACE`] to finish (call once the recorders are done)
    /// and waits for it a little longer than that; a request still in flight then is
    /// left behind (its upload resumes from the journal at the next start).
    pub fn finish(self) {
        let _ = self.closing.set(Instant::now());
        drop(self.queue);
        let until = Instant::now() + SHUTDOWN_GRACE + Duration::from_secs(1);
        while !self.handle.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.handle.is_finished() {
            let _ = self.handle.join();
        } else {
            log::warn!("an upload is still in flight at exit; it resumes from the journal at the next start");
        }
    }
}

/// What the upload thread owns.
struct Uploader {
    client: s3::Client,
    settings: UploadSettings,
    journal: Journal,
    webhooks: WebhookQueue,
    stats: Arc<UploadStats>,
    closing: Arc<OnceLock<Instant>>,
}

/// How one attempt went.
enum Outcome {
    Done,
    Failed(Job),
}

impl Uploader {
    fn out_of_time(&self) -> bool {
        self.closing.get().is_some_and(|t| t.elapsed() > SHUTDOWN_GRACE)
    }

    /// Uploads jobs in order until the queue is closed and empty (or the shutdown grace is
    /// over); a failed job goes to the back, and the next attempt waits the backoff.
    fn run(self, rx: &Receiver<Job>) {
        let mut queue: VecDeque<Job> = VecDeque::new();
        let mut backoff = FIRST_BACKOFF;
        let mut retry_at: Option<Instant> = None;
        let mut open = true;
        while !self.out_of_time() {
            while let Ok(job) = rx.try_recv() {
                queue.push_back(job);
            }
            let now = Instant::now();
            let waiting = retry_at.filter(|&at| at > now);
            if queue.is_empty() || waiting.is_some() {
                if !open && queue.is_empty() {
                    break;
                }
                let until = waiting.unwrap_or(now + Duration::from_millis(100));
                match rx.recv_timeout(until.saturating_duration_since(now).min(Duration::from_millis(100))) {
                    Ok(job) => queue.push_back(job),
                    Err(RecvTimeoutError::Disconnected) => open = false,
                    Err(RecvTimeoutError::Timeout) => {}
                }
                continue;
            }
            let Some(job) = queue.pop_front() else { continue };
            match self.attempt(job, backoff) {
                Outcome::Done => {
                    backoff = FIRST_BACKOFF;
                    retry_at = None;
                }
                Outcome::Failed(job) => {
                    retry_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    queue.push_back(job);
                }
            }
        }
        let left = queue.len() + rx.len();
        if left > 0 {
            log::info!(
                "{left} upload(s) pending at exit; they resume at the next start (journal {})",
                self.journal.dir().display()
            );
        }
    }

    /// One try at a job; `backoff` is the wait before the next try if it fails.
    fn attempt(&self, mut job: Job, backoff: Duration) -> Outcome {
        let session = job.data["session"].as_str().and_then(tapedeck_core::engine::SessionId::parse);
        let _scope = session.map(|id| id.log_scope());
        let key = self.settings.target.key(&job.file);
        let target = format!("s3://{}/{key}", self.settings.target.bucket);
        if !job.path.exists() {
            log::error!(
                "upload of {} to {target}: the file {} is missing; dropping its journal entry",
                job.file,
                job.path.display()
            );
            self.forget(&job);
            return Outcome::Done;
        }
        job.attempts += 1;
        let uploaded = match self.client.upload(&job.path, &key) {
            Ok(u) => u,
            Err(e) => {
                self.stats.failed_attempts.fetch_add(1, Relaxed);
                let what = format!("upload of {} to {target} failed (attempt {}): {e}", job.file, job.attempts);
                log::error!("{what}; file kept, retrying in {} s", backoff.as_secs());
                self.stats.set_last_error(Some(what));
                return Outcome::Failed(job);
            }
        };
        log::info!(
            "uploaded {} to {target}: {} bytes in {} part(s), checksum confirmed (attempt {})",
            job.file,
            uploaded.bytes,
            uploaded.parts,
            job.attempts
        );
        self.stats.completed.fetch_add(1, Relaxed);
        self.stats.bytes.fetch_add(uploaded.bytes, Relaxed);
        self.stats.set_last_error(None);
        let mut data = std::mem::take(&mut job.data);
        data["file"] = job.file.clone().into();
        data["bucket"] = self.settings.target.bucket.clone().into();
        data["key"] = key.into();
        data["bytes"] = uploaded.bytes.into();
        data["sha256"] = uploaded.sha256.into();
        self.webhooks.send("recording.finished", || data, None);
        // The journal entry goes first: a crash in between leaves a file on disk, not an
        // entry naming a file already deleted.
        self.forget(&job);
        if !self.settings.keep_local {
            if let Err(e) = std::fs::remove_file(&job.path) {
                log::warn!("uploaded {} but cannot delete it: {e}", job.path.display());
            }
        }
        Outcome::Done
    }

    /// Drops the job's journal entry; it is no longer pending.
    fn forget(&self, job: &Job) {
        if let Err(e) = self.journal.remove(&job.file) {
            log::error!("cannot remove the upload journal entry of {}: {e}", job.file);
        }
        self.stats.pending.fetch_sub(1, Relaxed);
    }
}
