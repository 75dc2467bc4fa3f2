//! `tapedeck-load`: opens N real WebRTC callers against a running tapedeck, each sending its
//! own tone for S seconds, then hanging up; prints a summary and, last, one JSON line.
//!
//! This first version runs one thread per caller (fine for tens of callers); the benchmark
//! issue makes it cheap enough for hundreds.
#![allow(clippy::disallowed_methods)] // a load generator owns its threads and clock

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use tapedeck::client::{call, CallPlan, CallReport};

/// Load generator for tapedeck.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The daemon's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Number of callers.
    #[arg(long, default_value_t = 10)]
    callers: usize,
    /// Seconds each caller talks.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Callers started per second.
    #[arg(long, default_value_t = 50.0)]
    ramp: f64,
    /// Packet time of what the callers send, in ms.
    #[arg(long, default_value_t = 20)]
    ptime: u64,
    /// Packet time the server sends, in ms (for the expected count).
    #[arg(long, default_value_t = 10)]
    server_ptime: u64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let Some(server) = parse_url(&args.url) else {
        eprintln!("tapedeck-load: --url must look like http://127.0.0.1:8080");
        return std::process::ExitCode::FAILURE;
    };
    let talk = Duration::from_secs_f64(args.seconds);
    let gap = Duration::from_secs_f64(1.0 / args.ramp.max(0.001));
    let start = Instant::now();
    let reports: Vec<CallReport> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.callers)
            .map(|i| {
                std::thread::sleep(gap);
                let mut plan = CallPlan::tone(server, 200.0 + 20.0 * (i % 40) as f32, talk);
                plan.ptime = Duration::from_millis(args.ptime);
                s.spawn(move || call(&plan))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    summarize(&args, &reports, start.elapsed());
    std::process::ExitCode::SUCCESS
}

fn parse_url(url: &str) -> Option<SocketAddr> {
    url.strip_prefix("http://")?.trim_end_matches('/').parse().ok()
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn summarize(args: &Args, reports: &[CallReport], wall: Duration) {
    let connected: Vec<&CallReport> = reports.iter().filter(|r| r.connected_at.is_some()).collect();
    let failed: Vec<String> = reports.iter().filter_map(|r| r.error.clone()).collect();
    let answer_ms: Vec<f64> =
        reports.iter().filter_map(|r| Some((r.answered_at? - r.offered_at?).as_secs_f64() * 1000.0)).collect();
    let connect_ms: Vec<f64> =
        reports.iter().filter_map(|r| Some((r.connected_at? - r.answered_at?).as_secs_f64() * 1000.0)).collect();
    let sent: u64 = reports.iter().map(|r| r.sent).sum();
    let received: usize = reports.iter().map(|r| r.received.len()).sum();
    let expected: f64 = connected
        .iter()
        .filter_map(|r| Some((r.hangup_at? - r.connected_at?).as_secs_f64() * 1000.0 / args.server_ptime as f64))
        .sum();
    let max_gap_ms = reports
        .iter()
        .flat_map(|r| r.received.windows(2).map(|w| (w[1].arrival - w[0].arrival).as_secs_f64() * 1000.0))
        .fold(0.0, f64::max);
    println!(
        "{} callers, {} connected, {} failed in {:.1} s; answer p50 {:.1} ms p99 {:.1} ms; connect p50 {:.1} ms p99 {:.1} ms",
        reports.len(),
        connected.len(),
        failed.len(),
        wall.as_secs_f64(),
        percentile(answer_ms.clone(), 0.5),
        percentile(answer_ms.clone(), 0.99),
        percentile(connect_ms.clone(), 0.5),
        percentile(connect_ms.clone(), 0.99)
    );
    println!("packets sent {sent}, received {received} of {expected:.0} expected; largest gap {max_gap_ms:.1} ms");
    for f in failed.iter().take(5) {
        println!("failure: {f}");
    }
    let json = serde_json::json!({
        "callers": reports.len(),
        "connected": connected.len(),
        "failed": failed.len(),
        "failures": failed,
        "answer_ms": { "p50": percentile(answer_ms.clone(), 0.5), "p99": percentile(answer_ms, 0.99) },
        "connect_ms": { "p50": percentile(connect_ms.clone(), 0.5), "p99": percentile(connect_ms, 0.99) },
        "packets_sent": sent,
        "packets_received": received,
        "packets_expected": expected.round(),
        "max_gap_ms": max_gap_ms,
    });
    println!("{json}");
}
