//! Uploads to object storage (`--upload`), against a real S3 server (moto on 127.0.0.1): a
//! finished recording arrives under the prefix with the same bytes and is announced once,
//! signed, with its key; an endpoint that is down delays no call and loses no file; a daemon
//! killed with uploads pending resumes them from the journal; a bucket that refuses writes
//! keeps the file and says why in the log and `/healthz`.

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tapedeck_tools::{call, CallPlan};

use crate::common::s3::{free_port, upload_flags, Moto};
use crate::common::{self, Daemon};
use crate::webhooks::{secret, Mode, Receiver};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn start(port: u16, bucket: &str, extra: &[&str]) -> Daemon {
    start_in(tempfile::tempdir().unwrap(), port, bucket, extra)
}

fn start_in(dir: tempfile::TempDir, port: u16, bucket: &str, extra: &[&str]) -> Daemon {
    let mut args = upload_flags(port, bucket, "rec");
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::start_with(dir, None, &args)
}

/// A call of `secs` seconds that went well, answered at once; the recording's name and
/// the session.
fn place_call(daemon: &Daemon, secs: u64) -> (String, String) {
    let report = call_report(daemon, secs);
    (report.recording.clone().unwrap(), report.session.clone().unwrap())
}

fn call_report(daemon: &Daemon, secs: u64) -> tapedeck_tools::CallReport {
    let report = call(&CallPlan::tone(daemon.http, 440.0, Duration::from_secs(secs)));
    assert_eq!(report.error, None);
    let answered = report.answered_at.unwrap() - report.offered_at.unwrap();
    assert!(answered < Duration::from_secs(1), "the answer took {answered:?}");
    report
}

fn journal_entry(daemon: &Daemon, name: &str) -> PathBuf {
    daemon.recordings_dir().join(".uploads").join(format!("{name}.json"))
}

fn get(daemon: &Daemon, path: &str) -> (u16, String) {
    let r = tapedeck_tools::http::request(daemon.http, "GET", path, None, b"", Duration::from_secs(5)).unwrap();
    (r.status, r.text())
}

/// Waits (bounded) until `what` holds.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn gone(path: &Path) -> bool {
    !path.exists()
}

#[test]
fn a_recording_is_uploaded_checked_deleted_and_announced_once() {
    let moto = Moto::start();
    moto.create_bucket("calls");
    let receiver = Receiver::start(Mode::Ok);
    let daemon = start(moto.port, "calls", &["--webhook", &receiver.url(), "--webhook-secret", &secret()]);
    let (name, session) = place_call(&daemon, 2);
    let key = format!("rec/{name}");
    let objects = moto.wait_for_objects("calls", "rec/", 1, Duration::from_secs(20));
    assert_eq!(objects[0].0, key, "{objects:?}");
    let got = receiver.wait_for(&["recording.finished"], Duration::from_secs(10));
    let finished = got.iter().find(|d| d.json()["type"] == "recording.finished").unwrap();
    assert!(finished.signed(), "{finished:?}");
    let data = &finished.json()["data"];
    assert_eq!((data["bucket"].as_str(), data["key"].as_str()), (Some("calls"), Some(key.as_str())), "{data}");
    assert_eq!((data["file"].as_str(), data["session"].as_str()), (Some(name.as_str()), Some(session.as_str())));
    let object = moto.get("calls", &key);
    assert_eq!(data["bytes"], object.len() as u64, "{data}");
    assert_eq!(data["sha256"], sha256_hex(&object).as_str(), "the object is not the file the event describes");
    assert_eq!(objects[0].2, md5_hex(&object), "the ETag is not the object's MD5");
    let wav = hound::WavReader::new(std::io::Cursor::new(&object)).expect("the object is a WAV");
    assert_eq!(u64::from(wav.len()), data["samples"].as_u64().unwrap(), "{data}");
    let local = daemon.recording(&name);
    wait_until(Duration::from_secs(5), "the local file is deleted", || gone(&local));
    assert!(gone(&journal_entry(&daemon, &name)), "the journal entry outlived the upload");
    std::thread::sleep(Duration::from_secs(2));
    let announced = receiver.deliveries().iter().filter(|d| d.json()["type"] == "recording.finished").count();
    assert_eq!(announced, 1, "recording.finished sent {announced} times");
    let metrics = common::metrics(&daemon);
    assert_eq!(common::metric(&metrics, "tapedeck_uploads_completed_total"), 1.0, "{metrics}");
    assert_eq!(common::metric(&metrics, "tapedeck_uploads_pending"), 0.0);
    assert_eq!(common::metric(&metrics, "tapedeck_uploads_bytes_total"), object.len() as f64);
    assert_eq!(common::metric(&metrics, "tapedeck_uploads_failed_attempts_total"), 0.0);
}

#[test]
fn an_endpoint_down_for_20_s_delays_no_call_and_loses_no_file() {
    let port = free_port();
    let daemon = start(port, "later", &["--keep-local"]);
    let began = Instant::now();
    let mut names = Vec::new();
    for _ in 0..2 {
        let report = call_report(&daemon, 1);
        let (samples, call_len) = daemon.recorded(&report);
        let wav_len = samples.len() as f64 / 48_000.0;
        assert!((wav_len - call_len).abs() <= 0.06, "WAV {wav_len:.3} s for a {call_len:.3} s call");
        names.push(report.recording.unwrap());
    }
    wait_until(Duration::from_secs(10), "two uploads pending, a failed attempt", || {
        let m = common::metrics(&daemon);
        common::metric(&m, "tapedeck_uploads_pending") == 2.0
            && common::metric(&m, "tapedeck_uploads_failed_attempts_total") >= 1.0
    });
    let (status, health) = get(&daemon, "/healthz");
    assert_eq!(status, 200, "a storage outage is not ill health: {health}");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert!(health["uploads"]["last_error"].as_str().is_some_and(|e| e.contains("failed")), "{health}");
    for name in &names {
        assert!(journal_entry(&daemon, name).exists(), "no journal entry for {name}");
    }
    std::thread::sleep(Duration::from_secs(20).saturating_sub(began.elapsed()));
    let moto = Moto::start_on(port);
    moto.create_bucket("later");
    // The backoff is at most 30 s; after 20 s of failures the next try comes within 16 s.
    let objects = moto.wait_for_objects("later", "rec/", 2, Duration::from_secs(40));
    for name in &names {
        let local = std::fs::read(daemon.recording(name)).expect("--keep-local keeps the file");
        assert!(moto.get("later", &format!("rec/{name}")) == local, "the object of {name} is not the file");
        wait_until(Duration::from_secs(5), "the journal entry goes", || gone(&journal_entry(&daemon, name)));
    }
    assert_eq!(objects.len(), 2, "{objects:?}");
    let m = common::metrics(&daemon);
    assert_eq!(common::metric(&m, "tapedeck_uploads_pending"), 0.0, "{m}");
    assert_eq!(common::metric(&m, "tapedeck_uploads_completed_total"), 2.0, "{m}");
    let (_, health) = get(&daemon, "/healthz");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert!(health["uploads"]["last_error"].is_null(), "the error outlived the outage: {health}");
}

#[test]
fn a_killed_daemon_resumes_its_uploads_from_the_journal() {
    let port = free_port();
    let receiver = Receiver::start(Mode::Ok);
    let hooks = ["--webhook", &receiver.url(), "--webhook-secret", &secret()];
    let mut first = start(port, "resumed", &hooks);
    let (name, session) = place_call(&first, 1);
    // The entry of the finished recording (a file is journaled as being recorded from the
    // moment it opens; the finished recording's data replaces that).
    let entry = journal_entry(&first, &name);
    let finished = || {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.get("in_progress").is_none())
    };
    wait_until(Duration::from_secs(10), "the finished recording's journal entry is written", finished);
    first.signal("KILL");
    assert_eq!(first.wait_for_exit(Duration::from_secs(5)), None, "kill -9 gives no exit code");
    assert!(receiver.deliveries().iter().all(|d| d.json()["type"] != "recording.finished"), "announced too early");
    let dir = std::mem::replace(&mut first.dir, tempfile::tempdir().unwrap());
    drop(first);

    let moto = Moto::start_on(port);
    moto.create_bucket("resumed");
    let second = start_in(dir, port, "resumed", &hooks);
    let objects = moto.wait_for_objects("resumed", "rec/", 1, Duration::from_secs(20));
    assert_eq!(objects[0].0, format!("rec/{name}"));
    let got = receiver.wait_for(&["recording.finished"], Duration::from_secs(10));
    let finished = got.iter().find(|d| d.json()["type"] == "recording.finished").unwrap();
    let data = &finished.json()["data"];
    assert!(finished.signed());
    assert_eq!((data["session"].as_str(), data["file"].as_str()), (Some(session.as_str()), Some(name.as_str())));
    assert_eq!(data["sha256"], sha256_hex(&moto.get("resumed", &objects[0].0)).as_str(), "{data}");
    assert!(data["duration_s"].as_f64().unwrap() > 0.5, "the journal kept the recorder's data: {data}");
    wait_until(Duration::from_secs(5), "the local file is deleted", || gone(&second.recording(&name)));
    assert!(gone(&journal_entry(&second, &name)));
}

#[test]
fn a_bucket_that_refuses_writes_keeps_the_file_and_says_why() {
    let moto = Moto::start();
    let daemon = start(moto.port, "no-such-bucket", &[]);
    let (name, _) = place_call(&daemon, 1);
    let expected = format!("upload of {name} to s3://no-such-bucket/rec/{name} failed (attempt 1): 404 NoSuchBucket");
    wait_until(Duration::from_secs(15), "the failure is logged", || daemon.log_text().contains(&expected));
    let log = daemon.log_text();
    let line = log.lines().find(|l| l.contains(&expected)).unwrap();
    assert!(line.contains("file kept, retrying in"), "{line}");
    let (status, health) = get(&daemon, "/healthz");
    assert_eq!(status, 200, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    let uploads = &health["uploads"];
    assert!(
        uploads["last_error"].as_str().is_some_and(|e| e.contains(&name) && e.contains("NoSuchBucket")),
        "{health}"
    );
    assert_eq!(uploads["pending"], 1, "{health}");
    assert!(uploads["failed_attempts"].as_u64().unwrap() >= 1, "{health}");
    assert!(daemon.recording(&name).exists(), "the file was not kept");
    assert!(journal_entry(&daemon, &name).exists(), "the journal entry was not kept");
}

#[test]
fn a_daemon_stopped_with_uploads_pending_exits_within_the_grace_and_keeps_them() {
    let port = free_port();
    let mut daemon = start(port, "stopped", &[]);
    let (name, _) = place_call(&daemon, 1);
    wait_until(Duration::from_secs(10), "a failed attempt", || {
        common::metric(&common::metrics(&daemon), "tapedeck_uploads_failed_attempts_total") >= 1.0
    });
    let stopping = Instant::now();
    assert_eq!(daemon.signal_and_wait("INT", Duration::from_secs(15)), Some(0), "the daemon did not exit cleanly");
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(8), "stopping took {took:?} with an endpoint down");
    assert!(daemon.recording(&name).exists(), "the file was not kept");
    assert!(journal_entry(&daemon, &name).exists(), "the journal entry was not kept");
    assert!(daemon.log_text().contains("1 upload(s) pending at exit"), "{}", daemon.log_text());
}

#[test]
fn with_format_both_each_file_is_uploaded_and_announced() {
    let moto = Moto::start();
    moto.create_bucket("both");
    let receiver = Receiver::start(Mode::Ok);
    let daemon =
        start(moto.port, "both", &["--format", "both", "--webhook", &receiver.url(), "--webhook-secret", &secret()]);
    let (name, _) = place_call(&daemon, 1);
    let stem = name.trim_end_matches(".wav");
    let objects = moto.wait_for_objects("both", "rec/", 2, Duration::from_secs(20));
    let keys: Vec<&str> = objects.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(keys, [format!("rec/{stem}.ogg"), format!("rec/{stem}.wav")], "{objects:?}");
    wait_until(Duration::from_secs(10), "two recording.finished", || {
        receiver.deliveries().iter().filter(|d| d.json()["type"] == "recording.finished").count() == 2
    });
    for d in receiver.deliveries().iter().filter(|d| d.json()["type"] == "recording.finished") {
        let data = &d.json()["data"];
        let key = data["key"].as_str().unwrap().to_owned();
        assert!(data["format"] == "ogg" || data["format"] == "wav", "{data}");
        assert!(key.ends_with(&format!(".{}", data["format"].as_str().unwrap())), "{data}");
        assert_eq!(data["sha256"], sha256_hex(&moto.get("both", &key)).as_str(), "{data}");
    }
}

/// A daemon killed mid-call never finalizes the recording; the file it leaves plays (its
/// header is refreshed every 200 ms), and the next start uploads and announces it, saying so.
#[test]
fn a_recording_cut_off_by_kill_9_is_uploaded_at_the_next_start() {
    let moto = Moto::start();
    moto.create_bucket("cut");
    let receiver = Receiver::start(Mode::Ok);
    let hooks = ["--webhook", &receiver.url(), "--webhook-secret", &secret()];
    let mut first = start(moto.port, "cut", &hooks);
    let http = first.http;
    let caller = std::thread::spawn(move || call(&CallPlan::tone(http, 440.0, Duration::from_secs(6))));
    std::thread::sleep(Duration::from_millis(3000));
    first.signal("KILL");
    assert_eq!(first.wait_for_exit(Duration::from_secs(5)), None, "kill -9 gives no exit code");
    let report = caller.join().unwrap();
    let name = report.recording.clone().expect("answered");
    assert!(journal_entry(&first, &name).exists(), "the file was journaled as being recorded");
    assert!(moto.list("cut", "rec/").is_empty(), "nothing uploaded before the restart");
    let dir = std::mem::replace(&mut first.dir, tempfile::tempdir().unwrap());
    drop(first);

    let second = start_in(dir, moto.port, "cut", &hooks);
    let objects = moto.wait_for_objects("cut", "rec/", 1, Duration::from_secs(20));
    assert_eq!(objects[0].0, format!("rec/{name}"));
    let bytes = moto.get("cut", &objects[0].0);
    let (_, samples) = tapedeck_core::testkit::audio::wav_from_bytes(&bytes);
    assert!(samples.len() >= 48_000 * 2, "the uploaded file plays {} samples of a 3 s call", samples.len());
    let got = receiver.wait_for(&["recording.finished"], Duration::from_secs(10));
    let finished = got.iter().find(|d| d.json()["type"] == "recording.finished").unwrap();
    let data = &finished.json()["data"];
    assert!(finished.signed());
    assert_eq!(data["end_reason"], "interrupted", "{data}");
    assert_eq!(data["session"].as_str(), report.session.as_deref());
    assert_eq!(data["sha256"], sha256_hex(&bytes).as_str());
    assert!(data["error"].as_str().unwrap().contains("killed or crashed"), "{data}");
    assert!(data.get("in_progress").is_none(), "{data}");
    wait_until(Duration::from_secs(5), "the journal entry goes", || gone(&journal_entry(&second, &name)));
}
