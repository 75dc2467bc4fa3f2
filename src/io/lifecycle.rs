//! The daemon's life after start, shared by the signal thread, the signalling threads and
//! every event loop: running; draining (no new calls, the calls in progress go on up to the
//! drain timeout); stopping (every call ends now). Each step only goes forward.
//!
//! SIGTERM and `POST /drain` drain; SIGINT, or SIGTERM while draining, stops. A loop ends its
//! calls (and finalizes their recordings) when the daemon stops, or when it drains and the
//! loop has no call left or the drain timeout has passed ([`Lifecycle::ends_calls`]).
#![allow(clippy::disallowed_methods)] // the shell reads the clock

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const STOPPING: u8 = 2;

/// Where the daemon is in its life; see the module docs.
pub struct Lifecycle {
    state: AtomicU8,
    /// When draining began (set once).
    drain_began: OnceLock<Instant>,
    drain_timeout: Duration,
    /// Each loop's waker: a step wakes every loop to act on it.
    wakers: Vec<Arc<mio::Waker>>,
}

/// The daemon's state, as `/healthz` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    /// Since this instant.
    Draining(Instant),
    Stopping,
}

impl Lifecycle {
    pub fn new(drain_timeout: Duration, wakers: Vec<Arc<mio::Waker>>) -> Self {
        Lifecycle { state: AtomicU8::new(RUNNING), drain_began: OnceLock::new(), drain_timeout, wakers }
    }

    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            RUNNING => State::Running,
            DRAINING => State::Draining(*self.drain_began.get().expect("set before the state")),
            _ => State::Stopping,
        }
    }

    /// Whether new calls are taken.
    pub fn accepting(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING
    }

    /// Starts draining, if running; returns whether this call started it.
    pub fn drain(&self) -> bool {
        self.drain_began.get_or_init(Instant::now);
        let started = self.state.compare_exchange(RUNNING, DRAINING, Ordering::AcqRel, Ordering::Acquire).is_ok();
        if started {
            log::info!("draining: no new calls; calls in progress may go on for {:?}", self.drain_timeout);
            self.wake();
        }
        started
    }

    /// Ends every call now.
    pub fn stop(&self) {
        if self.state.swap(STOPPING, Ordering::AcqRel) != STOPPING {
            self.wake();
        }
    }

    /// A signal: SIGTERM drains (a second one stops), anything else stops.
    pub fn signal(&self, drain: bool) {
        if !(drain && self.drain()) {
            self.stop();
        }
    }

    /// When a draining daemon ends the calls still going.
    pub fn drain_deadline(&self) -> Option<Instant> {
        match self.state() {
            State::Draining(began) => Some(began + self.drain_timeout),
            _ => None,
        }
    }

    /// Whether a loop with `sessions` calls should end them at `now` (see the module docs).
    pub fn ends_calls(&self, now: Instant, sessions: usize) -> bool {
        match self.state() {
            State::Running => false,
            State::Draining(began) => sessions == 0 || now >= began + self.drain_timeout,
            State::Stopping => true,
        }
    }

    fn wake(&self) {
        for waker in &self.wakers {
            if let Err(e) = waker.wake() {
                log::error!("cannot wake an event loop: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_lets_calls_go_on_until_the_timeout_and_stopping_ends_them() {
        let life = Lifecycle::new(Duration::from_secs(10), Vec::new());
        let t0 = Instant::now();
        assert!(life.accepting() && !life.ends_calls(t0, 3));
        life.signal(true);
        assert!(!life.accepting());
        let State::Draining(began) = life.state() else { panic!("{:?}", life.state()) };
        assert!(!life.ends_calls(began, 3), "calls end before the drain timeout");
        assert!(life.ends_calls(began, 0), "a loop without calls is done draining");
        assert!(life.ends_calls(began + Duration::from_secs(10), 3), "the drain timeout ends calls");
        assert_eq!(life.drain_deadline(), Some(began + Duration::from_secs(10)));
        life.signal(true); // a second SIGTERM
        assert_eq!(life.state(), State::Stopping);
        assert!(life.ends_calls(began, 3));
        life.drain(); // never goes back
        assert_eq!(life.state(), State::Stopping);
    }

    #[test]
    fn sigint_stops_at_once() {
        let life = Lifecycle::new(Duration::from_secs(10), Vec::new());
        life.signal(false);
        assert_eq!(life.state(), State::Stopping);
        assert!(life.ends_calls(Instant::now(), 5));
    }
}
