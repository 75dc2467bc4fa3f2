//! A STUN flood for `tapedeck-load --stun-flood`: Binding requests no session can accept,
//! sent at a steady rate from a UDP socket of their own, on a thread of their own (so the
//! callers' pacing measurements stay honest).
//!
//! Most requests name a made-up ufrag pair (`xxxxxxxx:yyyy`); one in [`FloodConfig::known_every`]
//! names a real session's ufrag (taken from a caller's answer, `a=ice-ufrag`) with a wrong
//! password. Every request is well-formed (RFC 5389/8445: USERNAME, PRIORITY,
//! ICE-CONTROLLING, a bogus MESSAGE-INTEGRITY and a correct FINGERPRINT), so the daemon has
//! to look at it as a browser's connectivity check before it can refuse it.
#![allow(clippy::disallowed_methods)] // the flood owns its thread, its socket and its clock

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

/// What to flood with.
#[derive(Debug, Clone)]
pub struct FloodConfig {
    /// Requests per second.
    pub pps: f64,
    /// When to start, counted from the first answer.
    pub delay: Duration,
    /// How long to flood.
    pub duration: Duration,
    /// The address the flood's socket binds (any port).
    pub from: IpAddr,
    /// One request in this many names a real session's ufrag (with a wrong password).
    pub known_every: u64,
}

/// One answered session: where the daemon listens and the ufrag it gave this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodTarget {
    pub server: SocketAddr,
    pub ufrag: String,
}

/// What the flood did.
#[derive(Debug, Clone, Default)]
pub struct FloodReport {
    /// Requests sent (the kernel took them).
    pub sent: u64,
    /// Of those, the ones that named a real session's ufrag.
    pub sent_known_ufrag: u64,
    /// Sends the kernel refused.
    pub send_errors: u64,
    /// From the first request to the last, seconds.
    pub seconds: f64,
}

impl FloodReport {
    /// Requests sent that named no session's ufrag.
    pub fn sent_unknown_ufrag(&self) -> u64 {
        self.sent - self.sent_known_ufrag
    }
}

/// How often the flood thread wakes to send what came due: at 20,000/s, batches of 20.
const BATCH_EVERY: Duration = Duration::from_millis(1);

/// Starts the flood thread. It waits for the first target and `config.delay`, floods for
/// `config.duration`
/// (or until `stop`), picking up the ufrags of later targets as they come, and returns what
/// it did.
pub fn spawn(
    config: FloodConfig,
    targets: Receiver<FloodTarget>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<FloodReport>> {
    let socket = UdpSocket::bind((config.from, 0))?;
    std::thread::Builder::new().name("load-flood".into()).spawn(move || flood(&config, &socket, &targets, &stop))
}

fn flood(config: &FloodConfig, socket: &UdpSocket, targets: &Receiver<FloodTarget>, stop: &AtomicBool) -> FloodReport {
    let mut report = FloodReport::default();
    let first = loop {
        match targets.recv_timeout(Duration::from_millis(50)) {
            Ok(t) => break t,
            Err(RecvTimeoutError::Timeout) if !stop.load(Ordering::Relaxed) => {}
            Err(_) => return report,
        }
    };
    let server = first.server;
    let mut ufrags = vec![first.ufrag];
    let begin = Instant::now() + config.delay;
    while !stop.load(Ordering::Relaxed) && Instant::now() < begin {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut rng = seeded();
    let mut buf = Vec::with_capacity(128);
    let start = Instant::now();
    let mut attempts = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let elapsed = start.elapsed();
        if elapsed >= config.duration {
            break;
        }
        ufrags.extend(targets.try_iter().map(|t| t.ufrag));
        let due = (elapsed.as_secs_f64() * config.pps) as u64;
        while attempts < due {
            attempts += 1;
            let known = attempts.is_multiple_of(config.known_every); // never for 0
            let username = if known {
                let ufrag = &ufrags[rng.below(ufrags.len() as u64) as usize];
                format!("{ufrag}:{}", alphanumeric(&mut rng, 4))
            } else {
                format!("{}:{}", alphanumeric(&mut rng, 8), alphanumeric(&mut rng, 4))
            };
            binding_request(&mut buf, &username, &mut rng);
            match socket.send_to(&buf, server) {
                Ok(_) => {
                    report.sent += 1;
                    report.sent_known_ufrag += u64::from(known);
                }
                Err(_) => report.send_errors += 1,
            }
        }
        std::thread::sleep(BATCH_EVERY);
    }
    report.seconds = start.elapsed().as_secs_f64();
    report
}

/// The daemon's UDP address (its first UDP host candidate) and this session's ufrag, from
/// an SDP answer.
pub fn answer_target(sdp: &str) -> Option<FloodTarget> {
    let ufrag = sdp.lines().find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))?.to_string();
    let server = sdp.lines().find_map(|l| {
        // a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ host
        let f: Vec<&str> = l.trim().strip_prefix("a=candidate:")?.split_whitespace().collect();
        if !f.get(2)?.eq_ignore_ascii_case("udp") {
            return None;
        }
        Some(SocketAddr::new(f.get(4)?.parse().ok()?, f.get(5)?.parse().ok()?))
    })?;
    Some(FloodTarget { server, ufrag })
}

const MAGIC_COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const USERNAME: u16 = 0x0006;
const MESSAGE_INTEGRITY: u16 = 0x0008;
const PRIORITY: u16 = 0x0024;
const ICE_CONTROLLING: u16 = 0x802A;
const FINGERPRINT: u16 = 0x8028;
const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Writes into `buf` a STUN Binding request as a browser's connectivity check looks, with
/// `username` and a random transaction id, tie-breaker and (bogus) MESSAGE-INTEGRITY.
pub fn binding_request(buf: &mut Vec<u8>, username: &str, rng: &mut Rng) {
    buf.clear();
    buf.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    buf.extend_from_slice(&[0, 0]); // length, set below
    buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    for _ in 0..3 {
        buf.extend_from_slice(&(rng.next_u64() as u32).to_be_bytes());
    }
    attribute(buf, USERNAME, username.as_bytes());
    // Priority of a peer-reflexive candidate, as browsers send it.
    attribute(buf, PRIORITY, &0x6E7F_1EFFu32.to_be_bytes());
    attribute(buf, ICE_CONTROLLING, &rng.next_u64().to_be_bytes());
    let mut integrity = [0u8; 20];
    for chunk in integrity.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_be_bytes()[..chunk.len()]);
    }
    attribute(buf, MESSAGE_INTEGRITY, &integrity);
    // The length covers the FINGERPRINT attribute (8 bytes) before its CRC is taken.
    let len = buf.len() - 20 + 8;
    set_length(buf, len);
    let fingerprint = crc32(buf) ^ FINGERPRINT_XOR;
    attribute(buf, FINGERPRINT, &fingerprint.to_be_bytes());
}

/// Appends one attribute, padded to 4 bytes.
fn attribute(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    buf.extend_from_slice(&kind.to_be_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_be_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn set_length(buf: &mut [u8], len: usize) {
    buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
}

/// CRC-32 (IEEE 802.3, as zlib and STUN's FINGERPRINT use it).
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !data.iter().fold(!0u32, |c, &b| TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8))
}

/// Made-up ufrags and transaction ids need no cryptography: the tests' seeded PRNG, seeded
/// from the operating system (through a v4 uuid) by [`seeded`].
pub use tapedeck_core::testkit::rng::Rng;

/// A generator seeded from the operating system (through a v4 uuid).
pub fn seeded() -> Rng {
    let v = uuid::Uuid::new_v4().as_u128();
    Rng::new(v as u64 ^ (v >> 64) as u64)
}

/// A string of `len` letters and digits.
fn alphanumeric(rng: &mut Rng, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| char::from(CHARS[rng.below(CHARS.len() as u64) as usize])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::ice::StunMessage;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_flood_request_is_a_binding_request_str0m_parses() {
        let mut buf = Vec::new();
        let mut rng = Rng::new(7);
        for username in ["abcdefgh:wxyz", "s3rv:c", "longerufrag123:q"] {
            binding_request(&mut buf, username, &mut rng);
            assert_eq!(buf.len() % 4, 0);
            assert_eq!(usize::from(u16::from_be_bytes([buf[2], buf[3]])), buf.len() - 20);
            let m = StunMessage::parse(&buf).expect("str0m parses it");
            assert!(m.is_binding_request());
            assert_eq!(m.username(), Some(username));
            assert!(m.prio().is_some());
            // FINGERPRINT: the CRC of everything before it, xor "STUN".
            let (head, tail) = buf.split_at(buf.len() - 8);
            assert_eq!(&tail[..4], &[0x80, 0x28, 0, 4]);
            assert_eq!(u32::from_be_bytes(tail[4..].try_into().unwrap()), crc32(head) ^ FINGERPRINT_XOR);
            // str0m's own multiplexing takes it as STUN, not as garbage.
            let any: SocketAddr = "127.0.0.1:1".parse().unwrap();
            assert!(str0m::net::Receive::new(str0m::net::Protocol::Udp, any, any, &buf).is_ok());
        }
    }

    #[test]
    fn the_target_comes_from_the_answer() {
        let sdp = "v=0\r\na=ice-lite\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:Ab12\r\n\
                   a=ice-pwd:secret\r\na=candidate:1 1 udp 2130706175 127.0.0.1 50123 typ host\r\n";
        let t = answer_target(sdp).unwrap();
        assert_eq!(t, FloodTarget { server: "127.0.0.1:50123".parse().unwrap(), ufrag: "Ab12".into() });
        assert_eq!(answer_target("v=0\r\na=ice-ufrag:x\r\n"), None, "no candidate");
    }
}
