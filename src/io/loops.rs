//! The event loops as the signalling threads see them: where to send a new call, and how to
//! reach every loop's calls.
//!
//! Each loop ([`super::EventLoop`]) owns its calls, its UDP socket and its engine. A new call
//! takes a seat ([`Seats::take`]) in the loop with the fewest calls; the loop gives the seat
//! back when the call ends (or when its engine refused it), so the count is exact whatever
//! the order of events, and `--max-sessions` holds across all loops.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;

use super::Command;
use tapedeck_core::engine::OfferParams;

/// How signalling reaches one loop.
pub struct LoopHandle {
    /// The certificate and this loop's candidate (its socket's address).
    pub params: OfferParams,
    pub commands: Sender<Command>,
    pub waker: Arc<mio::Waker>,
}

impl LoopHandle {
    pub fn candidate(&self) -> SocketAddr {
        self.params.candidate
    }
}

/// Calls held, by loop and in all, against the session limit.
pub struct Seats {
    max: usize,
    total: AtomicUsize,
    by_loop: Vec<AtomicUsize>,
}

/// A seat taken in a loop; the loop gives it back ([`Seats::release`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seat {
    pub loop_index: usize,
}

impl Seats {
    /// Seats for `max` calls over `loops` loops (at least one).
    pub fn new(max: usize, loops: usize) -> Self {
        Seats { max, total: AtomicUsize::new(0), by_loop: (0..loops.max(1)).map(|_| AtomicUsize::new(0)).collect() }
    }

    /// A seat in the loop with the fewest calls (the lowest index among equals), or `None`
    /// when `max` calls are held.
    pub fn take(&self) -> Option<Seat> {
        self.total.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1)).ok()?;
        let loop_index = (0..self.by_loop.len())
            .min_by_key(|&i| self.by_loop[i].load(Ordering::Acquire))
            .expect("at least one loop");
        self.by_loop[loop_index].fetch_add(1, Ordering::AcqRel);
        Some(Seat { loop_index })
    }

    /// A call of loop `loop_index` ended, or never began.
    pub fn release(&self, loop_index: usize) {
        let dec = |n: usize| n.checked_sub(1);
        if self.by_loop[loop_index].fetch_update(Ordering::AcqRel, Ordering::Acquire, dec).is_err()
            || self.total.fetch_update(Ordering::AcqRel, Ordering::Acquire, dec).is_err()
        {
            log::error!("loop {loop_index} gave back a seat it did not hold");
        }
    }

    /// Calls held, by loop.
    pub fn by_loop(&self) -> Vec<usize> {
        self.by_loop.iter().map(|n| n.load(Ordering::Acquire)).collect()
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_go_to_the_loop_with_the_fewest_and_the_limit_holds_across_loops() {
        let seats = Seats::new(5, 2);
        let taken: Vec<usize> = (0..4).map(|_| seats.take().unwrap().loop_index).collect();
        assert_eq!(taken, [0, 1, 0, 1]);
        seats.release(0);
        seats.release(0);
        assert_eq!(seats.by_loop(), [0, 2]);
        assert_eq!(seats.take().unwrap().loop_index, 0);
        assert_eq!(seats.by_loop(), [1, 2]);
        assert_eq!(seats.take().unwrap().loop_index, 0);
        assert_eq!(seats.take().unwrap().loop_index, 0, "the lowest index among equals");
        assert_eq!(seats.by_loop(), [3, 2]);
        assert_eq!(seats.take(), None, "5 calls are held");
        seats.release(1);
        assert_eq!(seats.take().unwrap().loop_index, 1);
    }

    #[test]
    fn a_seat_given_back_twice_does_not_make_room() {
        let seats = Seats::new(1, 1);
        seats.take().unwrap();
        seats.release(0);
        seats.release(0); // logged, not counted
        assert_eq!(seats.by_loop(), [0]);
        seats.take().unwrap();
        assert_eq!(seats.take(), None);
    }
}
