//! `tapedeck-floor`: measures, on this machine, the parts every caller-second must pay at
//! least once (the "floor"): Opus decoding, UDP send and receive on loopback, str0m's work
//! for one session (ICE, DTLS keep-alive, SRTP, RTP/RTCP) and WAV writing. Prints one JSON
//! object; `bench/run.sh` divides the daemon's measured cost by it.
//!
//! Each part is timed in batches and the median batch is reported (machines are noisy).
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::io::BufWriter;
use std::net::UdpSocket;
use std::time::{Duration, Instant};
use tapedeck_core::media::SAMPLE_RATE_HZ;

use clap::Parser;

/// Measures the floor's parts.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "Measures the floor of a tapedeck caller on this machine: Opus decoding, UDP, WAV writing and str0m's own work, per caller-second"
)]
struct Args {
    /// Outgoing packet time of the daemon (ms) the per-caller floor is computed for.
    #[arg(long, default_value_t = 10, value_parser = parse_ptime)]
    ptime: u64,
    /// Incoming packet time of the callers (ms).
    #[arg(long, default_value_t = 20)]
    caller_ptime: u64,
    /// Decoders taking turns in the interleaved decode measurement (as many as callers).
    #[arg(long, default_value_t = 200)]
    decoders: usize,
    /// Sessions taking turns in the interleaved str0m measurement (as many as callers).
    #[arg(long, default_value_t = 100)]
    sessions: usize,
}

fn median_of_batches(batches: usize, per_batch: usize, mut f: impl FnMut()) -> f64 {
    let times: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / per_batch as f64
        })
        .collect();
    median(times)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = Args::parse();
    // Opus: decode a 20 ms voice-mode frame of a tone, exactly as tapedeck-load sends them
    // (the same encoder settings as Chrome's: voice mode, 32 kbit/s, in-band FEC).
    let frames = tapedeck_tools::encode_tone(440, Duration::from_millis(args.caller_ptime));
    let mut dec = opus::Decoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono).expect("decoder");
    let mut pcm = vec![0i16; 5760];
    let mut k = 0;
    let decode_us = median_of_batches(21, 500, || {
        let _ = dec.decode(&frames[k % frames.len()], &mut pcm, false);
        k += 1;
    });

    // The same, with one decoder per caller taking turns, as the recorders do: each decode
    // then finds its decoder's state (about 26 KiB) out of the CPU caches.
    let mut decs: Vec<opus::Decoder> = (0..args.decoders.max(1))
        .map(|_| opus::Decoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono).expect("decoder"))
        .collect();
    let mut k = 0;
    let n = decs.len();
    let interleaved_us = median_of_batches(21, 500, || {
        let _ = decs[k % n].decode(&frames[(k / n) % frames.len()], &mut pcm, false);
        k += 1;
    });

    // UDP on loopback, timed apart: a send_to (on loopback it also pays the delivery into the
    // receiver's buffer) and a recv_from of a 150-byte datagram, in batches of 200.
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let b_addr = b.local_addr().expect("addr");
    b.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
    let payload = [0x80u8; 150];
    let mut buf = [0u8; 2048];
    let (mut sends, mut batched, mut recvs) = (Vec::new(), Vec::new(), Vec::new());
    let mut batch = tapedeck::io::batch::SendBatch::default();
    for round in 0..102 {
        // Alternately one send_to per datagram, and sendmmsg as the daemon sends a burst.
        let t = Instant::now();
        if round % 2 == 0 {
            for _ in 0..200 {
                let _ = a.send_to(&payload, b_addr);
            }
            sends.push(t.elapsed().as_secs_f64() * 1e6 / 200.0);
        } else {
            for _ in 0..200 {
                batch.push(b_addr, payload.to_vec());
            }
            let _ = batch.send(&a);
            batched.push(t.elapsed().as_secs_f64() * 1e6 / 200.0);
        }
        let t = Instant::now();
        for _ in 0..200 {
            let _ = b.recv_from(&mut buf);
        }
        recvs.push(t.elapsed().as_secs_f64() * 1e6 / 200.0);
    }
    let (sendto_us, sendmmsg_us, recv_us) = (median(sends), median(batched), median(recvs));
    // The floor errs on the low side: the cheaper way to send.
    let send_us = sendto_us.min(sendmmsg_us);

    // WAV: appending one 20 ms frame through hound and a buffered file.
    let dir = std::env::temp_dir().join(format!("tapedeck-floor-{}", std::process::id()));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE_HZ,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let file = std::fs::File::create(&dir).expect("temp file");
    let mut wav = hound::WavWriter::new(BufWriter::new(file), spec).expect("wav");
    let frame = vec![1000i16; 960];
    let wav_us = median_of_batches(21, 2000, || {
        let mut w = wav.get_i16_writer(960);
        for &s in &frame {
            w.write_sample(s);
        }
        let _ = w.flush();
    });
    let _ = wav.finalize();
    let _ = std::fs::remove_file(&dir);

    // str0m: one session's work per second of two-way audio, in memory.
    let ptime = tapedeck_core::media::Ptime::from_millis(args.ptime).expect("checked by parse_ptime");
    let caller_ptime = Duration::from_millis(args.caller_ptime);
    let str0m_ms = tapedeck_core::testkit::str0m_session_second(ptime, caller_ptime);
    // The same with a daemon's worth of sessions taking turns (their state out of the caches).
    let str0m_interleaved_ms = tapedeck_core::testkit::str0m_sessions_second(ptime, caller_ptime, args.sessions);

    // Answering: what the daemon must do for an offer before anything else (parse the SDP,
    // build the session's Rtc, write the answer), per offer; the HTTP round trip is not in it.
    let offers: Vec<String> = (0..16)
        .map(|i| {
            let local = std::net::SocketAddr::from(([127, 0, 0, 1], 40_000 + i));
            tapedeck_tools::offering(local, Instant::now(), None).expect("an offer").offer.to_sdp_string()
        })
        .collect();
    let params = tapedeck_core::testkit::params();
    let mut k = 0u128;
    let answer_us = median_of_batches(11, 16, || {
        let id = tapedeck_core::engine::SessionId::from_u128(k);
        let sdp = &offers[k as usize % offers.len()];
        let _ = tapedeck_core::engine::accept_offer(sdp, params, id, Instant::now()).expect("answered");
        k += 1;
    });

    let in_pps = 1000.0 / args.caller_ptime as f64;
    let out_pps = 1000.0 / args.ptime as f64;
    // The lower of the two decode costs: the floor errs on the low side.
    let decode_floor_us = decode_us.min(interleaved_us);
    let floor_ms = (in_pps * (decode_floor_us + recv_us + wav_us) + out_pps * send_us) / 1000.0 + str0m_ms;
    let json = serde_json::json!({
        "opus_decode_us_per_frame": decode_us,
        "opus_decode_us_per_frame_interleaved": interleaved_us,
        "decoders": n,
        "udp_send_us": send_us,
        "udp_sendto_us": sendto_us,
        "udp_sendmmsg_us": sendmmsg_us,
        "udp_recv_us": recv_us,
        "wav_write_us_per_frame": wav_us,
        "str0m_ms_per_session_second": str0m_ms,
        "str0m_ms_per_session_second_interleaved": str0m_interleaved_ms,
        "sessions": args.sessions,
        "answer_us": answer_us,
        "ptime_ms": args.ptime,
        "caller_ptime_ms": args.caller_ptime,
        "floor_ms_per_caller_second": floor_ms,
    });
    println!("{json}");
}

/// A packet time the daemon can send: 10, 20, 40 or 60 ms.
fn parse_ptime(s: &str) -> Result<u64, String> {
    let ms: u64 = s.parse().map_err(|e| format!("{e}"))?;
    tapedeck_core::media::Ptime::from_millis(ms).map(|p| p.millis()).ok_or_else(|| "must be 10, 20, 40 or 60".into())
}
