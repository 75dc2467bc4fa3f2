//! What an operator sees: counters for `GET /metrics`, the loop's heartbeat for
//! `GET /healthz`, and each recording's progress for `GET /sessions`.
//!
//! Shared by the event loop, the recorder workers and the signalling threads. Writers only
//! touch relaxed atomics (the loop once a turn, recorders once a tick), or a mutex the
//! recorders take once a tick; readers (HTTP) never hold up the loop.
#![allow(clippy::disallowed_methods)] // the shell reads the clock

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tapedeck_core::engine::{EngineStats, SessionId};

mod console;
pub use console::{Finished, FINISHED_KEPT};

/// Upper bounds (µs) of the loop-turn histogram's buckets; one more bucket is +Inf.
pub const TURN_BUCKETS_US: [u64; 10] = [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000];
/// The loop is unhealthy when it has not turned for this long (it turns at least every 0.5 s).
pub const STALL: Duration = Duration::from_secs(2);

/// Why an offer was refused, for `tapedeck_offers_refused_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadRequest,
    Unauthorized,
    TooLarge,
    UnsupportedType,
    Full,
    TooManyConnecting,
    Overloaded,
    ShuttingDown,
    Draining,
    Timeout,
    Internal,
}

impl Refusal {
    const ALL: [Refusal; 11] = [
        Refusal::BadRequest,
        Refusal::Unauthorized,
        Refusal::TooLarge,
        Refusal::UnsupportedType,
        Refusal::Full,
        Refusal::TooManyConnecting,
        Refusal::Overloaded,
        Refusal::ShuttingDown,
        Refusal::Draining,
        Refusal::Timeout,
        Refusal::Internal,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::BadRequest => "bad_request",
            Refusal::Unauthorized => "unauthorized",
            Refusal::TooLarge => "too_large",
            Refusal::UnsupportedType => "unsupported_type",
            Refusal::Full => "full",
            Refusal::TooManyConnecting => "too_many_connecting",
            Refusal::Overloaded => "overloaded",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::Draining => "draining",
            Refusal::Timeout => "timeout",
            Refusal::Internal => "internal",
        }
    }
}

/// A recording as its worker last saw it.
#[derive(Debug, Clone, Default)]
pub struct RecordingView {
    pub path: PathBuf,
    /// Samples (48 kHz) in the file so far.
    pub samples: u64,
    pub packets: u64,
    pub lost: u64,
    pub concealed_packets: u64,
    pub concealed_samples: u64,
    /// Packets dropped as late (they came after audio later in sequence was written).
    pub late: u64,
    /// Times the caller's timestamps could not place a packet and the mapping was reset.
    pub reanchors: u64,
    /// Silence added (+) or taken out (−) of silent stretches to follow the wall clock, ms.
    pub drift_ms: i64,
    /// The caller's estimated clock rate, ppm off nominal.
    pub clock_ppm: Option<i32>,
    /// The caller's level over the last 200 ms of decoded audio, dBFS (−96 to 0); `None`
    /// before the first 200 ms and when only Ogg is recorded (nothing is decoded).
    pub level_dbfs: Option<f64>,
    /// Set when writing failed; the call goes on without a recording.
    pub error: Option<String>,
}

/// One event loop's heartbeat and counters, written by that loop only.
#[derive(Default)]
struct LoopTelemetry {
    /// Microseconds since `started` at the loop's last turn.
    last_turn_us: AtomicU64,
    sessions: AtomicU64,
    engine: EngineCounters,
    turns: [AtomicU64; TURN_BUCKETS_US.len() + 1],
    turn_sum_us: AtomicU64,
    /// Datagrams the kernel would not send (buffer full, destination refused).
    send_errors: AtomicU64,
}

/// Counters and views shared by every thread. See the module docs.
pub struct Telemetry {
    started: Instant,
    started_wall: SystemTime,
    loops: Vec<LoopTelemetry>,
    pub offers_accepted: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
    pub concealed_packets: AtomicU64,
    pub recording_bytes: AtomicU64,
    pub recording_errors: AtomicU64,
    /// Packets the recorders dropped as late, and re-anchored timelines.
    pub late_packets: AtomicU64,
    pub reanchors: AtomicU64,
    /// Per recorder worker: the loop's time (µs since `started`) of the last batch it
    /// finished. The slowest worker's distance to the loop is the recorders' lag.
    recorders_done: Mutex<Vec<Arc<AtomicU64>>>,
    recordings: Mutex<HashMap<SessionId, RecordingView>>,
    /// Files finished since start, oldest first (see [`Telemetry::record_finished`]).
    finished: Mutex<std::collections::VecDeque<Finished>>,
    /// The webhook threads' counters, once they run.
    webhooks: std::sync::OnceLock<Arc<crate::workers::webhooks::WebhookStats>>,
    /// The uploader's counters, once it runs (`--upload`).
    uploads: std::sync::OnceLock<Arc<crate::workers::uploads::UploadStats>>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Telemetry for a daemon with one event loop.
    pub fn new() -> Self {
        Self::with_loops(1)
    }

    /// Telemetry for a daemon with `loops` event loops (at least one).
    pub fn with_loops(loops: usize) -> Self {
        Telemetry {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            loops: (0..loops.max(1)).map(|_| LoopTelemetry::default()).collect(),
            offers_accepted: AtomicU64::new(0),
            refused: Default::default(),
            concealed_packets: AtomicU64::new(0),
            recording_bytes: AtomicU64::new(0),
            recording_errors: AtomicU64::new(0),
            late_packets: AtomicU64::new(0),
            reanchors: AtomicU64::new(0),
            recorders_done: Mutex::new(Vec::new()),
            recordings: Mutex::new(HashMap::new()),
            finished: Mutex::new(std::collections::VecDeque::new()),
            webhooks: std::sync::OnceLock::new(),
            uploads: std::sync::OnceLock::new(),
        }
    }

    /// The wall-clock time of an instant (for start times shown to people).
    pub fn wall(&self, at: Instant) -> SystemTime {
        match at.checked_duration_since(self.started) {
            Some(d) => self.started_wall + d,
            None => self.started_wall - self.started.duration_since(at),
        }
    }

    /// A recorder worker's progress marker; the worker calls [`Telemetry::recorder_done`].
    pub fn add_recorder(&self) -> Arc<AtomicU64> {
        let done = Arc::new(AtomicU64::new(self.latest_turn_us()));
        self.recorders_done.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(done.clone());
        done
    }

    /// A worker finished the batch the loop handed over at `at`.
    pub fn recorder_done(&self, marker: &AtomicU64, at: Instant) {
        marker.fetch_max(micros(at.saturating_duration_since(self.started)), Relaxed);
    }

    /// The latest turn of any loop, in microseconds since `started`.
    fn latest_turn_us(&self) -> u64 {
        self.loops.iter().map(|l| l.last_turn_us.load(Relaxed)).max().unwrap_or(0)
    }

    /// How far the slowest recorder worker is behind the loops' latest turn. A worker that
    /// keeps up is at most a batch interval (0.2 s) behind.
    pub fn recorder_lag(&self) -> Duration {
        let turn = self.latest_turn_us();
        let slowest = self
            .recorders_done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|d| d.load(Relaxed))
            .min()
            .unwrap_or(turn);
        Duration::from_micros(turn.saturating_sub(slowest))
    }

    /// Shows the webhook threads' counters in `/metrics`.
    pub fn set_webhooks(&self, stats: Arc<crate::workers::webhooks::WebhookStats>) {
        let _ = self.webhooks.set(stats);
    }

    /// Shows the uploader's counters in `/metrics` and `/healthz`.
    pub fn set_uploads(&self, stats: Arc<crate::workers::uploads::UploadStats>) {
        let _ = self.uploads.set(stats);
    }

    /// The uploader's counters, with `--upload`.
    pub fn uploads(&self) -> Option<&crate::workers::uploads::UploadStats> {
        self.uploads.get().map(|u| &**u)
    }

    /// The number of event loops.
    pub fn loop_count(&self) -> usize {
        self.loops.len()
    }

    /// Loop `index` (see [`Telemetry::with_loops`]); loop 0 for an index out of range.
    fn event_loop(&self, index: usize) -> &LoopTelemetry {
        self.loops.get(index).unwrap_or(&self.loops[0])
    }

    /// Loop `index` could not send `n` datagrams.
    pub fn send_failed(&self, index: usize, n: usize) {
        if n > 0 {
            self.event_loop(index).send_errors.fetch_add(n as u64, Relaxed);
        }
    }

    /// Loop `index` finished a turn that began at `began` and took `took`.
    pub fn turned(&self, index: usize, began: Instant, took: Duration, stats: &EngineStats, sessions: usize) {
        let l = self.event_loop(index);
        l.last_turn_us.store(micros(began.saturating_duration_since(self.started)), Relaxed);
        let us = micros(took);
        let bucket = TURN_BUCKETS_US.iter().position(|&b| us <= b).unwrap_or(TURN_BUCKETS_US.len());
        l.turns[bucket].fetch_add(1, Relaxed);
        l.turn_sum_us.fetch_add(us, Relaxed);
        l.engine.store(stats);
        l.sessions.store(sessions as u64, Relaxed);
    }

    /// How long ago each loop last turned, by loop.
    pub fn since_last_turns(&self, now: Instant) -> Vec<Duration> {
        let since = now.saturating_duration_since(self.started);
        self.loops.iter().map(|l| since.saturating_sub(Duration::from_micros(l.last_turn_us.load(Relaxed)))).collect()
    }

    /// How long ago the loop that turned least recently last turned.
    pub fn since_last_turn(&self, now: Instant) -> Duration {
        self.since_last_turns(now).into_iter().max().unwrap_or_default()
    }

    /// Sessions, by loop, as of each loop's last turn.
    pub fn loop_sessions(&self) -> Vec<u64> {
        self.loops.iter().map(|l| l.sessions.load(Relaxed)).collect()
    }

    /// Sessions in every loop, as of their last turns.
    pub fn sessions_active(&self) -> u64 {
        self.loop_sessions().iter().sum()
    }

    /// The sum over the loops of one engine counter.
    fn total(&self, counter: impl Fn(&LoopTelemetry) -> &AtomicU64) -> u64 {
        self.loops.iter().map(|l| counter(l).load(Relaxed)).sum()
    }

    pub fn refused(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Relaxed);
    }

    /// A recorder's latest view of a recording.
    pub fn update_recording(&self, id: SessionId, view: RecordingView) {
        if let Ok(mut map) = self.recordings.lock() {
            map.insert(id, view);
        }
    }

    /// Forgets a recording once its session's summary is logged.
    pub fn remove_recording(&self, id: SessionId) {
        if let Ok(mut map) = self.recordings.lock() {
            map.remove(&id);
        }
    }

    pub fn recording(&self, id: SessionId) -> Option<RecordingView> {
        self.recordings.lock().ok().and_then(|m| m.get(&id).cloned())
    }

    /// Everything in Prometheus' text format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let load = |a: &AtomicU64| a.load(Relaxed);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric("tapedeck_sessions_active", "gauge", "Sessions now, connected or connecting.", self.sessions_active());
        metric(
            "tapedeck_sessions_total",
            "counter",
            "Sessions admitted since start.",
            self.total(|l| &l.engine.sessions_added),
        );
        metric("tapedeck_offers_accepted_total", "counter", "Offers answered.", load(&self.offers_accepted));
        metric(
            "tapedeck_packets_in_total",
            "counter",
            "UDP datagrams received.",
            self.total(|l| &l.engine.datagrams_in),
        );
        metric("tapedeck_bytes_in_total", "counter", "UDP bytes received.", self.total(|l| &l.engine.bytes_in));
        metric("tapedeck_packets_out_total", "counter", "UDP datagrams sent.", self.total(|l| &l.engine.datagrams_out));
        metric("tapedeck_bytes_out_total", "counter", "UDP bytes sent.", self.total(|l| &l.engine.bytes_out));
        metric(
            "tapedeck_media_packets_in_total",
            "counter",
            "Audio packets received.",
            self.total(|l| &l.engine.media_in),
        );
        metric(
            "tapedeck_send_errors_total",
            "counter",
            "Datagrams the kernel would not send (send buffer full, destination refused).",
            self.total(|l| &l.send_errors),
        );
        metric(
            "tapedeck_concealed_packets_total",
            "counter",
            "Lost packets concealed (FEC or PLC).",
            load(&self.concealed_packets),
        );
        metric(
            "tapedeck_recording_bytes_total",
            "counter",
            "Audio recorded, in bytes of 16-bit mono PCM (2 per sample of the timeline; an Ogg-only recording writes about a twelfth of that).",
            load(&self.recording_bytes),
        );
        metric(
            "tapedeck_recording_errors_total",
            "counter",
            "Recordings that could not be created or written.",
            load(&self.recording_errors),
        );
        metric(
            "tapedeck_recording_late_packets_total",
            "counter",
            "Packets dropped as late: they arrived after audio later in sequence was written (reordered beyond the jitter depth).",
            load(&self.late_packets),
        );
        metric(
            "tapedeck_recording_reanchors_total",
            "counter",
            "Times a caller's timestamps could not place a packet (they went backwards, or the server's silence covered its place) and the timeline was re-anchored.",
            load(&self.reanchors),
        );
        metric(
            "tapedeck_sample_frames_total",
            "counter",
            "Sample frames sent (each to every connected caller).",
            self.total(|l| &l.engine.sample_frames),
        );
        metric(
            "tapedeck_sample_skipped_total",
            "counter",
            "Sample frames skipped because the event loop fell more than 5 frames behind (it was stalled).",
            self.total(|l| &l.engine.sample_skipped),
        );
        metric(
            "tapedeck_sample_underruns_total",
            "counter",
            "Sample frames the encoder did not deliver in time.",
            self.total(|l| &l.engine.underruns),
        );
        let _ = writeln!(
            out,
            "# HELP tapedeck_recorder_lag_seconds How far the slowest recorder thread is behind the event loop.\n\
             # TYPE tapedeck_recorder_lag_seconds gauge\ntapedeck_recorder_lag_seconds {}",
            self.recorder_lag().as_secs_f64()
        );
        let _ = writeln!(out, "# HELP tapedeck_offers_refused_total Offers refused, by reason.");
        let _ = writeln!(out, "# TYPE tapedeck_offers_refused_total counter");
        for why in Refusal::ALL {
            let _ = writeln!(
                out,
                "tapedeck_offers_refused_total{{reason=\"{}\"}} {}",
                why.label(),
                load(&self.refused[why as usize])
            );
        }
        let _ = writeln!(
            out,
            "# HELP tapedeck_datagrams_dropped_total Datagrams dropped before reaching a session, by reason: \
             not_webrtc (not STUN, DTLS, RTP or RTCP), unknown_source (not STUN, from an address no session knows), \
             stun_unknown_ufrag (STUN naming no session), stun_rejected (STUN naming a session, with wrong credentials)."
        );
        let _ = writeln!(out, "# TYPE tapedeck_datagrams_dropped_total counter");
        if let Some(w) = self.webhooks.get() {
            let _ = writeln!(
                out,
                "# HELP tapedeck_webhooks_delivered_total Webhook events a receiver took (2xx), counted per URL.\n\
                 # TYPE tapedeck_webhooks_delivered_total counter\ntapedeck_webhooks_delivered_total {}\n\
                 # HELP tapedeck_webhooks_failed_attempts_total Webhook deliveries that failed (an error, a timeout or no 2xx) and were retried or given up.\n\
                 # TYPE tapedeck_webhooks_failed_attempts_total counter\ntapedeck_webhooks_failed_attempts_total {}\n\
                 # HELP tapedeck_webhooks_given_up_total Webhook events given up after the last try.\n\
                 # TYPE tapedeck_webhooks_given_up_total counter\ntapedeck_webhooks_given_up_total {}",
                load(&w.delivered),
                load(&w.failed_attempts),
                load(&w.given_up)
            );
        }
        let reasons = tapedeck_core::engine::Drops::default().by_reason().map(|(reason, _)| reason);
        for (i, reason) in reasons.iter().enumerate() {
            let _ = writeln!(
                out,
                "tapedeck_datagrams_dropped_total{{reason=\"{reason}\"}} {}",
                self.total(|l| &l.engine.dropped[i])
            );
        }
        if let Some(u) = self.uploads.get() {
            let _ = writeln!(
                out,
                "# HELP tapedeck_uploads_pending Finished recordings whose upload is not confirmed yet.\n\
                 # TYPE tapedeck_uploads_pending gauge\ntapedeck_uploads_pending {}\n\
                 # HELP tapedeck_uploads_completed_total Recordings uploaded and confirmed by their checksum.\n\
                 # TYPE tapedeck_uploads_completed_total counter\ntapedeck_uploads_completed_total {}\n\
                 # HELP tapedeck_uploads_failed_attempts_total Upload attempts that failed (and will be retried).\n\
                 # TYPE tapedeck_uploads_failed_attempts_total counter\ntapedeck_uploads_failed_attempts_total {}\n\
                 # HELP tapedeck_uploads_bytes_total Bytes of recordings uploaded and confirmed.\n\
                 # TYPE tapedeck_uploads_bytes_total counter\ntapedeck_uploads_bytes_total {}",
                load(&u.pending),
                load(&u.completed),
                load(&u.failed_attempts),
                load(&u.bytes)
            );
        }
        let now = Instant::now();
        let _ =
            writeln!(out, "# HELP tapedeck_loop_sessions_active Sessions in each event loop, connected or connecting.");
        let _ = writeln!(out, "# TYPE tapedeck_loop_sessions_active gauge");
        for (i, l) in self.loops.iter().enumerate() {
            let _ = writeln!(out, "tapedeck_loop_sessions_active{{loop=\"{i}\"}} {}", load(&l.sessions));
        }
        let _ = writeln!(out, "# HELP tapedeck_loop_since_last_turn_seconds How long ago each event loop last turned (it turns at least every 0.5 s; 2 s is a stall).");
        let _ = writeln!(out, "# TYPE tapedeck_loop_since_last_turn_seconds gauge");
        for (i, since) in self.since_last_turns(now).iter().enumerate() {
            let _ = writeln!(out, "tapedeck_loop_since_last_turn_seconds{{loop=\"{i}\"}} {}", since.as_secs_f64());
        }
        let _ = writeln!(out, "# HELP tapedeck_loop_turn_seconds Time an event loop spends on one turn, by loop.");
        let _ = writeln!(out, "# TYPE tapedeck_loop_turn_seconds histogram");
        for (n, l) in self.loops.iter().enumerate() {
            let mut cumulative = 0;
            for (i, count) in l.turns.iter().enumerate() {
                cumulative += load(count);
                let le = TURN_BUCKETS_US.get(i).map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
                let _ = writeln!(out, "tapedeck_loop_turn_seconds_bucket{{loop=\"{n}\",le=\"{le}\"}} {cumulative}");
            }
            let _ =
                writeln!(out, "tapedeck_loop_turn_seconds_sum{{loop=\"{n}\"}} {}", load(&l.turn_sum_us) as f64 / 1e6);
            let _ = writeln!(out, "tapedeck_loop_turn_seconds_count{{loop=\"{n}\"}} {cumulative}");
        }
        out
    }
}

/// The engine's counters as of the loop's last turn.
#[derive(Default)]
struct EngineCounters {
    sessions_added: AtomicU64,
    datagrams_in: AtomicU64,
    bytes_in: AtomicU64,
    datagrams_out: AtomicU64,
    bytes_out: AtomicU64,
    media_in: AtomicU64,
    underruns: AtomicU64,
    /// Datagrams dropped before reaching a session, by reason (`Drops::by_reason`).
    dropped: [AtomicU64; 4],
    sample_frames: AtomicU64,
    sample_skipped: AtomicU64,
}

impl EngineCounters {
    fn store(&self, s: &EngineStats) {
        self.sessions_added.store(s.sessions_added, Relaxed);
        self.datagrams_in.store(s.datagrams_in, Relaxed);
        self.bytes_in.store(s.bytes_in, Relaxed);
        self.datagrams_out.store(s.transmits, Relaxed);
        self.bytes_out.store(s.bytes_out, Relaxed);
        self.media_in.store(s.media_in, Relaxed);
        self.underruns.store(s.sample_underruns, Relaxed);
        for (slot, (_, n)) in self.dropped.iter().zip(s.dropped.by_reason()) {
            slot.store(n, Relaxed);
        }
        self.sample_frames.store(s.sample_frames, Relaxed);
        self.sample_skipped.store(s.sample_skipped, Relaxed);
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_family_once_and_a_cumulative_histogram() {
        let t = Telemetry::new();
        let dropped = tapedeck_core::engine::Drops { stun_unknown_ufrag: 5, stun_rejected: 1, ..Default::default() };
        let stats = EngineStats {
            datagrams_in: 7,
            bytes_in: 700,
            sessions_added: 2,
            sample_frames: 100,
            sample_skipped: 6,
            dropped,
            ..Default::default()
        };
        t.turned(0, Instant::now(), Duration::from_micros(80), &stats, 1);
        t.turned(0, Instant::now(), Duration::from_millis(3), &stats, 1);
        t.refused(Refusal::Full);
        let text = t.prometheus();
        assert!(text.contains("tapedeck_packets_in_total 7\n"), "{text}");
        assert!(text.contains("tapedeck_sessions_total 2\n"));
        assert!(text.contains("tapedeck_sessions_active 1\n"));
        assert!(text.contains("tapedeck_offers_refused_total{reason=\"full\"} 1\n"));
        assert!(text.contains("tapedeck_loop_turn_seconds_bucket{loop=\"0\",le=\"0.0001\"} 1\n"), "{text}");
        assert!(text.contains("tapedeck_loop_turn_seconds_bucket{loop=\"0\",le=\"0.005\"} 2\n"));
        assert!(text.contains("tapedeck_loop_turn_seconds_bucket{loop=\"0\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("tapedeck_loop_turn_seconds_count{loop=\"0\"} 2\n"));
        assert!(text.contains("tapedeck_loop_sessions_active{loop=\"0\"} 1\n"));
        assert!(text.contains("tapedeck_sample_frames_total 100\n"), "{text}");
        assert!(text.contains("tapedeck_sample_skipped_total 6\n"), "{text}");
        assert!(text.contains("tapedeck_datagrams_dropped_total{reason=\"stun_unknown_ufrag\"} 5\n"), "{text}");
        assert!(text.contains("tapedeck_datagrams_dropped_total{reason=\"stun_rejected\"} 1\n"), "{text}");
        assert!(text.contains("tapedeck_datagrams_dropped_total{reason=\"not_webrtc\"} 0\n"), "{text}");
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let name = line.split(' ').nth(2).unwrap();
            assert_eq!(text.matches(&format!("# TYPE {name} ")).count(), 1, "{name} declared twice");
        }
    }

    #[test]
    fn a_loop_that_stops_turning_is_noticed() {
        let t = Telemetry::new();
        let now = Instant::now();
        t.turned(0, now, Duration::ZERO, &EngineStats::default(), 0);
        assert!(t.since_last_turn(now + Duration::from_millis(10)) < STALL);
        assert!(t.since_last_turn(now + STALL * 2) >= STALL);
    }

    /// With several loops, one that stops is noticed while the others turn, and the totals
    /// add every loop's counters.
    #[test]
    fn every_loop_counts_and_one_stalled_loop_shows() {
        let t = Telemetry::with_loops(2);
        let now = Instant::now();
        let stats = EngineStats { datagrams_in: 3, ..Default::default() };
        t.turned(0, now, Duration::ZERO, &stats, 2);
        t.turned(1, now, Duration::ZERO, &stats, 5);
        let later = now + STALL * 2;
        t.turned(0, later, Duration::ZERO, &stats, 2);
        let since = t.since_last_turns(later);
        assert!(since[0] < STALL && since[1] >= STALL, "{since:?}");
        assert!(t.since_last_turn(later) >= STALL);
        assert_eq!(t.sessions_active(), 7);
        let text = t.prometheus();
        assert!(text.contains("tapedeck_packets_in_total 6\n"), "{text}");
        assert!(text.contains("tapedeck_sessions_active 7\n"), "{text}");
        assert!(text.contains("tapedeck_loop_sessions_active{loop=\"1\"} 5\n"), "{text}");
        assert!(text.contains("tapedeck_loop_turn_seconds_count{loop=\"1\"} 1\n"), "{text}");
    }
}
