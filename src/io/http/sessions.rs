//! The requests the event loops answer (hang-ups, session listings) and how a request asks
//! one loop, or all of them, with a bounded wait.

use std::time::Instant;

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};

use super::{Reply, Shared, LOOP_REPLY_TIMEOUT};
use crate::io::api::ApiError;
use crate::io::loops::LoopHandle;
use crate::io::Command;
use tapedeck_core::engine::{EngineError, SessionId, SessionInfo};
use tapedeck_core::media::SAMPLE_RATE_HZ;

/// `DELETE /sessions/{id}`: the loop that holds the session ends it.
pub(super) fn hangup(id: &str, shared: &Shared) -> Result<Reply, ApiError> {
    let session = SessionId::parse(id).ok_or_else(|| ApiError::UnknownSession(id.to_string()))?;
    let mut unknown = ApiError::UnknownSession(id.to_string());
    for answer in ask_every_loop(shared, |reply| Command::Hangup { session, reply }) {
        match answer {
            Ok(Ok(())) => return Ok(Reply::json(200, serde_json::json!({ "session": id, "ended": true }))),
            Ok(Err(EngineError::UnknownSession(_))) => {}
            Ok(Err(e)) => unknown = engine_error(e),
            Err(e) => unknown = e,
        }
    }
    Err(unknown)
}

/// `GET /sessions` (all, from every loop) or `GET /sessions/{id}` (one, or 404).
pub(super) fn sessions(one: Option<SessionId>, shared: &Shared) -> Result<Reply, ApiError> {
    let mut infos = Vec::new();
    for (i, answer) in ask_every_loop(shared, |reply| Command::Sessions { session: one, reply }).into_iter().enumerate()
    {
        infos.extend(answer?.into_iter().map(|info| (i, info)));
    }
    let now = Instant::now();
    let views: Vec<serde_json::Value> = infos.iter().map(|(i, s)| session_json(s, *i, shared, now)).collect();
    match one {
        Some(id) => {
            views.into_iter().next().map(|v| Reply::json(200, v)).ok_or(ApiError::UnknownSession(id.to_string()))
        }
        None => Ok(Reply::json(200, serde_json::json!({ "count": views.len(), "sessions": views }))),
    }
}

fn session_json(s: &SessionInfo, loop_index: usize, shared: &Shared, now: Instant) -> serde_json::Value {
    let t = &shared.telemetry;
    let rfc3339 = |at: Instant| humantime::format_rfc3339_millis(t.wall(at)).to_string();
    let recording = t.recording(s.id);
    let (lost, received) = recording.as_ref().map_or((0, 0), |r| (r.lost, r.packets));
    let loss = if lost + received == 0 { 0.0 } else { lost as f64 / (lost + received) as f64 };
    let c = &s.counters;
    serde_json::json!({
        "id": s.id.to_string(),
        "location": shared.node.session_url(s.id),
        "loop": loop_index,
        "state": s.state.as_str(),
        "created": rfc3339(s.created),
        "started": s.connected_at.map(rfc3339),
        "duration_s": s.connected_at.map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64()),
        "packets_in": c.media_in,
        "packets_out": c.media_out,
        "datagrams_in": c.datagrams_in,
        "datagrams_out": c.datagrams_out,
        "bytes_in": c.bytes_in,
        "bytes_out": c.bytes_out,
        "lost": lost,
        "loss": loss,
        "concealed_ms": recording.as_ref().map_or(0, |r| r.concealed_samples / 48),
        "level_dbfs": recording.as_ref().and_then(|r| r.level_dbfs),
        // Addresses are personal data: shown only to those who hold the token.
        "client": s.client.filter(|_| shared.access.token.is_some()).map(|ip| ip.to_string()),
        "recording": recording.as_ref().map(|r| serde_json::json!({
            "path": r.path.display().to_string(),
            "seconds": r.samples as f64 / f64::from(SAMPLE_RATE_HZ),
            "late_packets": r.late,
            "reanchors": r.reanchors,
            "drift_ms": r.drift_ms,
            "clock_ppm": r.clock_ppm,
            "error": r.error,
        })),
    })
}

/// Hands a loop a command carrying a reply channel, and waits (bounded) for the reply.
pub(super) fn ask_loop<T>(handle: &LoopHandle, command: impl FnOnce(Sender<T>) -> Command) -> Result<T, ApiError> {
    let (reply, wait) = bounded(1);
    handle.commands.send(command(reply)).map_err(|_| ApiError::Unavailable("shutting down".into()))?;
    handle.waker.wake().map_err(|e| ApiError::Internal(format!("cannot wake the event loop: {e}")))?;
    wait.recv_timeout(LOOP_REPLY_TIMEOUT).map_err(no_reply)
}

/// Hands every loop the command, then waits (bounded, all together) for each reply, in the
/// loops' order.
fn ask_every_loop<T>(shared: &Shared, command: impl Fn(Sender<T>) -> Command) -> Vec<Result<T, ApiError>> {
    let waits: Vec<Result<crossbeam_channel::Receiver<T>, ApiError>> = shared
        .loops
        .iter()
        .map(|handle| {
            let (reply, wait) = bounded(1);
            handle.commands.send(command(reply)).map_err(|_| ApiError::Unavailable("shutting down".into()))?;
            handle.waker.wake().map_err(|e| ApiError::Internal(format!("cannot wake the event loop: {e}")))?;
            Ok(wait)
        })
        .collect();
    let deadline = Instant::now() + LOOP_REPLY_TIMEOUT;
    waits.into_iter().map(|wait| wait?.recv_deadline(deadline).map_err(no_reply)).collect()
}

/// The loop did not reply: 504 if it is just slow, 503 if it has stopped (shutdown).
fn no_reply(e: RecvTimeoutError) -> ApiError {
    match e {
        RecvTimeoutError::Timeout => ApiError::Timeout,
        RecvTimeoutError::Disconnected => ApiError::Unavailable("shutting down".into()),
    }
}

pub(super) fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::UnknownSession(id) => ApiError::UnknownSession(id.to_string()),
        EngineError::Full(n) => ApiError::Full(n),
        EngineError::ShuttingDown => ApiError::Unavailable(e.to_string()),
        EngineError::DuplicateSession(_) => ApiError::Internal(e.to_string()),
        EngineError::TooManyConnecting(..) => ApiError::TooManyConnecting(e.to_string()),
    }
}
