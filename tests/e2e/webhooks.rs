//! Webhooks: receivers on 127.0.0.1 get `call.started`, `call.ended` and
//! `recording.finished`, each signed the Standard Webhooks way (checked here with HMAC-SHA256
//! independently of the daemon's code); a receiver that fails gets the same event again
//! until it takes it; one that hangs holds up neither the calls nor the other receivers.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tapedeck_tools::{call, CallPlan};

const KEY: &[u8] = b"a test key of 24 bytes!!";

pub(crate) fn secret() -> String {
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(KEY))
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) id: String,
    timestamp: String,
    signature: String,
    pub(crate) body: String,
}

impl Delivery {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    /// Whether the signature is HMAC-SHA256 of "id.timestamp.body" with the key.
    pub(crate) fn signed(&self) -> bool {
        let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
        mac.update(format!("{}.{}.{}", self.id, self.timestamp, self.body).as_bytes());
        let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
        self.signature.split(' ').any(|s| s == expected)
    }
}

/// How a receiver answers.
#[derive(Clone, Copy)]
pub(crate) enum Mode {
    Ok,
    /// 500 to the first N requests.
    FailFirst(usize),
    /// Reads the request and answers nothing for 20 s.
    Hang,
}

/// An HTTP receiver on 127.0.0.1: every request it got, in order (the upload tests use it too).
pub(crate) struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub(crate) fn start(mode: Mode) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let seen = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(1000) {
                let Ok(mut stream) = stream else { return };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let Some(delivery) = read_request(&mut stream) else { return };
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(delivery);
                        seen.len()
                    };
                    let status = match mode {
                        Mode::Ok => "204 No Content",
                        Mode::FailFirst(k) if n <= k => "500 Internal Server Error",
                        Mode::FailFirst(_) => "204 No Content",
                        Mode::Hang => {
                            std::thread::sleep(Duration::from_secs(20));
                            return;
                        }
                    };
                    let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                });
            }
        });
        Receiver { addr, got }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hooks/tapedeck", self.addr)
    }

    pub(crate) fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (bounded) until a delivery of each of `kinds` came.
    pub(crate) fn wait_for(&self, kinds: &[&str], limit: Duration) -> Vec<Delivery> {
        let start = Instant::now();
        loop {
            let got = self.deliveries();
            if kinds.iter().all(|k| got.iter().any(|d| d.json()["type"] == *k)) {
                return got;
            }
            assert!(start.elapsed() < limit, "wanted {kinds:?}, got {got:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Delivery> {
    let mut reader = BufReader::new(stream);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    let header = |name: &str| {
        headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let len: usize = header("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Delivery {
        id: header("webhook-id")?,
        timestamp: header("webhook-timestamp")?,
        signature: header("webhook-signature")?,
        body: String::from_utf8(body).ok()?,
    })
}

#[test]
fn calls_and_finished_recordings_are_announced_signed() {
    let receiver = Receiver::start(Mode::Ok);
    let daemon =
        common::Daemon::start(&["--node-id", "n7", "--webhook", &receiver.url(), "--webhook-secret", &secret()]);
    let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_secs(2)));
    assert_eq!(report.error, None);
    let got = receiver.wait_for(&["call.started", "call.ended", "recording.finished"], Duration::from_secs(10));
    let session = report.session.clone().unwrap();
    for d in &got {
        assert!(d.signed(), "a signature that does not verify: {d:?}");
        assert!(d.id.starts_with("msg_"), "{d:?}");
        let age = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            - d.timestamp.parse::<u64>().unwrap();
        assert!(age < 30, "webhook-timestamp is {age} s old");
        assert_eq!(d.json()["data"]["session"], session.as_str(), "{d:?}");
        assert_eq!(d.json()["data"]["node"], "n7", "{d:?}");
    }
    let finished = got.iter().find(|d| d.json()["type"] == "recording.finished").unwrap().json();
    let data = &finished["data"];
    let name = report.recording.as_deref().unwrap();
    assert_eq!(data["file"], name);
    assert_eq!(data["format"], "wav");
    assert_eq!(data["end_reason"], "hang-up");
    let bytes = std::fs::read(daemon.recording(name)).unwrap();
    assert_eq!(data["bytes"], bytes.len() as u64);
    let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(data["sha256"], sha.as_str(), "the event's SHA-256 is not the file's");
    assert_eq!(data["samples"].as_u64().unwrap(), (bytes.len() as u64 - 44) / 2, "{data}");
    for key in ["duration_s", "packets", "lost", "concealed_packets", "concealed_ms", "drift_ms", "late"] {
        assert!(data[key].is_number(), "{key} missing: {data}");
    }
}

#[test]
fn a_receiver_that_fails_three_times_gets_the_same_event_on_the_fourth() {
    let receiver = Receiver::start(Mode::FailFirst(3));
    let daemon = common::Daemon::start(&["--webhook", &receiver.url(), "--webhook-secret", &secret()]);
    let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_secs(1)));
    assert_eq!(report.error, None);
    // Retries after 0.5, 1 and 2 s: the first event's fourth try about 3.5 s after the first.
    let got = receiver.wait_for(&["call.started", "call.ended", "recording.finished"], Duration::from_secs(20));
    let first = &got[0];
    let tries: Vec<&Delivery> = got.iter().filter(|d| d.id == first.id).collect();
    assert!(tries.len() >= 4, "the failed event was tried {} times", tries.len());
    assert!(tries.iter().all(|d| d.body == first.body && d.signed()), "a retry changed the event: {tries:?}");
    let text = tapedeck_tools::http::request(daemon.http, "GET", "/metrics", None, b"", Duration::from_secs(5))
        .unwrap()
        .text();
    assert_eq!(common::metric(&text, "tapedeck_webhooks_failed_attempts_total"), 3.0, "{text}");
    assert!(common::metric(&text, "tapedeck_webhooks_delivered_total") >= 1.0, "{text}");
    assert_eq!(common::metric(&text, "tapedeck_webhooks_given_up_total"), 0.0);
}

#[test]
fn a_receiver_that_hangs_holds_up_neither_the_calls_nor_the_other_receiver() {
    let hanging = Receiver::start(Mode::Hang);
    let good = Receiver::start(Mode::Ok);
    let daemon =
        common::Daemon::start(&["--webhook", &hanging.url(), "--webhook", &good.url(), "--webhook-secret", &secret()]);
    for _ in 0..2 {
        let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_secs(2)));
        assert_eq!(report.error, None);
        let answered = report.answered_at.unwrap() - report.offered_at.unwrap();
        assert!(answered < Duration::from_secs(1), "the answer took {answered:?}");
        let (samples, call_len) = daemon.recorded(&report);
        let wav_len = samples.len() as f64 / 48_000.0;
        assert!((wav_len - call_len).abs() <= 0.06, "WAV {wav_len:.3} s for a {call_len:.3} s call");
    }
    let got = good.wait_for(&["call.started", "call.ended", "recording.finished"], Duration::from_secs(5));
    let finished = got.iter().filter(|d| d.json()["type"] == "recording.finished").count();
    let start = Instant::now();
    while good.deliveries().iter().filter(|d| d.json()["type"] == "recording.finished").count() < 2 {
        assert!(start.elapsed() < Duration::from_secs(5), "the good receiver got {finished} of 2 recordings");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stuck = hanging.deliveries();
    assert!(stuck.iter().all(|d| d.id == stuck[0].id), "the hanging receiver is past its first event: {stuck:?}");
}
