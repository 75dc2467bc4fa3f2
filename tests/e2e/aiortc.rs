//! aiortc as the caller: Debian's `python3-aiortc` (`tests/interop/aiortc_call.py`) makes the
//! call a client of the Python server tapedeck replaces would make (`POST /offer` with the
//! JSON shape of aiortc's example server, no trickle, a sendrecv audio transceiver, hang-up
//! by closing the `RTCPeerConnection`). It sends a tone and measures what it hears.
//!
//! Debian 12's aiortc (1.4.0) decodes Opus only in packets of 20 ms (its decoder asserts 960
//! samples a packet; aiortc 1.16 from PyPI takes any size), and the Python server sent 20 ms
//! packets (aiortc's encoder makes nothing else), so this call runs the daemon with
//! `--ptime 20`.
//!
//! Needs `/usr/bin/python3` with aiortc: `apt-get install -y python3-aiortc` (Debian 12: 1.4.0).
//! Without it the test fails and says so. Network: HTTP and media on 127.0.0.1 only (the
//! script gathers one host candidate, 127.0.0.1, and uses no STUN server).

#![allow(clippy::disallowed_methods)] // end-to-end tests own their threads and clocks

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use tapedeck_core::testkit::audio;
use tapedeck_tools::http::request;

/// Debian's interpreter: aiortc comes from the `python3-aiortc` package, not from pip.
const PYTHON: &str = "/usr/bin/python3";
const TONE_HZ: f64 = 440.0;
const CALL: Duration = Duration::from_secs(5);

#[test]
fn an_aiortc_caller_is_recorded_and_hears_the_sample() {
    require_aiortc();
    let daemon = common::Daemon::start(&["--ptime", "20"]);
    let started = Instant::now();
    let caller = aiortc_call(&daemon, TONE_HZ, CALL);
    let took = started.elapsed();
    let r = &caller.report;
    assert!(caller.ok, "aiortc_call.py failed: {r}\nstderr:\n{}", caller.stderr);

    // The call: answered, connected over ICE on loopback, DTLS (aiortc's own certificate).
    assert_eq!(r["error"], serde_json::Value::Null, "{r}");
    assert_eq!(r["connected"], true, "{r}");
    assert!(matches!(r["ice"].as_str(), Some("completed" | "connected")), "ICE: {r}");
    let call_s = r["call_s"].as_f64().expect("call_s");
    let sent_s = r["sent_frames"].as_f64().expect("sent_frames") * 0.020;

    // The caller heard the sample: aiortc decoded 20 ms frames at about real time from soon
    // after connecting (measured: the first frame 0.08 to 0.2 s after connecting, then 50 a
    // second), at the sample's level (the call is longer than the 4 s loop, so the caller
    // heard all of it; Opus keeps the level within a few per cent).
    let heard_s = r["received_seconds"].as_f64().expect("received_seconds");
    assert!(heard_s >= 0.9 * call_s - 0.3, "heard {heard_s} s of a {call_s} s call: {r}");
    assert!(heard_s <= call_s + 0.1, "heard {heard_s} s of a {call_s} s call: {r}");
    let sample = audio::read_wav(&common::default_sample()).1;
    let sample_rms = audio::rms(&sample);
    let heard_rms = r["received_rms"].as_f64().expect("received_rms");
    assert!(
        (heard_rms / sample_rms - 1.0).abs() <= 0.25,
        "the caller heard RMS {heard_rms}, the sample's is {sample_rms:.4}: {r}"
    );

    // Closing the peer connection hangs up (DTLS close_notify): the session ends and the
    // recording is finalized without a DELETE.
    let name = r["recording"].as_str().expect("the answer names the recording");
    let path = daemon.recording(name);
    daemon.wait_for_final(&path, Duration::from_secs(5));
    assert_eq!(daemon.recordings(), vec![path.clone()], "exactly one WAV");
    assert_eq!(sessions_left(&daemon, Duration::from_secs(5)), 0, "the session ended with the peer connection");

    // The recording: the tone, as long as the call. The file runs from the daemon's
    // "connected" (it is the DTLS server: done when it sends its Finished) to the end of
    // the session (aiortc's close_notify); call_s runs from aiortc's "connected" (after
    // it has read that Finished, checked the fingerprint and derived the SRTP keys, in
    // Python) to the start of close(). So the file is a little longer than call_s, never
    // shorter: measured +0.01 to +0.09 s idle, of which 0.02 to 0.12 s is silence before
    // aiortc's first packet, and up to +0.23 s with a CPU hog on 2 cores.
    let (spec, samples) = audio::read_wav(&path);
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, SAMPLE_RATE_HZ, 16));
    let wav_s = samples.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    let hz = audio::dominant_hz(&samples[samples.len() / 4..samples.len() * 3 / 4], SAMPLE_RATE_HZ);
    let tone_s = tone_seconds(&samples);
    let v = |key: &str| r[key].to_string().trim_matches('"').to_string();
    eprintln!(
        "aiortc {}, {} {}, aiortc the DTLS {} (its certificate {}, the daemon's {}); connected in {} s; \
         call {call_s:.3} s, WAV {wav_s:.3} s ({:+.3}), tone in the WAV {tone_s:.2} s of {sent_s:.2} s sent \
         (first frame {} s after connecting), {hz:.2} Hz; heard {} frames = {heard_s:.2} s ({:.1} frames/s, \
         first {} s after connecting), RMS {heard_rms} (sample {sample_rms:.4}); call took {:.1} s",
        v("aiortc"),
        v("dtls_version"),
        v("dtls_cipher"),
        v("dtls_role"),
        v("dtls_cert_key"),
        v("dtls_peer_cert_key"),
        v("connect_s"),
        wav_s - call_s,
        v("first_sent_s"),
        v("received_frames"),
        r["received_frames"].as_f64().unwrap_or(0.0) / call_s,
        v("received_first_s"),
        took.as_secs_f64(),
    );
    assert!((-0.06..=0.4).contains(&(wav_s - call_s)), "WAV {wav_s:.3} s vs the caller's call {call_s:.3} s: {r}");
    assert!((hz - TONE_HZ).abs() <= 3.0, "dominant {hz:.2} Hz, sent {TONE_HZ} Hz");
    // Every frame aiortc sent is in the file (the last one or two may not leave before close).
    assert!((tone_s - sent_s).abs() <= 0.1, "{tone_s:.2} s of tone in the WAV, {sent_s:.2} s sent: {r}");
}

/// Fails, naming the package, when Debian's aiortc is missing.
fn require_aiortc() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiortc"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "`{PYTHON} -c 'import aiortc'` failed: this test needs Debian's aiortc: apt-get install -y python3-aiortc"
    );
}

/// What `aiortc_call.py` said.
struct Caller {
    /// It exited 0: connected, called, heard something, hung up.
    ok: bool,
    /// Its JSON line.
    report: serde_json::Value,
    stderr: String,
}

/// Runs `aiortc_call.py` against the daemon (bounded: killed after the call plus 60 s).
fn aiortc_call(daemon: &common::Daemon, hz: f64, call: Duration) -> Caller {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/aiortc_call.py");
    let mut command = Command::new(PYTHON);
    command.arg(&script).args(["--url", &format!("http://{}", daemon.http)]).args([
        "--hz",
        &hz.to_string(),
        "--seconds",
        &call.as_secs_f64().to_string(),
    ]);
    let run = common::run_script(command, call + Duration::from_secs(60), "aiortc_call.py");
    Caller { ok: run.status.success(), report: run.report, stderr: run.stderr }
}

/// How many sessions the daemon still has, once it has none or after `limit`.
fn sessions_left(daemon: &common::Daemon, limit: Duration) -> u64 {
    let start = Instant::now();
    loop {
        let r = request(daemon.http, "GET", "/sessions", None, b"", Duration::from_secs(5)).expect("GET /sessions");
        let count = r.json()["count"].as_u64().expect("count");
        if count == 0 || start.elapsed() > limit {
            return count;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Seconds of the recording in 20 ms windows loud enough to be the tone (sent at 0.3 of
/// full scale, RMS 0.21; the silence around it is 0).
fn tone_seconds(samples: &[i16]) -> f64 {
    let window = SAMPLE_RATE_HZ as usize / 50;
    samples.chunks(window).filter(|w| audio::rms(w) > 0.1).count() as f64 * 0.020
}
