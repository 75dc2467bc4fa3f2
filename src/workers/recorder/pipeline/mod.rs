//! The recorder pipeline: what one recorder worker does with the messages the event loop sends
//! it, with no thread, clock or file of its own. The daemon's worker threads
//! ([`super::RecorderPool`]) and the simulated-network tests drive this one type: each hands
//! over a batch of messages with the loop's (or the simulation's) time, so a test exercises
//! exactly the daemon's recording logic, tick cadence and failure handling.
//!
//! It lives under `workers`, not `media`, because it is the worker's logic rather than audio:
//! it knows sessions, the telemetry and the summary log line, which `media` (pure audio,
//! no notion of a session) does not.
//!
//! Per session the pipeline owns a [`Recorder`] (jitter buffer, decoder, WAV writer, capture)
//! writing into a [`Storage`]. On each batch it applies the messages in order, then, at most
//! every [`TICK`] of the given time, advances every recording (so audio is written while a
//! caller is silent), refreshes each WAV header (so a killed process leaves a playable file)
//! and publishes each recording's progress. An end writes what is still buffered, makes the
//! file exactly as long as the call and logs the session's one-line summary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use super::segments::{ogg_serial, Output};
use super::storage::Storage;
use crate::telemetry::{RecordingView, Telemetry};
use tapedeck_core::engine::{EndReason, SessionCounters, SessionId};
use tapedeck_core::media::capture::{CaptureWriter, Op};
use tapedeck_core::media::recording::Recorder;
use tapedeck_core::media::recording::{Files, Packet, Recording, RecordingConfig, RecordingStats};

/// How often the pipeline advances its recordings without new packets (the pool also sends
/// an empty batch this often).
pub const TICK: Duration = Duration::from_millis(200);
/// How often each WAV header is rewritten (with the write buffer), so that a killed
/// process leaves a file whose header covers all but the last fraction of a second.
pub const HEADER_REFRESH: Duration = TICK;

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

impl RecorderMsg {
    /// The session the message is about.
    pub fn session(&self) -> SessionId {
        match self {
            RecorderMsg::Start { session, .. }
            | RecorderMsg::Packet { session, .. }
            | RecorderMsg::End { session, .. } => *session,
        }
    }
}

/// What the loop knows about an ended session, for its one-line summary.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub reason: EndReason,
    /// The session's traffic; `None` when the loop never told (the pool closed first).
    pub counters: Option<SessionCounters>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(c) = &self.counters else {
            return write!(f, "ended ({}; the recorders closed before the call ended); traffic not known", self.reason);
        };
        write!(
            f,
            "ended ({}); datagrams in {} ({} bytes), out {} ({} bytes); audio packets in {}, out {}",
            self.reason, c.datagrams_in, c.bytes_in, c.datagrams_out, c.bytes_out, c.media_in, c.media_out
        )
    }
}

/// A file the pipeline finalized (complete and closed): a recording, or one format or
/// segment of it (see [`Output`]).
#[derive(Debug, Clone)]
pub struct Ended {
    pub session: SessionId,
    /// How long the call lasted (so far, for a segment that is not the last); the whole
    /// recording is exactly this long unless writing failed.
    pub duration: Duration,
    /// The recording's counters (the whole call's, up to the end of this file); `None` if
    /// writing failed (the file keeps what it had).
    pub stats: Option<RecordingStats>,
    /// The file.
    pub path: PathBuf,
    /// `wav` or `ogg`.
    pub format: &'static str,
    /// Which segment (1-based; 1 without segments).
    pub segment: u32,
    /// Where the file starts in the recording, and how long it is, in samples.
    pub offset: u64,
    pub samples: u64,
    /// Why the call ended; `None` for a segment the call goes on after.
    pub reason: Option<EndReason>,
}

/// Where a recording's capture goes in the capture directory `dir`: `<recording name>.tdcap`.
pub fn capture_path(dir: &Path, recording: &Path) -> Option<PathBuf> {
    let name = recording.file_stem()?.to_string_lossy().into_owned() + ".tdcap";
    Some(dir.join(name))
}

/// One worker's recordings. See the module docs.
pub struct Pipeline<S: Storage> {
    config: RecordingConfig,
    /// The capture directory, if capturing.
    capture: Option<PathBuf>,
    storage: S,
    output: Output,
    open: HashMap<SessionId, Open<S>>,
    telemetry: Arc<Telemetry>,
    /// This worker's progress marker in the telemetry (for the recorders' lag).
    done: Arc<AtomicU64>,
    /// The latest time handed over: the pipeline's clock never runs backwards.
    clock: Option<Instant>,
    last_tick: Option<Instant>,
    /// Files opened since [`Pipeline::take_opened`] last took them.
    opened: Vec<Opened>,
}

/// A file the pipeline opened (a recording, or one format or segment of it), so the worker
/// can note that it is being written: one the daemon never finalizes (killed, crashed) is
/// then still found, and delivered, at the next start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub session: SessionId,
    pub path: PathBuf,
    /// `wav` or `ogg`.
    pub format: &'static str,
    pub segment: u32,
}

impl<S: Storage> Pipeline<S> {
    /// A pipeline recording with `config` into `storage`; with `capture`, each recording's
    /// operations also go to `<capture>/<recording name>.tdcap`. Registers itself as a
    /// recorder worker in `telemetry`.
    pub fn new(config: RecordingConfig, capture: Option<PathBuf>, storage: S, telemetry: Arc<Telemetry>) -> Self {
        let done = telemetry.add_recorder();
        let output = Output::default();
        Pipeline {
            config,
            capture,
            storage,
            output,
            open: HashMap::new(),
            telemetry,
            done,
            clock: None,
            last_tick: None,
            opened: Vec::new(),
        }
    }

    /// The files opened since the last call, in order (before any of them ends, a batch
    /// hands them here first).
    pub fn take_opened(&mut self) -> Vec<Opened> {
        std::mem::take(&mut self.opened)
    }

    /// Records into the files `output` says (by default one WAV per call).
    pub fn with_output(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// Handles one batch the loop handed over at `now`: applies its messages in order, then
    /// ticks if [`TICK`] has passed since the last tick. Returns the recordings it finalized.
    pub fn handle_batch(&mut self, now: Instant, msgs: Vec<RecorderMsg>) -> Vec<Ended> {
        let mut ended: Vec<Ended> = msgs.into_iter().flat_map(|msg| self.handle(msg)).collect();
        let now = self.clock.map_or(now, |c| c.max(now));
        self.clock = Some(now);
        if self.last_tick.is_none_or(|t| now.duration_since(t) >= TICK) {
            self.last_tick = Some(now);
            ended.extend(self.tick(now));
        }
        self.telemetry.recorder_done(&self.done, now);
        self.remember(&ended);
        ended
    }

    /// Tells the telemetry (the console's listing) how each finished file ended.
    fn remember(&self, ended: &[Ended]) {
        for e in ended {
            let Some(name) = e.path.file_name() else { continue };
            let stats = e.stats.unwrap_or_default();
            self.telemetry.record_finished(crate::telemetry::Finished {
                name: name.to_string_lossy().into_owned(),
                end_reason: e.reason.map_or("segment".to_string(), |r| r.to_string()),
                packets: stats.packets,
                lost: stats.lost,
                concealed_ms: stats.concealed_samples / 48,
                error: e.stats.is_none().then(|| "writing failed".to_string()),
            });
        }
    }

    /// When the next batch will tick (`None` before the first batch): a driver that wants
    /// every tick on time hands over a batch, empty if need be, at this time.
    pub fn next_tick(&self) -> Option<Instant> {
        self.last_tick.map(|t| t + TICK)
    }

    /// Finalizes every open recording at the latest time handed over (the daemon is
    /// stopping); each session's summary says `shutdown`.
    pub fn shutdown(&mut self) -> Vec<Ended> {
        let ids: Vec<SessionId> = self.open.keys().copied().collect();
        let summary = Summary { reason: EndReason::Shutdown, counters: None };
        let ended: Vec<Ended> = ids
            .into_iter()
            .flat_map(|id| {
                let duration = match (self.open.get(&id), self.clock) {
                    (Some(o), Some(now)) => now.saturating_duration_since(o.at),
                    _ => Duration::ZERO,
                };
                self.end(id, duration, summary)
            })
            .collect();
        self.remember(&ended);
        ended
    }

    /// The storage the recordings are written to.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, to take finished files from it.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    fn handle(&mut self, msg: RecorderMsg) -> Vec<Ended> {
        match msg {
            RecorderMsg::Start { session, at, path } => self.start(session, at, path),
            RecorderMsg::Packet { session, packet } => {
                if let Some(open) = self.open.get_mut(&session) {
                    open.apply(Op::Packet(packet), session, &self.telemetry);
                }
            }
            RecorderMsg::End { session, duration, summary } => return self.end(session, duration, summary),
        }
        Vec::new()
    }

    fn start(&mut self, session: SessionId, at: Instant, path: PathBuf) {
        let _scope = session.log_scope();
        let paths = self.output.paths(&path, 1);
        let recorder = self.open_recorder(session, &path, &paths);
        let mut view = RecordingView { path: paths[0].1.clone(), ..Default::default() };
        let recorder = match recorder {
            Ok(r) => {
                self.opened.extend(opened(session, &paths, 1));
                Some(r)
            }
            Err(e) => {
                log::error!("{e}; the call goes on unrecorded");
                self.telemetry.recording_errors.fetch_add(1, Relaxed);
                view.error = Some(e);
                None
            }
        };
        self.telemetry.update_recording(session, view.clone());
        let failed_at = recorder.is_none().then_some(Duration::ZERO);
        let open = Open { at, path, paths, segment: 1, segment_start: 0, recorder, flushed: at, view, failed_at };
        self.open.insert(session, open);
    }

    fn open_recorder(
        &mut self,
        session: SessionId,
        path: &Path,
        paths: &[(&'static str, PathBuf)],
    ) -> Result<Recorder<S::Wav, S::Capture>, String> {
        let files = create_files(&mut self.storage, session, paths, 1)?;
        let recording = Recording::with_files(files, self.config)
            .map_err(|e| format!("cannot start the recording {}: {e}", path.display()))?;
        log::info!("recording to {}", shown(paths));
        Ok(Recorder::new(recording, self.open_capture(path)))
    }

    fn open_capture(&mut self, recording: &Path) -> Option<CaptureWriter<S::Capture>> {
        let path = capture_path(self.capture.as_ref()?, recording)?;
        let created = self.storage.create_capture(&path).map_err(Into::into);
        match created.and_then(|out| CaptureWriter::new(out, self.config)) {
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

    /// Advances, flushes and publishes every recording; starts the next segment of those
    /// that reached the segment length, returning the files that ended.
    fn tick(&mut self, now: Instant) -> Vec<Ended> {
        let mut ended = Vec::new();
        for (id, open) in &mut self.open {
            let elapsed = now.saturating_duration_since(open.at);
            open.apply(Op::Advance(elapsed), *id, &self.telemetry);
            if now.duration_since(open.flushed) >= HEADER_REFRESH {
                open.flushed = now;
                open.apply(Op::Flush, *id, &self.telemetry);
            }
            if let Some(stats) = open.recorder.as_ref().map(|r| r.stats()) {
                open.publish(*id, stats, &self.telemetry);
                let due = self.output.segment_samples().filter(|&n| stats.samples_written >= open.segment_start + n);
                if let Some(length) = due {
                    let _scope = id.log_scope();
                    let next =
                        open.next_segment(*id, elapsed, length, &mut self.storage, &self.output, &self.telemetry);
                    if !next.is_empty() {
                        self.opened.extend(opened(*id, &open.paths, open.segment));
                    }
                    ended.extend(next);
                }
            }
        }
        ended
    }

    /// Finalizes the recording and logs the session's one-line summary.
    fn end(&mut self, session: SessionId, duration: Duration, summary: Summary) -> Vec<Ended> {
        let Some(mut open) = self.open.remove(&session) else { return Vec::new() };
        let finished = open.recorder.take().map(|r| r.finish(duration));
        let mut stats = None;
        let recording = match (finished, &open.view.error) {
            (Some(Ok((s, _))), _) => {
                open.publish(session, s, &self.telemetry);
                stats = Some(s);
                finalized(&s, &open.paths, open.segment)
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
        let _scope = session.log_scope();
        log::info!("summary: {summary} after {:.3} s; {recording}", duration.as_secs_f64());
        open.ended(session, duration, stats, Some(summary.reason))
    }
}

/// The [`Opened`] of segment `n`'s files.
fn opened(session: SessionId, paths: &[(&'static str, PathBuf)], segment: u32) -> Vec<Opened> {
    paths.iter().map(|(format, path)| Opened { session, path: path.clone(), format, segment }).collect()
}

/// Creates the files of segment `n` (see [`Output::paths`]).
fn create_files<S: Storage>(
    storage: &mut S,
    session: SessionId,
    paths: &[(&'static str, PathBuf)],
    n: u32,
) -> Result<Files<S::Wav>, String> {
    let mut files = Files { wav: None, ogg: None };
    for (ext, path) in paths {
        let file =
            storage.create_wav(path).map_err(|e| format!("cannot create the recording {}: {e}", path.display()))?;
        match *ext {
            "wav" => files.wav = Some(file),
            _ => files.ogg = Some((file, ogg_serial(session, n))),
        }
    }
    Ok(files)
}

/// The files of a segment, for the log: `a.wav` or `a.wav and a.ogg`.
fn shown(paths: &[(&'static str, PathBuf)]) -> String {
    let names: Vec<String> = paths.iter().map(|(_, p)| p.display().to_string()).collect();
    names.join(" and ")
}

/// The summary's account of a recording finalized without error (its last segment's files
/// `paths`).
fn finalized(stats: &RecordingStats, paths: &[(&'static str, PathBuf)], segment: u32) -> String {
    let loss = if stats.packets + stats.lost == 0 {
        0.0
    } else {
        100.0 * stats.lost as f64 / (stats.packets + stats.lost) as f64
    };
    format!(
        "{} packets in, {} recorded, {} padding only, {} lost ({loss:.1} %), {} late, {} concealed ({} ms); caller's clock {}, {} ms of silence {} to follow the wall clock, {} re-anchors; recording {} finalized: {:.3} s{}",
        stats.packets,
        stats.recorded,
        stats.padding,
        stats.lost,
        stats.late,
        stats.concealed_fec + stats.concealed_plc,
        stats.concealed_samples / 48,
        stats.clock_ppm.map_or("not estimated".to_string(), |p| format!("{p:+} ppm")),
        stats.drift_samples.unsigned_abs() / 48,
        if stats.drift_samples < 0 { "taken out" } else { "added" },
        stats.reanchors,
        shown(paths),
        stats.samples_written as f64 / f64::from(SAMPLE_RATE_HZ),
        if segment > 1 { format!(" in {segment} segments") } else { String::new() },
    )
}

struct Open<S: Storage> {
    at: Instant,
    /// The recording's name, as the loop gave it.
    path: PathBuf,
    /// The current segment's files, its number and where it starts (in samples).
    paths: Vec<(&'static str, PathBuf)>,
    segment: u32,
    segment_start: u64,
    /// None once writing failed: the call goes on, the file keeps what it had.
    recorder: Option<Recorder<S::Wav, S::Capture>>,
    flushed: Instant,
    /// The last counters published to the telemetry.
    view: RecordingView,
    failed_at: Option<Duration>,
}

impl<S: Storage> Open<S> {
    /// Applies `op`; on a write error, keeps what is on disk, stops recording this call,
    /// and counts and logs the failure (once).
    fn apply(&mut self, op: Op, session: SessionId, telemetry: &Telemetry) {
        let Some(recorder) = &mut self.recorder else { return };
        let Err(e) = recorder.apply(op) else { return };
        self.fail(e, session, telemetry);
    }

    /// Writing failed: keeps what is on disk, stops recording this call, and counts and
    /// logs the failure (once).
    fn fail(&mut self, e: tapedeck_core::media::capture::CaptureError, session: SessionId, telemetry: &Telemetry) {
        let mut recorder = self.recorder.take();
        // Rewrite the header for what is already in the file (hound does it again on drop).
        let _ = recorder.as_mut().map(|r| r.apply(Op::Flush));
        let kept = recorder.as_ref().map_or(0, |r| r.stats().samples_written);
        drop(recorder);
        self.failed_at = Some(Duration::from_secs_f64(kept as f64 / f64::from(SAMPLE_RATE_HZ)));
        self.view.error = Some(e.to_string());
        telemetry.recording_errors.fetch_add(1, Relaxed);
        telemetry.update_recording(session, self.view.clone());
        let _scope = session.log_scope();
        log::error!(
            "recording {} failed: {e}; the call goes on unrecorded, the file keeps its first {:.3} s",
            self.path.display(),
            kept as f64 / f64::from(SAMPLE_RATE_HZ)
        );
    }

    /// Ends the current segment's files at `length` samples or a little after (here, between
    /// two writes) and goes on into the next segment's; returns the files that ended. If the
    /// next files cannot be created, the current ones go on and the next try is a segment
    /// later: audio is never dropped for a name.
    fn next_segment(
        &mut self,
        session: SessionId,
        elapsed: Duration,
        length: u64,
        storage: &mut S,
        output: &Output,
        telemetry: &Telemetry,
    ) -> Vec<Ended> {
        let n = self.segment + 1;
        let paths = output.paths(&self.path, n);
        let files = match create_files(storage, session, &paths, n) {
            Ok(files) => files,
            Err(e) => {
                log::error!("{e}; segment {} goes on", self.segment);
                self.segment_start += length;
                return Vec::new();
            }
        };
        let Some(recorder) = &mut self.recorder else { return Vec::new() };
        let stats = recorder.stats();
        if let Err(e) = recorder.split(files) {
            self.fail(e, session, telemetry);
            return Vec::new();
        }
        let ended = self.ended(session, elapsed, Some(stats), None);
        log::info!("segment {n} from {:.3} s: recording to {}", stats.samples_written as f64 / 48_000.0, shown(&paths));
        self.paths = paths;
        self.segment = n;
        self.segment_start = stats.samples_written;
        self.view.path = self.paths[0].1.clone();
        ended
    }

    /// One [`Ended`] per file of the current segment.
    fn ended(
        &self,
        session: SessionId,
        duration: Duration,
        stats: Option<RecordingStats>,
        reason: Option<EndReason>,
    ) -> Vec<Ended> {
        let end = stats.map_or(self.segment_start, |s| s.samples_written);
        let samples = end.saturating_sub(self.segment_start);
        let file = |(format, path): &(&'static str, PathBuf)| Ended {
            session,
            duration,
            stats,
            path: path.clone(),
            format,
            segment: self.segment,
            offset: self.segment_start,
            samples,
            reason,
        };
        self.paths.iter().map(file).collect()
    }

    /// Publishes the recording's progress (and the bytes written since last time).
    fn publish(&mut self, session: SessionId, stats: RecordingStats, telemetry: &Telemetry) {
        let bytes = stats.samples_written.saturating_sub(self.view.samples) * 2;
        let concealed = (stats.concealed_fec + stats.concealed_plc).saturating_sub(self.view.concealed_packets);
        telemetry.recording_bytes.fetch_add(bytes, Relaxed);
        telemetry.concealed_packets.fetch_add(concealed, Relaxed);
        telemetry.late_packets.fetch_add(stats.late.saturating_sub(self.view.late), Relaxed);
        telemetry.reanchors.fetch_add(stats.reanchors.saturating_sub(self.view.reanchors), Relaxed);
        self.view.late = stats.late;
        self.view.reanchors = stats.reanchors;
        self.view.drift_ms = stats.drift_samples / 48;
        self.view.clock_ppm = stats.clock_ppm;
        self.view.level_dbfs = stats.level_rms.map(tapedeck_core::media::recording::rms_dbfs);
        self.view.samples = stats.samples_written;
        self.view.packets = stats.packets;
        self.view.lost = stats.lost;
        self.view.concealed_samples = stats.concealed_samples;
        self.view.concealed_packets = stats.concealed_fec + stats.concealed_plc;
        telemetry.update_recording(session, self.view.clone());
    }
}

#[cfg(test)]
mod tests;
