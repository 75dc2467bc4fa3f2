//! `tapedeck-load`: opens N real WebRTC callers against a running tapedeck (str0m, offering,
//! each with its own UDP socket on 127.0.0.1, full ICE, DTLS and SRTP), each sending its own
//! pre-encoded tone at browser pacing (on a clock that may run fast or slow) and counting what the server plays, then hanging up with
//! DELETE. All callers run on one media thread (see `tapedeck_tools::load`). With
//! `--stun-flood PPS`, a thread of its own floods the daemon's UDP port with STUN Binding
//! requests that name no session (see `tapedeck_tools::flood`) while the callers talk.
//!
//! Prints a readable summary and, as its last line, one JSON object.
#![allow(clippy::disallowed_methods)] // a load generator owns its clock

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;
use tapedeck_core::testkit::audio::ogg_opus_samples;

use clap::Parser;
use tapedeck_tools::flood::{FloodConfig, FloodReport};
use tapedeck_tools::load::{parse_clock_rate, run, CallerResult, LoadConfig};
use tapedeck_tools::recordings::{judge, Judgement, Sent};

/// Load generator for tapedeck.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "Load generator for tapedeck: N real WebRTC callers (ICE, DTLS, SRTP) on 127.0.0.1, each sending its own tone and measuring what the daemon plays back"
)]
struct Args {
    /// The daemon's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Number of callers.
    #[arg(long, default_value_t = 10)]
    callers: usize,
    /// Seconds each caller talks after connecting.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Callers started per second.
    #[arg(long, default_value_t = 50.0)]
    ramp: f64,
    /// Packet time of what the callers send, in ms.
    #[arg(long, default_value_t = 20)]
    ptime: u64,
    /// Packet time the server sends, in ms (its --ptime).
    #[arg(long, default_value_t = 10)]
    server_ptime: u64,
    /// How fast the callers' media clocks run against real time (0.5 to 2.0): each sends a
    /// frame of --ptime every ptime/R, so it sends R times --seconds of audio.
    #[arg(long, value_name = "R", default_value = "1.0", value_parser = parse_clock_rate)]
    clock_rate: f64,
    /// The daemon's recordings folder: check that every call's WAV holds every frame its
    /// caller sent (its tone, without holes, in a file as long as the call or the audio sent)
    /// and report how many are complete.
    #[arg(long, value_name = "DIR")]
    check_recordings: Option<PathBuf>,
    /// Also flood the daemon's UDP port (from the answers) with this many STUN Binding
    /// requests a second, from a socket of their own: made-up USERNAMEs and a bogus
    /// MESSAGE-INTEGRITY, and one in --flood-known-every with a real session's ufrag (one of
    /// these callers') but a wrong password. Starts at the first answer (and --flood-after).
    #[arg(long, value_name = "PPS")]
    stun_flood: Option<f64>,
    /// Seconds from the first answer to the flood's start.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, requires = "stun_flood")]
    flood_after: f64,
    /// How long the flood lasts, in seconds (default: --seconds).
    #[arg(long, value_name = "SECONDS", requires = "stun_flood")]
    flood_seconds: Option<f64>,
    /// The address the flood comes from.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1", requires = "stun_flood")]
    flood_from: IpAddr,
    /// One flood request in this many names a real session's ufrag (0: none does).
    #[arg(long, value_name = "N", default_value_t = 100, requires = "stun_flood")]
    flood_known_every: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(server) =
        args.url.strip_prefix("http://").and_then(|s| s.trim_end_matches('/').parse::<SocketAddr>().ok())
    else {
        eprintln!("tapedeck-load: --url must look like http://127.0.0.1:8080");
        return ExitCode::FAILURE;
    };
    let config = LoadConfig {
        server,
        callers: args.callers,
        talk: Duration::from_secs_f64(args.seconds),
        ramp: args.ramp,
        ptime: Duration::from_millis(args.ptime),
        server_ptime: Duration::from_millis(args.server_ptime),
        clock_rate: args.clock_rate,
        flood: args.stun_flood.filter(|pps| *pps > 0.0).map(|pps| FloodConfig {
            pps,
            delay: Duration::from_secs_f64(args.flood_after.max(0.0)),
            duration: Duration::from_secs_f64(args.flood_seconds.unwrap_or(args.seconds).max(0.0)),
            from: args.flood_from,
            known_every: args.flood_known_every,
        }),
    };
    let start = Instant::now();
    match run(&config) {
        Ok(outcome) => {
            let results = outcome.callers;
            let checked = args
                .check_recordings
                .as_deref()
                .map(|dir| check_recordings(config.server, dir, &results, config.ptime));
            summarize(&config, &results, start.elapsed(), checked, outcome.flood.as_ref());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tapedeck-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn percentile(mut v: Vec<f64>, p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() - 1) as f64 * p).round() as usize])
}

/// Waits (at most 2 minutes) until the daemon's recorders have caught up with its event loop
/// (`tapedeck_recorder_lag_seconds` in `/metrics` under 1 s): under overload they run behind
/// the calls, and a recording is final only once its worker got to the hang-up.
fn wait_for_recorders(server: SocketAddr) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let lag = tapedeck_tools::http::request(server, "GET", "/metrics", None, b"", Duration::from_secs(5))
            .ok()
            .and_then(|r| {
                let text = String::from_utf8_lossy(&r.body).into_owned();
                text.lines().find_map(|l| l.strip_prefix("tapedeck_recorder_lag_seconds ")?.trim().parse::<f64>().ok())
            });
        match lag {
            Some(lag) if lag >= 1.0 => std::thread::sleep(Duration::from_millis(250)),
            _ => return, // caught up, or a server that does not say
        }
    }
}

/// What the recordings check found: one judgement per caller that talked.
type Checked = Vec<(String, Result<Judgement, String>)>;

fn check_recordings(server: SocketAddr, dir: &Path, results: &[CallerResult], ptime: Duration) -> Checked {
    wait_for_recorders(server);
    let mut checked = Vec::new();
    for r in results {
        let (Some(name), Some(call)) = (&r.recording, r.talked) else { continue };
        let sent = Sent { tone_hz: r.tone_hz, frames: r.sent, ptime, call };
        let judged = read_final(&dir.join(name), call.max(sent.audio())).map(|samples| judge(&samples, sent));
        checked.push((name.clone(), judged));
    }
    checked
}

/// A recording's samples once it is final. The daemon finalizes a recording right after the
/// hang-up, but its header is refreshed during the call too: wait until the file is as long
/// as `expected` (the call, or the audio sent if longer), or has stopped growing for 2 s (then
/// it is final, and judged as it is).
fn read_final(path: &Path, expected: Duration) -> Result<Vec<i16>, String> {
    if path.extension().is_some_and(|e| e == "ogg") {
        return read_final_ogg(path);
    }
    let expected = expected.as_secs_f64() - 0.05;
    let started = Instant::now();
    let (mut last_len, mut last_change) = (u32::MAX, Instant::now());
    let mut wav = hound::WavReader::open(path);
    loop {
        let len = wav.as_ref().map_or(0, |w| w.duration());
        if f64::from(len) / f64::from(SAMPLE_RATE_HZ) >= expected {
            break;
        }
        if len != last_len {
            (last_len, last_change) = (len, Instant::now());
        }
        if last_change.elapsed() > Duration::from_secs(2) || started.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        wav = hound::WavReader::open(path);
    }
    match wav {
        Ok(mut w) => Ok(w.samples::<i16>().filter_map(Result::ok).collect()),
        Err(e) => Err(e.to_string()),
    }
}

/// An Ogg/Opus recording's samples once it is final: it has its end-of-stream page (within
/// 30 s).
fn read_final_ogg(path: &Path) -> Result<Vec<i16>, String> {
    let started = Instant::now();
    loop {
        let decoded = std::fs::read(path).map_err(|e| e.to_string()).and_then(|b| ogg_opus_samples(&b));
        if decoded.is_ok() || started.elapsed() > Duration::from_secs(30) {
            return decoded;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn summarize(
    config: &LoadConfig,
    results: &[CallerResult],
    wall: Duration,
    checked: Option<Checked>,
    flood: Option<&FloodReport>,
) {
    let connected = results.iter().filter(|r| r.connect_ms.is_some()).count();
    let failed: Vec<&str> = results.iter().filter_map(|r| r.error.as_deref()).collect();
    let answer: Vec<f64> = results.iter().filter_map(|r| r.answer_ms).collect();
    let connect: Vec<f64> = results.iter().filter_map(|r| r.connect_ms).collect();
    let sent: u64 = results.iter().map(|r| r.sent).sum();
    let received: u64 = results.iter().map(|r| r.received).sum();
    let expected: f64 =
        results.iter().filter_map(|r| r.talked).map(|t| t.as_secs_f64() / config.server_ptime.as_secs_f64()).sum();
    let max_gap = results.iter().map(|r| r.max_gap_ms).fold(0.0, f64::max);
    let max_gap_seen = results.iter().map(|r| r.max_gap_seen_ms).fold(0.0, f64::max);
    let all = |f: fn(&CallerResult) -> &Vec<f32>| -> Vec<f64> {
        results.iter().flat_map(|r| f(r).iter().map(|&d| f64::from(d))).collect()
    };
    let p99_dev = percentile(all(|r| &r.deviations_ms), 0.99);
    let p99_seen = percentile(all(|r| &r.seen_deviations_ms), 0.99);
    let hangups_ok = results.iter().filter(|r| r.hangup_status == Some(200)).count();
    let mut reasons: Vec<(String, usize)> = Vec::new();
    for f in &failed {
        match reasons.iter_mut().find(|(r, _)| r == f) {
            Some((_, n)) => *n += 1,
            None => reasons.push(((*f).to_string(), 1)),
        }
    }
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    println!(
        "{} callers: {connected} connected, {} failed, {hangups_ok} hung up cleanly, in {:.1} s",
        results.len(),
        failed.len(),
        wall.as_secs_f64()
    );
    println!(
        "answer p50 {} ms p99 {} ms; connect p50 {} ms p99 {} ms",
        fmt(percentile(answer.clone(), 0.5)),
        fmt(percentile(answer.clone(), 0.99)),
        fmt(percentile(connect.clone(), 0.5)),
        fmt(percentile(connect.clone(), 0.99))
    );
    println!(
        "packets sent {sent}; received {received} of {expected:.0} expected ({:.1} %); largest gap {max_gap:.1} ms; pacing p99 deviation {} ms (kernel arrival stamps: the server's sending)",
        100.0 * received as f64 / expected.max(1.0),
        fmt(p99_dev)
    );
    println!("as this process read them: largest gap {max_gap_seen:.1} ms; pacing p99 deviation {} ms", fmt(p99_seen));
    for (reason, n) in &reasons {
        println!("failure x{n}: {reason}");
    }
    if let Some(f) = flood {
        println!(
            "STUN flood: {} requests in {:.1} s ({:.0}/s), {} naming a real ufrag; {} sends refused",
            f.sent,
            f.seconds,
            f.sent as f64 / f.seconds.max(1e-9),
            f.sent_known_ufrag,
            f.send_errors
        );
    }
    let recordings = checked.as_deref().map(recordings_report);
    if let Some(report) = &recordings {
        print_recordings(report, checked.as_deref().unwrap_or_default(), results.len());
    }
    let json = serde_json::json!({
        "callers": results.len(),
        "clock_rate": config.clock_rate,
        "connected": connected,
        "failed": failed.len(),
        "failures": reasons.iter().map(|(r, n)| serde_json::json!({"reason": r, "count": n})).collect::<Vec<_>>(),
        "answer_ms": { "p50": percentile(answer.clone(), 0.5), "p99": percentile(answer, 0.99) },
        "connect_ms": { "p50": percentile(connect.clone(), 0.5), "p99": percentile(connect, 0.99) },
        "packets_sent": sent,
        "packets_received": received,
        "packets_expected": expected.round(),
        "max_gap_ms": max_gap,
        "pacing_p99_ms": p99_dev,
        "max_gap_seen_ms": max_gap_seen,
        "pacing_seen_p99_ms": p99_seen,
        "hangups_ok": hangups_ok,
        "recordings_complete": recordings.as_ref().map(|r| r["complete"].clone()),
        "recordings_checked": recordings.as_ref().map(|r| r["checked"].clone()),
        "recording_missing_frames_max": recordings.as_ref().map(|r| r["missing_frames_max"].clone()),
        "recording_worst": recordings.as_ref().map(|r| r["worst"].clone()),
        "flood_sent": flood.map(|f| f.sent),
        "flood_sent_known_ufrag": flood.map(|f| f.sent_known_ufrag),
        "flood_send_errors": flood.map(|f| f.send_errors),
        "flood_seconds": flood.map(|f| f.seconds),
    });
    println!("{json}");
}

/// The recordings' counts: checked, complete, the most frames missing from one, and the
/// worst one's figures (the most frames missing; else the first with a problem).
fn recordings_report(checked: &[(String, Result<Judgement, String>)]) -> serde_json::Value {
    let complete = checked.iter().filter(|(_, j)| j.as_ref().is_ok_and(Judgement::complete)).count();
    let judged = || checked.iter().filter_map(|(name, j)| Some((name, j.as_ref().ok()?)));
    let missing_max = judged().map(|(_, j)| j.missing_frames()).max();
    let worst = judged().max_by_key(|(_, j)| (j.missing_frames(), !j.complete())).map(|(name, j)| {
        let mut v = j.to_json();
        v["recording"] = name.as_str().into();
        v
    });
    serde_json::json!({
        "checked": checked.len(),
        "complete": complete,
        "missing_frames_max": missing_max,
        "worst": worst,
    })
}

fn print_recordings(report: &serde_json::Value, checked: &[(String, Result<Judgement, String>)], callers: usize) {
    println!(
        "recordings complete: {} of {callers} ({} checked); most frames missing from one: {}",
        report["complete"], report["checked"], report["missing_frames_max"]
    );
    let problems = checked.iter().flat_map(|(name, j)| match j {
        Ok(j) => j.problems.iter().map(|p| format!("{name}: {p}")).collect(),
        Err(e) => vec![format!("{name}: {e}")],
    });
    for p in problems.take(10) {
        println!("recording problem: {p}");
    }
    let w = &report["worst"];
    if !w.is_null() {
        let s = |k: &str| w[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "worst recording {}: {} frames sent ({:.2} s), {} with the tone ({:.2} s), file {:.2} s, call {:.2} s",
            w["recording"],
            w["frames_sent"],
            s("sent_s"),
            w["tone_frames"],
            s("tone_s"),
            s("file_s"),
            s("call_s")
        );
    }
}
