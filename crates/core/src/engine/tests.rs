//! The engine against in-memory str0m callers on a virtual clock, on the testkit's world
//! with its instant, lossless network: no sockets, no threads.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use str0m::Candidate;

use super::*;
use crate::testkit::rng::Rng;
use crate::testkit::world::{caller_addr, Steady, World};
use crate::testkit::SERVER;

fn config() -> EngineConfig {
    EngineConfig {
        ptime: Ptime::Ms10,
        disconnect_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(3),
        max_call_duration: None,
        max_sessions: 2,
        max_connecting_per_client: 2,
        stun_timeout: Duration::from_secs(2),
    }
}

/// A world playing a three-byte Opus packet in a loop (the engine sends sample frames unread).
fn world() -> World {
    World::new(config(), Arc::new(vec![Arc::from(&[0xf8u8, 0xff, 0xfe][..])]))
}

/// A new caller offers as session `n`; returns the session id and the engine's verdict.
fn offer(w: &mut World, n: u128) -> (SessionId, Result<(), EngineError>) {
    offer_from(w, n, None)
}

/// [`offer`] from the client address `client`, as the HTTP layer knows it. Once connected,
/// the caller sends a valid 20 ms Opus packet (SILK WB, no audio) every 20 ms: all the
/// engine needs to forward.
fn offer_from(w: &mut World, n: u128, client: Option<IpAddr>) -> (SessionId, Result<(), EngineError>) {
    let id = SessionId::from_u128(n);
    let caller = Steady::new(Arc::from(&[0x48u8, 0x00][..]), Duration::from_millis(20));
    (id, w.offer(id, caller_addr(n), client, Box::new(caller)))
}

#[test]
fn a_call_connects_carries_media_both_ways_and_hangs_up() {
    let mut w = world();
    let (id, verdict) = offer(&mut w, 1);
    assert_eq!(verdict, Ok(()));
    w.run(Duration::from_secs(2));
    assert!(w.outputs.iter().any(|o| matches!(o, Output::Connected { session, .. } if *session == id)));
    let media = w.media_count(id);
    assert!(media > 80, "only {media} packets reached the recorder");
    assert!(w.callers[0].received > 150, "the caller got only {} sample frames", w.callers[0].received);
    let seqs: Vec<u64> = w
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::Media { packet, .. } => Some(packet.seq),
            _ => None,
        })
        .collect();
    assert!(seqs.windows(2).all(|p| p[1] > p[0]), "sequence numbers go backwards");
    assert_eq!(w.engine.handle_input(w.now, Input::Hangup(id)), Ok(()));
    w.step();
    let (reason, duration) = w.ended(id).expect("ended");
    assert_eq!(reason, EndReason::Hangup);
    assert!(duration.unwrap() > Duration::from_millis(1800));
    assert_eq!(w.engine.session_count(), 0);
    assert_eq!(w.engine.handle_input(w.now, Input::Hangup(id)), Err(EngineError::UnknownSession(id)));
}

#[test]
fn garbage_datagrams_are_dropped_without_harm() {
    let mut w = world();
    let (id, _) = offer(&mut w, 1);
    w.run(Duration::from_millis(500));
    let caller = w.callers[0].addr;
    let stranger: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let server: SocketAddr = SERVER.parse().unwrap();
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for i in 0..2000usize {
        let seed = rng.next_u64();
        let len = (seed % 1300) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|j| (seed >> (j % 56)) as u8).collect();
        // Make some look like STUN, DTLS or RTP so they reach deeper parsers.
        if let Some(b) = bytes.first_mut() {
            *b = [0x00, 0x01, 0x16, 0x17, 0x80, 0x90][i % 6];
        }
        let source = if i % 2 == 0 { caller } else { stranger };
        let _ = w.engine.handle_input(w.now, Input::Datagram { source, destination: server, contents: &bytes });
    }
    let before = w.media_count(id);
    w.run(Duration::from_millis(500));
    assert!(w.media_count(id) > before + 15, "the call stopped after garbage");
    assert!(w.engine.stats().dropped.total() > 0);
}

#[test]
fn the_session_limit_and_shutdown_refuse_offers() {
    let mut w = world();
    assert_eq!(offer(&mut w, 1).1, Ok(()));
    assert_eq!(offer(&mut w, 2).1, Ok(()));
    assert_eq!(offer(&mut w, 3).1, Err(EngineError::Full(2)));
    w.run(Duration::from_millis(300));
    let _ = w.engine.handle_input(w.now, Input::Shutdown);
    w.step();
    for n in [1, 2] {
        assert_eq!(w.ended(SessionId::from_u128(n)).map(|e| e.0), Some(EndReason::Shutdown));
    }
    assert!(w.engine.is_done());
    assert_eq!(offer(&mut w, 4).1, Err(EngineError::ShuttingDown));
}

#[test]
fn a_session_nobody_sends_an_ice_check_to_is_dropped_after_the_stun_timeout() {
    let mut w = world();
    let (id, _) = offer(&mut w, 1);
    // The caller never talks: cut it off before its first STUN.
    w.callers[0].rtc.disconnect();
    w.run(Duration::from_millis(1900));
    assert_eq!(w.ended(id), None);
    w.run(Duration::from_millis(200));
    // config(): stun_timeout 2 s, well before the connect timeout of 3 s.
    assert_eq!(w.ended(id), Some((EndReason::NoIceCheck, None)));
}

#[test]
fn a_session_mid_handshake_is_dropped_after_the_connect_timeout() {
    let mut w = world();
    let (id, _) = offer(&mut w, 1);
    // ICE checks arrive, DTLS never does: the session is mid-handshake.
    w.callers[0].only_stun = true;
    w.run(Duration::from_millis(2900));
    assert_eq!(w.ended(id), None, "a session that got ICE checks waits for the connect timeout");
    w.run(Duration::from_millis(200));
    assert_eq!(w.ended(id), Some((EndReason::ConnectTimeout, None)));
}

/// A STUN Binding request for `username` (`<server ufrag>:<caller ufrag>`) with a
/// MESSAGE-INTEGRITY made with no password anyone has: it parses, and fails the check.
fn forged_binding_request(username: &str, transaction: u8) -> Vec<u8> {
    let mut attributes = Vec::new();
    let mut put = |kind: u16, value: &[u8]| {
        attributes.extend_from_slice(&kind.to_be_bytes());
        attributes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        attributes.extend_from_slice(value);
        attributes.resize(attributes.len().next_multiple_of(4), 0);
    };
    put(0x0006, username.as_bytes()); // USERNAME
    put(0x0024, &[0x6e, 0x00, 0x01, 0xff]); // PRIORITY
    put(0x0008, &[0xa5; 20]); // MESSAGE-INTEGRITY
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    m.extend_from_slice(&[transaction; 12]);
    m.extend_from_slice(&attributes);
    m
}

#[test]
fn stray_datagrams_are_routed_by_ufrag_or_dropped_and_counted_by_reason() {
    let mut w = world();
    let (first, _) = offer(&mut w, 1);
    let (second, _) = offer(&mut w, 2);
    w.run(Duration::from_millis(500));
    let server: SocketAddr = SERVER.parse().unwrap();
    let stranger: SocketAddr = "127.0.0.2:9".parse().unwrap();
    let ufrag = |id: SessionId| String::from_utf8(w.engine.sessions.get(&id).unwrap().ufrag().to_vec()).unwrap();
    let (ufrag1, ufrag2) = (ufrag(first), ufrag(second));
    let before = w.engine.stats().dropped;
    let send = |w: &mut World, bytes: &[u8]| {
        let _ =
            w.engine.handle_input(w.now, Input::Datagram { source: stranger, destination: server, contents: bytes });
    };
    for i in 0..50u8 {
        send(&mut w, &forged_binding_request(&format!("made{i}:up"), i));
    }
    send(&mut w, &forged_binding_request(&format!("{ufrag1}:whatever"), 99));
    send(&mut w, &forged_binding_request(&format!("{ufrag2}:whatever"), 98));
    let mut rtp = vec![0x80, 111, 0, 1, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
    rtp.extend_from_slice(&[0x48; 40]);
    send(&mut w, &rtp);
    send(&mut w, &[0x16, 0xfe, 0xfd, 0, 0]); // a DTLS record header
    send(&mut w, &[0x42; 30]); // not WebRTC at all
    let d = w.engine.stats().dropped;
    assert_eq!(d.stun_unknown_ufrag - before.stun_unknown_ufrag, 50, "{d:?}");
    assert_eq!(d.stun_rejected - before.stun_rejected, 2, "{d:?}");
    assert_eq!(d.unknown_source - before.unknown_source, 3, "RTP, DTLS and garbage from a stranger: {d:?}");
    assert!(!w.engine.by_remote.contains_key(&stranger), "a forged check bound the stranger to a session");
    // The calls go on, and a caller whose NAT moved it (a new port, valid checks) is followed.
    let moved: SocketAddr = "127.0.0.1:41001".parse().unwrap();
    w.callers[0].addr = moved;
    w.callers[0].rtc.add_local_candidate(Candidate::host(moved, "udp").unwrap());
    let before = (w.media_count(first), w.media_count(second));
    w.run(Duration::from_secs(1));
    assert!(w.media_count(second) > before.1 + 30, "the other call stopped");
    assert!(w.media_count(first) > before.0 + 10, "the caller that moved was not followed");
    assert_eq!(w.engine.by_remote.get(&moved), Some(&first));
}

#[test]
fn sessions_not_yet_connected_are_limited_per_client_address() {
    let mut w = world();
    w.engine.config.max_sessions = 10;
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "192.0.2.2".parse().unwrap();
    // config(): two sessions still connecting per client.
    assert_eq!(offer_from(&mut w, 1, Some(a)).1, Ok(()));
    assert_eq!(offer_from(&mut w, 2, Some(a)).1, Ok(()));
    assert_eq!(offer_from(&mut w, 3, Some(a)).1, Err(EngineError::TooManyConnecting(a, 2)));
    assert_eq!(offer_from(&mut w, 4, Some(b)).1, Ok(()), "another client is not affected");
    assert_eq!(offer_from(&mut w, 5, None).1, Ok(()), "sessions of no known client are not counted");
    // Once a's sessions connect, they no longer count against it.
    w.run(Duration::from_secs(1));
    assert!(w.outputs.iter().filter(|o| matches!(o, Output::Connected { .. })).count() >= 2);
    assert_eq!(offer_from(&mut w, 6, Some(a)).1, Ok(()));
    assert_eq!(offer_from(&mut w, 7, Some(a)).1, Ok(()));
    assert_eq!(offer_from(&mut w, 8, Some(a)).1, Err(EngineError::TooManyConnecting(a, 2)));
}

#[test]
fn a_caller_that_goes_quiet_is_ended_after_twice_the_disconnect_timeout() {
    let mut w = world();
    let (id, _) = offer(&mut w, 1);
    w.run(Duration::from_secs(1));
    w.callers[0].rtc.disconnect();
    w.run(Duration::from_millis(1800));
    assert_eq!(w.ended(id), None, "ended too early");
    w.run(Duration::from_millis(400));
    let (reason, duration) = w.ended(id).expect("ended");
    assert_eq!(reason, EndReason::IceTimeout);
    // Connected within the first second, quiet from 1 s, ended 2 s (twice the timeout) later.
    let d = duration.unwrap();
    assert!(d > Duration::from_millis(2500) && d <= Duration::from_millis(3100), "ended after {d:?}");
}

#[test]
fn a_sample_frame_goes_out_in_the_turn_it_is_due() {
    // str0m packetizes written media only on a timeout: the engine must see to it within
    // the turn of the tick, or every frame would leave a turn late.
    let (mut engine, _peer, mut now) = crate::testkit::connected_pair(Ptime::Ms10).expect("connected");
    let frame: Arc<[u8]> = Arc::from(vec![0x48u8; 60]);
    let mut ticks = 0;
    for _ in 0..100 {
        for _ in 0..engine.wants_frames() {
            engine.handle_input(now, Input::SampleFrame(frame.clone())).unwrap();
        }
        now += Duration::from_millis(1);
        let before = engine.stats().sample_frames;
        engine.handle_input(now, Input::Timeout).unwrap();
        let taken = engine.stats().sample_frames - before;
        let mut large = 0; // the frame plus RTP and SRTP overhead
        let next = loop {
            match engine.poll_output() {
                Output::Transmit { contents, .. } if contents.len() >= frame.len() + 12 => large += 1,
                Output::Timeout(t) => break t,
                _ => {}
            }
        };
        if taken > 0 {
            ticks += 1;
            assert!(large >= taken, "{taken} frames were due at this tick, yet {large} audio packets went out");
            assert!(next > now, "the engine wants to be woken again at once ({next:?} <= {now:?})");
        }
    }
    assert!(ticks >= 9, "100 ms at a 10 ms packet time made only {ticks} ticks");
}

#[test]
fn sessions_spread_evenly_over_recorder_shards() {
    let mut rng = Rng::new(7);
    let ids: Vec<SessionId> = (0..4000)
        .map(|_| {
            let bytes = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())).to_le_bytes();
            SessionId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
        })
        .collect();
    for n in [1, 2, 3, 8] {
        let mut counts = vec![0usize; n];
        for id in &ids {
            counts[id.shard(n)] += 1;
        }
        let even = ids.len() / n;
        assert!(counts.iter().all(|&c| c.abs_diff(even) <= even / 10 + 5), "{n} shards: {counts:?}");
    }
}

/// The engine takes sample frames only while someone listens, and lets go of those it held
/// when the last listener leaves: the next one starts with fresh frames, in step with the
/// daemon's other loops (which go on taking frames meanwhile).
#[test]
fn sample_frames_are_taken_only_while_someone_listens() {
    let (mut engine, _peer, mut now) = crate::testkit::connected_pair(Ptime::Ms10).expect("connected");
    let frame: Arc<[u8]> = Arc::from(vec![0x48u8; 60]);
    assert_eq!(engine.wants_frames(), SAMPLE_QUEUE, "a connected caller listens");
    for _ in 0..SAMPLE_QUEUE {
        engine.handle_input(now, Input::SampleFrame(frame.clone())).unwrap();
    }
    assert_eq!(engine.wants_frames(), 0, "the queue is full");
    let id = engine.sessions()[0].id;
    engine.handle_input(now, Input::Hangup(id)).unwrap();
    while !matches!(engine.poll_output(), Output::Timeout(_)) {}
    now += Duration::from_millis(20);
    engine.handle_input(now, Input::Timeout).unwrap();
    while !matches!(engine.poll_output(), Output::Timeout(_)) {}
    assert_eq!(engine.wants_frames(), 0, "nobody listens: no frame is taken");
    assert_eq!(engine.frames.len(), 0, "the frames held for the caller who left are let go");
    let idle = Engine::new(engine.config.clone(), now);
    assert_eq!(idle.wants_frames(), 0, "no caller yet");
}

/// `--max-call-duration`: a call still going (the caller keeps talking) is ended at its
/// longest, on the tick it is due, and the caller is told (DTLS close).
#[test]
fn a_call_is_ended_when_it_reaches_the_longest_call_duration() {
    let mut config = config();
    config.max_call_duration = Some(Duration::from_secs(2));
    let mut w = World::new(config, Arc::new(vec![Arc::from(&[0xf8u8, 0xff, 0xfe][..])]));
    let (id, _) = offer(&mut w, 1);
    w.run(Duration::from_millis(1500));
    assert_eq!(w.ended(id), None, "ended too early");
    w.run(Duration::from_millis(1500));
    let (reason, duration) = w.ended(id).expect("ended");
    assert_eq!(reason, EndReason::MaxDuration);
    let d = duration.unwrap();
    assert!(d >= Duration::from_secs(2) && d <= Duration::from_millis(2010), "ended after {d:?}");
    assert!(!w.callers[0].rtc.is_alive(), "the caller was not told the call ended");
}
