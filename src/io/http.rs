//! Signalling: tiny_http on a few threads. Parses and validates requests, builds each
//! session's `Rtc` (off the event loop), hands it to the loop over a channel, waits for the
//! loop's acknowledgement with a timeout, and answers.
//!
//! A few threads take requests from tiny_http. Requests that answer at once (the page,
//! `/healthz`, `/metrics`, preflights, errors) are answered there; the others (offers,
//! hang-ups, session listings) read a body or wait for the loop, so each gets a thread of its
//! own, at most [`MAX_IN_FLIGHT`] at a time (beyond that: 503). A slow or stuck client
//! therefore holds only its own thread, and only for a while: the whole body must arrive
//! within [`BODY_DEADLINE`], and a janitor closes (for reading) every connection that has
//! sent nothing for that long, within [`JANITOR_ROUND`]. That releases a read blocked on a
//! stalled body, an idle keep-alive connection, and a client that never finishes its
//! request headers (tiny_http's connection threads) alike.
//!
//! Beside this file: `health` (`/healthz`, `/drain`), `sessions` (hang-ups, listings, and how
//! a request asks the loops), `console` (the console's stats and the recordings), `forwarded` (client addresses behind proxies), `janitor`.
#![allow(clippy::disallowed_methods)] // the I/O shell reads the clock and owns its threads

use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tiny_http::{Header, Request, Response};

use super::api::{self, ApiError, Route, MAX_BODY};
mod console;
mod forwarded;
mod health;
mod janitor;
mod sessions;
use sessions::{ask_loop, engine_error};

use super::lifecycle::{Lifecycle, State};
use super::loops::{LoopHandle, Seats};
use super::Command;
use crate::config::name_template::NameFields;
use crate::telemetry::{Refusal, Telemetry};
use janitor::close_idle_connections;
use tapedeck_core::engine::{accept_offer, SessionId};

/// How long a request waits for the event loop before answering 504.
const LOOP_REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often idle signalling threads look at the stop flag.
const RECV_POLL: Duration = Duration::from_millis(100);
/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECS: u64 = 1;
/// Requests being served on threads of their own at once; more get 503 at once.
pub const MAX_IN_FLIGHT: usize = 256;
/// A request body must have arrived this long after the request did (else 408).
pub const BODY_DEADLINE: Duration = Duration::from_secs(5);
/// How often the janitor looks for idle connections.
const JANITOR_ROUND: Duration = Duration::from_millis(250);
/// How long browsers may cache a CORS preflight.
const PREFLIGHT_MAX_AGE: u32 = 600;

/// Who may use the API.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Required as `Authorization: Bearer <token>` on requests that change or list sessions.
    pub token: Option<crate::config::Token>,
    /// Origins (or `*`) whose pages may call the API from a browser.
    pub cors_origins: Vec<String>,
}

/// Where clients reach this daemon's sessions (`--node-id`, `--public-url`).
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub id: Option<String>,
    /// Without a trailing slash.
    pub public_url: Option<String>,
}

impl Node {
    /// A session's URL, as handed out (WHIP's `Location`): under the public URL if there is
    /// one, and under `/n/<node-id>` if there is one (see `api::route`).
    pub fn session_url(&self, id: SessionId) -> String {
        let base = self.public_url.as_deref().unwrap_or("");
        match &self.id {
            Some(node) => format!("{base}/n/{node}/sessions/{id}"),
            None => format!("{base}/sessions/{id}"),
        }
    }
}

/// What every signalling thread shares.
pub struct Shared {
    /// Every event loop; a new call goes to the one with a seat for it ([`Seats::take`]).
    pub loops: Vec<LoopHandle>,
    pub seats: Arc<Seats>,
    /// Draining or stopping: new offers get 503.
    pub lifecycle: Arc<Lifecycle>,
    pub node: Node,
    pub recordings: PathBuf,
    /// How recordings are named (`--name-template`).
    pub name_template: crate::config::NameTemplate,
    /// What calls are recorded to (`--format`): names the recording in the answer.
    pub format: tapedeck_core::media::recording::Format,
    pub telemetry: Arc<Telemetry>,
    pub access: Access,
    /// Offers are refused while the recorders are further behind than this.
    pub max_recorder_lag: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see [`forwarded::client_address`]).
    pub trusted_proxies: Vec<crate::config::Cidr>,
    /// How long a new session may wait for its first STUN check: a client refused for
    /// holding too many unconnected sessions is asked to wait this long (429 Retry-After),
    /// by when those it did not follow up have ended.
    pub stun_timeout: Duration,
    /// Recordings' waveforms for the console, computed on request.
    pub waveforms: crate::io::recordings::waveform::Cache,
}

/// The running signalling server.
pub struct Signalling {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Signalling {
    /// Starts `threads` threads serving `server`, and a janitor that puts timeouts on its
    /// connections.
    pub fn start(server: tiny_http::Server, threads: usize, shared: Shared) -> std::io::Result<Self> {
        let port = server.server_addr().to_ip().map(|a| a.port());
        let server = Arc::new(server);
        let shared = Arc::new(shared);
        let stop = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (server, shared, stop, in_flight) = (server.clone(), shared.clone(), stop.clone(), in_flight.clone());
            let h = std::thread::Builder::new().name(format!("http-{i}")).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match server.recv_timeout(RECV_POLL) {
                        Ok(Some(request)) => dispatch(request, &shared, &in_flight),
                        Ok(None) => {}
                        Err(e) => log::debug!("HTTP connection error: {e}"),
                    }
                }
            })?;
            handles.push(h);
        }
        if let Some(port) = port {
            let stop = stop.clone();
            let h = std::thread::Builder::new().name("http-janitor".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    close_idle_connections(port, BODY_DEADLINE);
                    std::thread::sleep(JANITOR_ROUND);
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

/// An answer, before it becomes a tiny_http response.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    headers: Vec<(&'static str, String)>,
    /// Sent instead of `body` when set: a file's bytes, and how many.
    stream: Option<(Box<dyn Read + Send>, u64)>,
}

impl Reply {
    fn new(status: u16, content_type: &'static str, body: String) -> Self {
        Reply { status, content_type, body, headers: Vec::new(), stream: None }
    }

    fn json(status: u16, value: serde_json::Value) -> Self {
        Reply::new(status, "application/json", value.to_string())
    }

    /// The error's status and JSON body, with `Retry-After` on refusals that pass (a
    /// refusal for too many unconnected sessions asks for `stun_timeout`, rounded up to whole
    /// seconds) and `WWW-Authenticate` on 401.
    fn error(e: &ApiError, stun_timeout: Duration) -> Self {
        let mut reply = Reply::new(e.status(), "application/json", e.body());
        match e {
            ApiError::Unavailable(_) | ApiError::Draining | ApiError::Full(_) | ApiError::Overloaded(_) => {
                reply.headers.push(("Retry-After", RETRY_AFTER_SECS.to_string()))
            }
            ApiError::TooManyConnecting(_) => {
                reply.headers.push(("Retry-After", whole_seconds(stun_timeout).to_string()))
            }
            ApiError::Unauthorized => reply.headers.push(("WWW-Authenticate", "Bearer realm=\"tapedeck\"".into())),
            _ => {}
        }
        reply
    }
}

/// `d` in whole seconds, rounded up, at least 1 (`Retry-After` takes whole seconds).
fn whole_seconds(d: Duration) -> u64 {
    u64::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u64::MAX).max(1)
}

/// The parts of a request every handler looks at.
struct Head {
    method: String,
    url: String,
    origin: Option<String>,
    authorization: Option<String>,
    content_type: Option<String>,
    range: Option<String>,
    cookie: Option<String>,
    /// The TCP peer (the client, or a reverse proxy in front of it).
    peer: Option<IpAddr>,
    /// Every `X-Forwarded-For` header, in order.
    forwarded_for: Vec<String>,
    arrived: Instant,
}

impl Head {
    fn of(request: &Request) -> Self {
        fn get_in(request: &Request, name: &'static str) -> Option<String> {
            request.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_string())
        }
        let get = |name| get_in(request, name);
        Head {
            method: request.method().to_string(),
            url: request.url().to_string(),
            origin: get("Origin"),
            authorization: get("Authorization"),
            content_type: get("Content-Type"),
            range: get("Range"),
            cookie: get("Cookie"),
            peer: request.remote_addr().map(|a| a.ip()),
            forwarded_for: request
                .headers()
                .iter()
                .filter(|h| h.field.equiv("X-Forwarded-For"))
                .map(|h| h.value.as_str().to_string())
                .collect(),
            arrived: Instant::now(),
        }
    }
}

fn dispatch(request: Request, shared: &Arc<Shared>, in_flight: &Arc<AtomicUsize>) {
    let head = Head::of(&request);
    let route = match api::route(&head.method, &head.url, shared.node.id.as_deref()) {
        Ok(route) => route,
        Err(e) => return finish(request, &head, shared, Err(e)),
    };
    if let Err(e) = authorize(&route, &head, shared) {
        return finish(request, &head, shared, Err(e));
    }
    match route {
        Route::Asset((content_type, body)) => {
            finish(request, &head, shared, Ok(Reply::new(200, content_type, body.to_string())))
        }
        Route::Health => finish(request, &head, shared, Ok(health::health(shared))),
        Route::Drain => finish(request, &head, shared, Ok(health::drain(shared))),
        Route::Metrics => {
            let body = shared.telemetry.prometheus();
            finish(request, &head, shared, Ok(Reply::new(200, "text/plain; version=0.0.4", body)))
        }
        Route::Preflight => finish(request, &head, shared, preflight(&head, shared)),
        route => {
            let Some(slot) = Slot::take(in_flight) else {
                let e = ApiError::Unavailable(format!("more than {MAX_IN_FLIGHT} requests in progress"));
                return finish(request, &head, shared, Err(e));
            };
            let shared = shared.clone();
            let builder = std::thread::Builder::new().name("http-request".into());
            if let Err(e) = spawn_holding(builder, slot, move || serve(request, head, route, &shared)) {
                // The request went down with the closure (tiny_http answers a request dropped
                // unanswered with an empty 500), and the slot with it.
                log::error!("cannot start a request thread: {e}");
            }
        }
    }
}

/// One of the [`MAX_IN_FLIGHT`] places for requests served on threads of their own, given
/// back when dropped: when the request is served, when its thread panics, and when its
/// thread cannot be started (the closure that holds it is dropped then), so no path leaks
/// one. (A count decremented at the end of the thread's work leaked a place per thread that
/// did not start or panicked: after 256, every request got 503.)
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slot {
    /// Takes a place, if fewer than [`MAX_IN_FLIGHT`] are taken.
    fn take(in_flight: &Arc<AtomicUsize>) -> Option<Slot> {
        if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(in_flight.clone()))
    }
}

/// Runs `work` on a thread of its own from `builder`, holding `slot` until the work is done.
fn spawn_holding(
    builder: std::thread::Builder,
    slot: Slot,
    work: impl FnOnce() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    builder.spawn(move || {
        let _slot = slot;
        work();
    })
}

fn serve(mut request: Request, head: Head, route: Route, shared: &Shared) {
    let result = match &route {
        Route::Offer => offer(&mut request, &head, shared, false),
        Route::Whip => offer(&mut request, &head, shared, true),
        Route::Hangup(id) => sessions::hangup(id, shared),
        Route::Sessions => sessions::sessions(None, shared),
        Route::Session(id) => match SessionId::parse(id) {
            Some(session) => sessions::sessions(Some(session), shared),
            None => Err(ApiError::UnknownSession(id.clone())),
        },
        Route::ConsoleStats => Ok(console::stats(shared)),
        Route::Recordings => console::list(&head.url, shared),
        Route::Recording(raw) => console::download(raw, head.range.as_deref(), shared),
        Route::Waveform(raw) => console::waveform(raw, shared),
        _ => Err(ApiError::NotFound),
    };
    if let (Route::Offer | Route::Whip, Err(e)) = (&route, &result) {
        shared.telemetry.refused(refusal(e));
    }
    finish(request, &head, shared, result)
}

/// Sends the reply (with CORS headers for allowed origins) and logs the outcome.
fn finish(request: Request, head: &Head, shared: &Shared, result: Result<Reply, ApiError>) {
    let (method, url) = (&head.method, &head.url);
    let reply = result.unwrap_or_else(|e| {
        let status = e.status();
        if status >= 500 {
            log::warn!("{method} {url}: {status} {e}");
        } else {
            log::info!("{method} {url}: {status} {e}");
        }
        Reply::error(&e, shared.stun_timeout)
    });
    log::debug!("{method} {url} -> {} in {:?}", reply.status, head.arrived.elapsed());
    let mut response = match reply.stream {
        Some((reader, len)) => {
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            Response::new(reply.status.into(), Vec::new(), reader, Some(len), None)
        }
        None => Response::from_string(reply.body).with_status_code(reply.status).boxed(),
    }
    .with_header(header("Content-Type", reply.content_type));
    for (name, value) in &reply.headers {
        response.add_header(header(name, value));
    }
    if let Some(allowed) = allowed_origin(head, shared) {
        response.add_header(header("Access-Control-Allow-Origin", &allowed));
        response.add_header(header("Access-Control-Expose-Headers", "Location, Retry-After"));
        response.add_header(header("Vary", "Origin"));
    }
    if let Err(e) = request.respond(response) {
        log::debug!("{method} {url}: the client left before the answer: {e}");
    }
}

fn authorize(route: &Route, head: &Head, shared: &Shared) -> Result<(), ApiError> {
    let Some(token) = &shared.access.token else { return Ok(()) };
    if !route.needs_token() {
        return Ok(());
    }
    let mut presented = api::bearer(head.authorization.as_deref()).map(str::to_owned);
    // An <audio> element cannot send a header: the console's player sends the token as a
    // cookie, taken for downloads only (reading, never changing anything).
    if presented.is_none() && matches!(route, Route::Recording(_)) {
        presented = console::token_cookie(head.cookie.as_deref());
    }
    if token.matches(presented.as_deref().unwrap_or("")) {
        Ok(())
    } else {
        if matches!(route, Route::Offer | Route::Whip) {
            shared.telemetry.refused(Refusal::Unauthorized);
        }
        Err(ApiError::Unauthorized)
    }
}

/// The `Access-Control-Allow-Origin` value for this request, if its origin is allowed.
fn allowed_origin(head: &Head, shared: &Shared) -> Option<String> {
    let origin = head.origin.as_deref()?;
    let list = &shared.access.cors_origins;
    if list.iter().any(|o| o == "*") {
        Some("*".into())
    } else {
        list.iter().any(|o| o.eq_ignore_ascii_case(origin)).then(|| origin.to_string())
    }
}

fn preflight(head: &Head, shared: &Shared) -> Result<Reply, ApiError> {
    if let Some(origin) = &head.origin {
        if allowed_origin(head, shared).is_none() {
            return Err(ApiError::Forbidden(format!("origin {origin} is not allowed (see --cors-origin)")));
        }
    }
    let methods = "GET, POST, DELETE, OPTIONS";
    Ok(Reply {
        status: 204,
        content_type: "text/plain",
        body: String::new(),
        stream: None,
        headers: vec![
            ("Allow", methods.into()),
            ("Access-Control-Allow-Methods", methods.into()),
            ("Access-Control-Allow-Headers", "Authorization, Content-Type".into()),
            ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE.to_string()),
        ],
    })
}

fn offer(request: &mut Request, head: &Head, shared: &Shared, whip: bool) -> Result<Reply, ApiError> {
    let sdp = if whip {
        api::check_type(head.content_type.as_deref(), "application/sdp")?;
        api::parse_whip_offer(&read_body(request, head.arrived)?)?
    } else {
        api::check_json_type(head.content_type.as_deref())?;
        api::parse_offer(&read_body(request, head.arrived)?)?
    };
    match shared.lifecycle.state() {
        State::Running => {}
        State::Draining(_) => return Err(ApiError::Draining),
        State::Stopping => return Err(ApiError::Unavailable("shutting down".into())),
    }
    let lag = shared.telemetry.recorder_lag();
    if lag > shared.max_recorder_lag {
        return Err(ApiError::Overloaded(lag));
    }
    let seat = shared.seats.take().ok_or(ApiError::Full(shared.seats.max()))?;
    let handle = &shared.loops[seat.loop_index];
    let id = SessionId::from_uuid(uuid::Uuid::new_v4());
    let now = Instant::now();
    let client = head.peer.map(|peer| forwarded::client_address(peer, &head.forwarded_for, &shared.trusted_proxies));
    let scope = id.log_scope();
    let mut accepted = match accept_offer(&sdp, &handle.params, id, now) {
        Ok(accepted) => accepted,
        Err(e) => {
            shared.seats.release(seat.loop_index);
            return Err(e.into());
        }
    };
    drop(scope);
    accepted.client = client;
    let answer = accepted.answer.clone();
    let start = crate::logging::file_stamp(SystemTime::now());
    let label = api::query_param(&head.url, "label");
    let session = id.to_string();
    let fields =
        NameFields { session: &session, start: &start, node: shared.node.id.as_deref(), label: label.as_deref() };
    let stem = shared.name_template.render(&fields);
    let names: Vec<String> = shared.format.extensions().iter().map(|ext| format!("{stem}.{ext}")).collect();
    let name = names[0].clone();
    let recording = shared.recordings.join(&name);
    // Once the loop has the command, the loop gives the seat back (when the call ends, or
    // at once if its engine refuses it); if it never got it, the seat is given back here.
    let asked = ask_loop(handle, |reply| Command::Offer { accepted: Box::new(accepted), recording, reply });
    if let Err(ApiError::Unavailable(_)) = &asked {
        shared.seats.release(seat.loop_index);
    }
    asked?.map_err(engine_error)?;
    shared.telemetry.offers_accepted.fetch_add(1, Ordering::Relaxed);
    let how = if whip { "WHIP" } else { "offer" };
    let _scope = id.log_scope();
    log::info!("answered ({how}) on loop {}; recording will be {name}", seat.loop_index);
    // Addresses only at debug (the log file has them; the console does not).
    log::debug!("answered ({how}) client {}, TCP peer {}", shown(client), shown(head.peer));
    if whip {
        let mut reply = Reply::new(201, "application/sdp", answer);
        reply.headers.push(("Location", shared.node.session_url(id)));
        return Ok(reply);
    }
    let body = serde_json::json!({
        "type": "answer",
        "sdp": answer,
        "session": id.to_string(),
        "location": shared.node.session_url(id),
        "recording": name,
        "recordings": names,
    });
    Ok(Reply::json(200, body))
}

fn shown(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

fn refusal(e: &ApiError) -> Refusal {
    match e {
        ApiError::Unauthorized => Refusal::Unauthorized,
        ApiError::TooLarge => Refusal::TooLarge,
        ApiError::UnsupportedType { .. } => Refusal::UnsupportedType,
        ApiError::Full(_) => Refusal::Full,
        ApiError::TooManyConnecting(_) => Refusal::TooManyConnecting,
        ApiError::Overloaded(_) => Refusal::Overloaded,
        ApiError::Unavailable(_) => Refusal::ShuttingDown,
        ApiError::Draining => Refusal::Draining,
        ApiError::Timeout | ApiError::RequestTimeout => Refusal::Timeout,
        ApiError::Internal(_) => Refusal::Internal,
        _ => Refusal::BadRequest,
    }
}

/// Reads the body: at most `MAX_BODY` bytes (else 413), complete by `BODY_DEADLINE` after
/// the request arrived (else 408; a client trickling bytes is cut off at its next read).
fn read_body(request: &mut Request, arrived: Instant) -> Result<Vec<u8>, ApiError> {
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(ApiError::TooLarge);
    }
    let mut body = Vec::new();
    let mut reader = request.as_reader().take(MAX_BODY as u64 + 1);
    let mut chunk = [0u8; 4096];
    loop {
        if arrived.elapsed() > BODY_DEADLINE {
            return Err(ApiError::RequestTimeout);
        }
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ApiError::BadRequest(format!("cannot read the body: {e}"))),
        }
    }
    if body.len() > MAX_BODY {
        return Err(ApiError::TooLarge);
    }
    if request.body_length().is_some_and(|n| body.len() < n) {
        // The connection was closed for reading: by the client, or by the janitor when it
        // had sent nothing for the deadline.
        return Err(ApiError::RequestTimeout);
    }
    Ok(body)
}

fn header(name: &str, value: &str) -> Header {
    // Names are constants; values are ASCII we made (numbers, ids, origins from our own
    // allowlist), which tiny_http accepts.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|()| {
        Header::from_bytes(name.as_bytes(), &b""[..]).expect("an ASCII header name with an empty value")
    })
}

#[cfg(test)]
mod tests;
