//! The signalling threads' request slots and replies.

use super::*;
use crossbeam_channel::bounded;

/// A thread builder whose threads cannot start: their stack would not fit in the
/// address space.
fn unstartable() -> std::thread::Builder {
    std::thread::Builder::new().stack_size(1 << 50)
}

#[test]
fn a_request_thread_that_cannot_start_gives_its_slot_back() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    for i in 0..MAX_IN_FLIGHT + 10 {
        let slot = Slot::take(&in_flight).unwrap_or_else(|| panic!("no slot free after {i} failed starts"));
        assert!(spawn_holding(unstartable(), slot, || {}).is_err(), "a thread with a 1 PiB stack started");
    }
    assert_eq!(in_flight.load(Ordering::Acquire), 0);
    // And requests are still served on threads of their own.
    let slot = Slot::take(&in_flight).expect("a free slot");
    let (tx, rx) = bounded(1);
    let served = spawn_holding(std::thread::Builder::new(), slot, move || tx.send(()).expect("the test waits"));
    served.expect("a thread starts").join().expect("the work does not panic");
    assert_eq!(rx.try_recv(), Ok(()));
    assert_eq!(in_flight.load(Ordering::Acquire), 0);
}

#[test]
fn a_request_thread_that_panics_gives_its_slot_back() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let slot = Slot::take(&in_flight).expect("a free slot");
    let thread = spawn_holding(std::thread::Builder::new(), slot, || panic!("a bug in a handler"));
    assert!(thread.expect("a thread starts").join().is_err());
    assert_eq!(in_flight.load(Ordering::Acquire), 0);
}

fn retry_after(reply: &Reply) -> Option<&str> {
    reply.headers.iter().find(|(n, _)| *n == "Retry-After").map(|(_, v)| v.as_str())
}

#[test]
fn too_many_connecting_asks_to_wait_the_stun_timeout() {
    let e = ApiError::TooManyConnecting("20 sessions from 192.0.2.1 not connected yet".into());
    for (stun_ms, secs) in [(5000, "5"), (4001, "5"), (500, "1"), (60_000, "60"), (0, "1")] {
        let reply = Reply::error(&e, Duration::from_millis(stun_ms));
        assert_eq!(reply.status, 429);
        assert_eq!(retry_after(&reply), Some(secs), "stun timeout {stun_ms} ms");
        assert_eq!(reply.content_type, "application/json");
        let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
        assert!(body["error"].as_str().is_some_and(|m| m.contains("192.0.2.1")), "{body}");
    }
    let full = Reply::error(&ApiError::Full(10), Duration::from_secs(5));
    assert_eq!((full.status, retry_after(&full)), (503, Some("1")));
    assert_eq!(retry_after(&Reply::error(&ApiError::NotFound, Duration::from_secs(5))), None);
}

#[test]
fn slots_run_out_at_the_limit_and_come_back() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let held: Vec<Slot> = (0..MAX_IN_FLIGHT).map(|_| Slot::take(&in_flight).expect("below the limit")).collect();
    assert!(Slot::take(&in_flight).is_none());
    assert_eq!(in_flight.load(Ordering::Acquire), MAX_IN_FLIGHT, "a refused take leaves the count alone");
    drop(held);
    assert_eq!(in_flight.load(Ordering::Acquire), 0);
    assert!(Slot::take(&in_flight).is_some());
}
