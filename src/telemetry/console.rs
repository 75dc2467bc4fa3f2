//! What the operator's console (`GET /console`) samples every second (`GET /console/stats`),
//! and a bounded memory of the recordings finished since start (their end reason and loss,
//! which the files do not hold).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::{Refusal, Telemetry};

/// Finished recordings remembered (the oldest are forgotten first).
pub const FINISHED_KEPT: usize = 4096;

/// A file a recorder finalized, as the console lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The file's name in the recordings folder.
    pub name: String,
    /// Why the call ended (`hang-up`, ...), or `segment` for a segment the call went on after.
    pub end_reason: String,
    pub packets: u64,
    pub lost: u64,
    pub concealed_ms: u64,
    /// Set when writing failed.
    pub error: Option<String>,
}

impl Telemetry {
    /// Remembers a finished file (the newest [`FINISHED_KEPT`]).
    pub fn record_finished(&self, finished: Finished) {
        let mut list = self.finished.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        list.retain(|f| f.name != finished.name);
        if list.len() >= FINISHED_KEPT {
            list.pop_front();
        }
        list.push_back(finished);
    }

    /// What is remembered of the finished file `name`, if it finished since start.
    pub fn finished(&self, name: &str) -> Option<Finished> {
        let list = self.finished.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        list.iter().rev().find(|f| f.name == name).cloned()
    }

    /// The names of the files being recorded now.
    pub fn open_recordings(&self) -> Vec<String> {
        let map = self.recordings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.values().filter_map(|r| r.path.file_name().map(|n| n.to_string_lossy().into_owned())).collect()
    }

    /// One sample for the console's plots: gauges as they are, counters as totals (the
    /// page plots their differences between samples).
    pub fn console_stats(&self, now: Instant) -> serde_json::Value {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        let refused: serde_json::Map<String, serde_json::Value> =
            Refusal::ALL.iter().map(|r| (r.label().to_string(), load(&self.refused[*r as usize]).into())).collect();
        let turns: u64 = self.loops.iter().flat_map(|l| l.turns.iter()).map(load).sum();
        let turn_sum_us: u64 = self.loops.iter().map(|l| load(&l.turn_sum_us)).sum();
        serde_json::json!({
            "uptime_ms": now.saturating_duration_since(self.started).as_millis() as u64,
            "sessions_by_loop": self.loop_sessions(),
            "offers_accepted": load(&self.offers_accepted),
            "offers_refused": refused,
            "recorder_lag_ms": self.recorder_lag().as_secs_f64() * 1000.0,
            "loop_turns": turns,
            "loop_turn_sum_us": turn_sum_us,
            "upload_queue": self.uploads().map(|u| load(&u.pending)),
            "recording_errors": load(&self.recording_errors),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(name: &str, reason: &str) -> Finished {
        Finished { name: name.into(), end_reason: reason.into(), packets: 10, lost: 1, concealed_ms: 20, error: None }
    }

    #[test]
    fn finished_recordings_are_remembered_newest_first_and_bounded() {
        let t = Telemetry::new();
        t.record_finished(finished("a.wav", "hang-up"));
        t.record_finished(finished("a.wav", "shutdown"));
        assert_eq!(t.finished("a.wav").unwrap().end_reason, "shutdown", "the latest counts");
        for i in 0..FINISHED_KEPT {
            t.record_finished(finished(&format!("{i}.wav"), "hang-up"));
        }
        assert_eq!(t.finished("a.wav"), None, "the oldest is forgotten");
        assert!(t.finished("0.wav").is_some() && t.finished(&format!("{}.wav", FINISHED_KEPT - 1)).is_some());
    }

    #[test]
    fn stats_count_refusals_by_reason() {
        let t = Telemetry::with_loops(2);
        t.refused(Refusal::Full);
        t.refused(Refusal::Full);
        let s = t.console_stats(Instant::now());
        assert_eq!(s["offers_refused"]["full"], 2);
        assert_eq!(s["offers_refused"]["draining"], 0);
        assert_eq!(s["sessions_by_loop"], serde_json::json!([0, 0]));
        assert!(s["upload_queue"].is_null());
    }
}
