//! `GET /healthz` and `POST /drain`: what a load balancer asks and tells a daemon.

use std::time::{Duration, Instant};

use super::{Reply, Shared};
use crate::io::lifecycle::State;
use crate::telemetry::STALL;

/// `GET /healthz`: 200 while every loop turns and new calls are taken; 503 when draining or
/// stopping (so a load balancer sends no more offers) or when a loop has stalled. With
/// `--upload`, `uploads` tells how the uploads go (pending, failures, the last error).
pub(super) fn health(shared: &Shared) -> Reply {
    let t = &shared.telemetry;
    let now = Instant::now();
    let since = t.since_last_turns(now);
    let sessions = t.loop_sessions();
    let loops: Vec<serde_json::Value> = since
        .iter()
        .zip(&sessions)
        .enumerate()
        .map(|(i, (since, n))| {
            serde_json::json!({ "loop": i, "sessions": n, "last_turn_ms_ago": since.as_millis() as u64 })
        })
        .collect();
    let oldest = since.iter().max().copied().unwrap_or_default();
    let mut body = serde_json::json!({
        "status": "ok",
        "node": shared.node.id,
        "sessions": sessions.iter().sum::<u64>(),
        "last_turn_ms_ago": oldest.as_millis() as u64,
        "loops": loops,
    });
    // A storage outage is detail, not ill health: calls still work and nothing is lost.
    if let Some(u) = t.uploads() {
        body["uploads"] = u.health();
    }
    let status = match shared.lifecycle.state() {
        State::Draining(began) => {
            let left = shared.lifecycle.drain_deadline().map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
            body["drain_remaining_ms"] = (left.as_millis() as u64).into();
            body["draining_for_ms"] = (now.saturating_duration_since(began).as_millis() as u64).into();
            "draining"
        }
        State::Stopping => "stopping",
        State::Running if oldest >= STALL => {
            let stalled: Vec<usize> = (0..since.len()).filter(|&i| since[i] >= STALL).collect();
            log::warn!("healthz: event loop(s) {stalled:?} have not turned for {} ms", oldest.as_millis());
            "stalled"
        }
        State::Running => "ok",
    };
    body["status"] = status.into();
    Reply::json(if status == "ok" { 200 } else { 503 }, body)
}

/// `POST /drain`: as SIGTERM (see `io::lifecycle`); 202 with what `/healthz` now says.
pub(super) fn drain(shared: &Shared) -> Reply {
    if shared.lifecycle.drain() {
        log::info!("POST /drain: draining");
    }
    let mut reply = health(shared);
    reply.status = 202;
    reply
}
