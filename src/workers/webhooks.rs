//! Webhooks (`--webhook URL`, `--webhook-secret`): `call.started`, `call.ended` and
//! `recording.finished` POSTed as JSON, signed the Standard Webhooks way
//! (<https://www.standardwebhooks.com>): headers `webhook-id`, `webhook-timestamp` (Unix
//! seconds) and `webhook-signature` = `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")),
//! where the key is the secret's bytes after `whsec_`, base64-decoded (or the secret itself
//! if it has no such prefix).
//!
//! One thread per URL, each with its own queue, so a receiver that is down or hangs holds up
//! only its own events; nothing here runs on an event loop or a recorder (they only queue an
//! event). A delivery is retried, with the same id and body, after 0.5, 1, 2, 4 ... s (at
//! most [`MAX_ATTEMPTS`] tries, about four minutes), until the receiver answers 2xx.
#![allow(clippy::disallowed_methods)] // a worker: its own threads and clock

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use crossbeam_channel::{unbounded, Receiver, Sender};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Tries per event and URL.
pub const MAX_ATTEMPTS: u32 = 10;
/// The wait before the first retry; it doubles each time, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long one POST may take, connection included.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// At shutdown, how long queued events may still take to go out.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// An event to deliver.
#[derive(Debug, Clone)]
pub struct Event {
    /// `msg_<uuid>`: the same on every retry, so receivers can drop duplicates.
    pub id: String,
    pub kind: &'static str,
    pub data: serde_json::Value,
    /// For `recording.finished`: the file, whose size and SHA-256 are added to `data` by
    /// the delivering thread (reading the file is not the recorder's job).
    pub file: Option<PathBuf>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub given_up: AtomicU64,
}

/// The webhook threads; cloneable handle [`Webhooks::queue`] for everyone else.
pub struct Webhooks {
    queues: Vec<Sender<Event>>,
    handles: Vec<JoinHandle<()>>,
    /// Set by [`Webhooks::finish`]: retries stop [`SHUTDOWN_GRACE`] later.
    closing: Arc<OnceLock<Instant>>,
    pub stats: Arc<WebhookStats>,
}

/// What the loops and recorders hold: queues an event for every URL.
#[derive(Clone, Default)]
pub struct WebhookQueue {
    queues: Vec<Sender<Event>>,
}

impl WebhookQueue {
    /// Queues `kind` with the data `data` makes for every URL; without a URL, `data` is not
    /// even called (the loops call this for every call that starts and ends).
    pub fn send(&self, kind: &'static str, data: impl FnOnce() -> serde_json::Value, file: Option<PathBuf>) {
        if self.queues.is_empty() {
            return;
        }
        let event = Event { id: format!("msg_{}", uuid::Uuid::new_v4().simple()), kind, data: data(), file };
        for q in &self.queues {
            let _ = q.send(event.clone());
        }
    }
}

impl Webhooks {
    /// A thread per URL, signing with `secret`.
    pub fn spawn(urls: &[String], secret: &str, node: Option<String>) -> std::io::Result<Self> {
        let key = signing_key(secret);
        let stats = Arc::new(WebhookStats::default());
        let closing = Arc::new(OnceLock::new());
        let mut queues = Vec::new();
        let mut handles = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let (tx, rx) = unbounded();
            let (url, key, stats, node, closing) =
                (url.clone(), key.clone(), stats.clone(), node.clone(), closing.clone());
            let thread = std::thread::Builder::new().name(format!("webhook-{i}"));
            handles.push(thread.spawn(move || {
                let target = Target { url, key, node, closing };
                deliver_all(&target, &rx, &stats)
            })?);
            queues.push(tx);
        }
        Ok(Webhooks { queues, handles, closing, stats })
    }

    pub fn queue(&self) -> WebhookQueue {
        WebhookQueue { queues: self.queues.clone() }
    }

    /// Lets the threads deliver what is queued (each stops retrying after
    /// [`SHUTDOWN_GRACE`]) and waits for them.
    pub fn finish(self) {
        let _ = self.closing.set(Instant::now());
        drop(self.queues);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// The HMAC key of a Standard Webhooks secret.
fn signing_key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => {
            base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_else(|_| secret.as_bytes().to_vec())
        }
        None => secret.as_bytes().to_vec(),
    }
}

/// `v1,<base64 signature>` of one delivery.
pub fn signature(key: &[u8], id: &str, timestamp: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Where one thread delivers.
struct Target {
    url: String,
    key: Vec<u8>,
    node: Option<String>,
    closing: Arc<OnceLock<Instant>>,
}

impl Target {
    /// The daemon stopped more than [`SHUTDOWN_GRACE`] ago: no more tries.
    fn out_of_time(&self) -> bool {
        self.closing.get().is_some_and(|t| t.elapsed() > SHUTDOWN_GRACE)
    }

    /// Sleeps `d`, or less if the daemon runs out of time meanwhile.
    fn wait(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.out_of_time() {
            std::thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(100)));
        }
    }
}

fn deliver_all(t: &Target, rx: &Receiver<Event>, stats: &WebhookStats) {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(POST_TIMEOUT)).http_status_as_error(false).build().into();
    let url = &t.url;
    while let Ok(event) = rx.recv() {
        let body = body_of(event.clone(), &t.node);
        // Log lines about an event name its session, as every line about a session does.
        let parsed = event.data["session"].as_str().and_then(tapedeck_core::engine::SessionId::parse);
        let _scope = parsed.map(|id| id.log_scope());
        let mut wait = FIRST_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            let timestamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let sent = agent
                .post(url)
                .header("webhook-id", &event.id)
                .header("webhook-timestamp", &timestamp.to_string())
                .header("webhook-signature", &signature(&t.key, &event.id, timestamp, &body))
                .content_type("application/json")
                .send(body.as_bytes());
            match sent {
                Ok(r) if r.status().is_success() => {
                    stats.delivered.fetch_add(1, Relaxed);
                    log::debug!("webhook {} {} delivered to {url} (try {attempt})", event.kind, event.id);
                    break;
                }
                Ok(r) => {
                    log::warn!("webhook {} {} to {url}: HTTP {} (try {attempt})", event.kind, event.id, r.status())
                }
                Err(e) => log::warn!("webhook {} {} to {url}: {e} (try {attempt})", event.kind, event.id),
            }
            stats.failed_attempts.fetch_add(1, Relaxed);
            if attempt == MAX_ATTEMPTS || t.out_of_time() {
                stats.given_up.fetch_add(1, Relaxed);
                log::error!("webhook {} {} to {url}: given up after {attempt} tries", event.kind, event.id);
                break;
            }
            t.wait(wait);
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }
}

/// The JSON body: `{"type", "timestamp", "data"}`; for a finished recording, `data` gains the
/// file's `bytes` and `sha256`.
fn body_of(mut event: Event, node: &Option<String>) -> String {
    if let Some(path) = &event.file {
        match std::fs::read(path) {
            Ok(bytes) => {
                event.data["bytes"] = (bytes.len() as u64).into();
                event.data["sha256"] = hex(&Sha256::digest(&bytes)).into();
            }
            Err(e) => event.data["file_error"] = e.to_string().into(),
        }
    }
    event.data["node"] = node.clone().into();
    serde_json::json!({
        "type": event.kind,
        "timestamp": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        "data": event.data,
    })
    .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example: secret, id, timestamp and body
    /// give this signature.
    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
