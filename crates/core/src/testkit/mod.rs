//! What tests, the fuzz targets and the tools share (the `testkit` feature; never in the
//! daemon's build): the one in-memory harness ([`world`]: the engine and N str0m callers on a
//! virtual clock, with a lossless or a seeded network between them), and on it an engine
//! with one connected caller ([`connected_pair`], for the fuzz targets) and `tapedeck-floor`'s
//! measurement of str0m's own cost ([`str0m_session_second`]); the offering caller every test
//! client starts from ([`offering`]); test audio ([`audio`]); and the one seeded PRNG
//! ([`rng`]).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use str0m::change::{SdpOffer, SdpPendingOffer};
use str0m::config::DtlsCert;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Rtc};

pub mod audio;
pub mod rng;
pub mod world;

use crate::engine::{opus_pt, Engine, EngineConfig, Input, OfferParams, Output, Ptime, SessionId};
use world::{Script, Silent, World};

/// The engine's address in the harness.
pub const SERVER: &str = "127.0.0.1:50000";
/// The caller's address in the harness.
pub const PEER: &str = "127.0.0.1:40000";

/// Offer parameters with a certificate generated once per process.
pub fn params() -> &'static OfferParams {
    static PARAMS: OnceLock<OfferParams> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let cert = str0m::crypto::from_feature_flags().dtls_provider.generate_certificate().expect("certificate");
        OfferParams { cert, candidate: SERVER.parse().expect("constant address") }
    })
}

/// A caller's `Rtc` with one send-and-receive Opus audio section, and the offer it made.
pub struct Offering {
    pub rtc: Rtc,
    pub mid: Mid,
    pub offer: SdpOffer,
    pub pending: SdpPendingOffer,
}

/// Builds an offering caller on `local` (its host candidate). `cert`: a DTLS certificate to
/// reuse (generating one per caller is the costliest part of building an `Rtc`).
pub fn offering(local: SocketAddr, now: Instant, cert: Option<DtlsCert>) -> Result<Offering, String> {
    let mut builder = Rtc::builder().clear_codecs().enable_opus(true, false).set_stats_interval(None);
    if let Some(cert) = cert {
        builder = builder.set_dtls_cert(cert);
    }
    let mut rtc = builder.build(now);
    rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| e.to_string())?);
    let mut api = rtc.sdp_api();
    let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = api.apply().ok_or("no offer to make")?;
    Ok(Offering { rtc, mid, offer, pending })
}

/// A caller in memory: its `Rtc` and audio mid.
pub struct Peer {
    pub rtc: Rtc,
    pub mid: Mid,
}

/// An engine (sample packet time `ptime`) whose one session, id 1, is connected to `Peer`
/// (at [`PEER`], sending nothing), and the virtual time it connected at.
pub fn connected_pair(ptime: Ptime) -> Option<(Engine, Peer, Instant)> {
    let mut world = pair(ptime, Arc::default(), Box::new(Silent))?;
    let caller = world.callers.pop()?;
    Some((world.engine, Peer { rtc: caller.rtc, mid: caller.mid }, world.now))
}

/// Milliseconds of the engine's own work (str0m: ICE, SRTP, RTP/RTCP, plus the engine's
/// bookkeeping) per second of one session's two-way audio: the server sends a frame every
/// `ptime`, the caller every `caller_ptime`. Sockets and codecs are not included. Measured
/// over 20 s of virtual time; only the engine's calls are timed, not the caller's. (Its own
/// loop, not the world's: the floor every cost ratio divides by keeps the measurement it has
/// always had, stepping only when the engine or the caller's next frame is due.)
pub fn str0m_session_second(ptime: Ptime, caller_ptime: Duration) -> f64 {
    str0m_sessions_second(ptime, caller_ptime, 1)
}

/// [`str0m_session_second`] with `sessions` pairs taking turns (each an engine with one
/// connected caller, each on its own virtual clock; the pair furthest behind goes next), as a
/// daemon's sessions do: each turn then finds its session's state out of the CPU caches.
/// Milliseconds per session-second, averaged over the pairs; NaN if a pair did not connect.
pub fn str0m_sessions_second(ptime: Ptime, caller_ptime: Duration, sessions: usize) -> f64 {
    struct Pair {
        engine: Engine,
        peer: Peer,
        pt: str0m::media::Pt,
        start: Instant,
        now: Instant,
        next_send: Instant,
        rtp: u64,
    }
    let frame: Arc<[u8]> = Arc::from(vec![0x48u8; 60]);
    let server: SocketAddr = SERVER.parse().expect("const");
    let peer_addr: SocketAddr = PEER.parse().expect("const");
    let mut pairs = Vec::new();
    for _ in 0..sessions.max(1) {
        let Some((engine, mut peer, now)) = connected_pair(ptime) else { return f64::NAN };
        let Ok(pt) = opus_pt(&mut peer.rtc, peer.mid) else { return f64::NAN };
        pairs.push(Pair { engine, peer, pt, start: now, now, next_send: now, rtp: 0 });
    }
    let length = Duration::from_secs(20);
    let mut spent = Duration::ZERO;
    let mut to_server: Vec<Vec<u8>> = Vec::new();
    let mut to_peer = Vec::new();
    // The pair furthest behind goes next (not timed).
    while let Some(p) = pairs.iter_mut().filter(|p| p.now < p.start + length).min_by_key(|p| p.now - p.start) {
        let now = p.now;
        // The caller (not timed).
        if now >= p.next_send {
            if let Some(w) = p.peer.rtc.writer(p.peer.mid) {
                let _ = w.write(p.pt, now, MediaTime::new(p.rtp, Frequency::FORTY_EIGHT_KHZ), frame.clone());
            }
            p.rtp += caller_ptime.as_micros() as u64 * 48 / 1000;
            p.next_send += caller_ptime;
        }
        let _ = p.peer.rtc.handle_input(str0m::Input::Timeout(now));
        while let Ok(out) = p.peer.rtc.poll_output() {
            match out {
                str0m::Output::Transmit(t) => to_server.push(t.contents.into()),
                str0m::Output::Timeout(_) => break,
                str0m::Output::Event(_) => {}
            }
        }
        // The engine (timed).
        #[allow(clippy::disallowed_methods)] // a measurement of the engine's work in real time
        let t = Instant::now();
        for d in to_server.drain(..) {
            let _ =
                p.engine.handle_input(now, Input::Datagram { source: peer_addr, destination: server, contents: &d });
        }
        for _ in 0..p.engine.wants_frames() {
            let _ = p.engine.handle_input(now, Input::SampleFrame(frame.clone()));
        }
        let _ = p.engine.handle_input(now, Input::Timeout);
        let deadline = loop {
            match p.engine.poll_output() {
                Output::Transmit { contents, .. } => to_peer.push(contents),
                Output::Timeout(d) => break d,
                _ => {}
            }
        };
        spent += t.elapsed();
        for d in to_peer.drain(..) {
            if let Ok(r) = Receive::new(Protocol::Udp, server, peer_addr, &d) {
                let _ = p.peer.rtc.handle_input(str0m::Input::Receive(now, r));
            }
        }
        p.now = deadline.min(p.next_send).max(now + Duration::from_micros(100));
    }
    spent.as_secs_f64() * 1000.0 / length.as_secs_f64() / pairs.len() as f64
}

/// A lossless world whose engine (packet time `ptime`, playing `sample`) has one session,
/// id 1, connected to a caller at [`PEER`] following `script`; `None` if it did not connect
/// within a second.
fn pair(ptime: Ptime, sample: world::Frames, script: Box<dyn Script>) -> Option<World> {
    let config = EngineConfig {
        ptime,
        disconnect_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        max_call_duration: None,
        max_sessions: 4,
        max_connecting_per_client: 4,
        stun_timeout: Duration::from_secs(5),
    };
    let mut world = World::new(config, sample);
    let id = SessionId::from_u128(1);
    world.offer(id, PEER.parse().ok()?, None, script).ok()?;
    let end = world.now + Duration::from_secs(1);
    world.run_until(end, |w| w.connected(id)).then_some(world)
}
