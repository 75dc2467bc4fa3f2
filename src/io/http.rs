//! Signalling: tiny_http on a few threads. Parses and validates requests, builds each
//! session's `Rtc` (off the event loop), hands it to the loop over a channel, waits for the
//! loop's acknowledgement with a timeout, and answers.
#![allow(clippy::disallowed_methods)] // the I/O shell reads the clock and owns its threads

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use tiny_http::{Header, Request, Response};

use super::api::{self, ApiError, Route, MAX_BODY};
use super::Command;
use crate::engine::{accept_offer, EngineError, OfferParams, SessionId};

/// How long a request waits for the event loop before answering 504.
const LOOP_REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often idle signalling threads look at the stop flag.
const RECV_POLL: Duration = Duration::from_millis(100);
/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECS: u32 = 1;

/// What every signalling thread shares.
pub struct Shared {
    pub params: OfferParams,
    pub commands: Sender<Command>,
    pub waker: Arc<mio::Waker>,
    /// Set at SIGINT/SIGTERM: new offers get 503.
    pub shutting_down: Arc<AtomicBool>,
    pub recordings: PathBuf,
}

/// The running signalling server.
pub struct Signalling {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Signalling {
    /// Starts `threads` threads serving `server`.
    pub fn start(server: tiny_http::Server, threads: usize, shared: Shared) -> std::io::Result<Self> {
        let server = Arc::new(server);
        let shared = Arc::new(shared);
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (server, shared, stop) = (server.clone(), shared.clone(), stop.clone());
            let h = std::thread::Builder::new().name(format!("http-{i}")).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match server.recv_timeout(RECV_POLL) {
                        Ok(Some(request)) => serve(request, &shared),
                        Ok(None) => {}
                        Err(e) => log::debug!("HTTP connection error: {e}"),
                    }
                }
            })?;
            handles.push(h);
        }
        Ok(Signalling { stop, handles })
    }

    /// Stops every signalling thread and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

fn serve(mut request: Request, shared: &Shared) {
    let method = request.method().to_string();
    let url = request.url().to_string();
    let started = Instant::now();
    let result = match api::route(&method, &url) {
        Ok(Route::Asset((content_type, body))) => {
            let response = Response::from_string(body).with_header(header("Content-Type", content_type));
            if let Err(e) = request.respond(response) {
                log::debug!("{method} {url}: the client left before the answer: {e}");
            }
            return;
        }
        Ok(Route::Offer) => offer(&mut request, shared),
        Ok(Route::Session(id)) => hangup(&id, shared),
        Err(e) => Err(e),
    };
    let (status, body, retry) = match result {
        Ok(body) => (200, body, false),
        Err(e) => {
            let status = e.status();
            if status >= 500 {
                log::warn!("{method} {url}: {status} {e}");
            } else {
                log::info!("{method} {url}: {status} {e}");
            }
            (status, e.body(), status == 503)
        }
    };
    log::debug!("{method} {url} -> {status} in {:?}", started.elapsed());
    let mut response = Response::from_string(body).with_status_code(status).with_header(json_header());
    if retry {
        response.add_header(header("Retry-After", &RETRY_AFTER_SECS.to_string()));
    }
    if let Err(e) = request.respond(response) {
        log::debug!("{method} {url}: the client left before the answer: {e}");
    }
}

fn offer(request: &mut Request, shared: &Shared) -> Result<String, ApiError> {
    let content_type =
        request.headers().iter().find(|h| h.field.equiv("Content-Type")).map(|h| h.value.as_str().to_string());
    api::check_json_type(content_type.as_deref())?;
    let body = read_body(request)?;
    let sdp = api::parse_offer(&body)?;
    if shared.shutting_down.load(Ordering::Relaxed) {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    let id = SessionId::from_uuid(uuid::Uuid::new_v4());
    let now = Instant::now();
    let accepted = crate::logging::with_session(id, || accept_offer(&sdp, &shared.params, id, now))?;
    let answer = accepted.answer.clone();
    let name = format!("{id}_{}.wav", crate::logging::file_stamp(SystemTime::now()));
    let recording = shared.recordings.join(&name);
    let (reply, wait) = bounded(1);
    ask_loop(shared, Command::Offer { accepted: Box::new(accepted), recording, reply })?;
    match wait.recv_timeout(LOOP_REPLY_TIMEOUT) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(engine_error(e)),
        Err(e) => return Err(no_reply(e)),
    }
    crate::logging::with_session(id, || log::info!("answered; recording will be {name}"));
    Ok(serde_json::json!({ "type": "answer", "sdp": answer, "session": id.to_string(), "recording": name }).to_string())
}

fn hangup(id: &str, shared: &Shared) -> Result<String, ApiError> {
    let session = SessionId::parse(id).ok_or_else(|| ApiError::UnknownSession(id.to_string()))?;
    let (reply, wait) = bounded(1);
    ask_loop(shared, Command::Hangup { session, reply })?;
    match wait.recv_timeout(LOOP_REPLY_TIMEOUT) {
        Ok(Ok(())) => Ok(serde_json::json!({ "session": id, "ended": true }).to_string()),
        Ok(Err(e)) => Err(engine_error(e)),
        Err(e) => Err(no_reply(e)),
    }
}

fn ask_loop(shared: &Shared, command: Command) -> Result<(), ApiError> {
    shared.commands.send(command).map_err(|_| ApiError::Unavailable("shutting down".into()))?;
    shared.waker.wake().map_err(|e| ApiError::Internal(format!("cannot wake the event loop: {e}")))
}

/// The loop did not reply: 504 if it is just slow, 503 if it has stopped (shutdown).
fn no_reply(e: RecvTimeoutError) -> ApiError {
    match e {
        RecvTimeoutError::Timeout => ApiError::Timeout,
        RecvTimeoutError::Disconnected => ApiError::Unavailable("shutting down".into()),
    }
}

fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::UnknownSession(id) => ApiError::UnknownSession(id.to_string()),
        EngineError::Full(_) | EngineError::ShuttingDown => ApiError::Unavailable(e.to_string()),
        EngineError::DuplicateSession(_) => ApiError::Internal(e.to_string()),
    }
}

fn read_body(request: &mut Request) -> Result<Vec<u8>, ApiError> {
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(ApiError::TooLarge);
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(ApiError::TooLarge);
    }
    Ok(body)
}

fn json_header() -> Header {
    header("Content-Type", "application/json")
}

fn header(name: &str, value: &str) -> Header {
    // Both are ASCII constants or numbers, which tiny_http always accepts.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}
