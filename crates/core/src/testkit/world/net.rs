//! A seeded network for the world: latency, jitter, random and burst loss, reordering and
//! duplication, set apart for each direction, drawn from the one seeded PRNG. The same seed
//! and the same traffic give the same fates.

use std::time::Duration;

use super::{Fate, Network};
use crate::testkit::rng::Rng;

/// Conditions on one direction of the network.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetConfig {
    pub latency: Duration,
    /// Extra delay, uniform in [0, jitter).
    pub jitter: Duration,
    /// Probability a datagram is lost (independent losses).
    pub loss: f64,
    /// Gilbert-Elliott bursts: (probability to enter the lossy state, to leave it). In the
    /// lossy state every datagram is lost.
    pub burst: Option<(f64, f64)>,
    /// Probability a datagram is held back 20 to 60 ms (arrives after later ones).
    pub reorder: f64,
    /// Probability a datagram arrives twice (the copy 5 ms after the first).
    pub duplicate: f64,
}

/// A network with seeded impairments: `up` from the callers to the engine, `down` back.
#[derive(Debug, Clone)]
pub struct SeededNet {
    rng: Rng,
    up: NetConfig,
    down: NetConfig,
    up_bursting: bool,
    down_bursting: bool,
}

impl SeededNet {
    pub fn new(seed: u64, up: NetConfig, down: NetConfig) -> Self {
        SeededNet { rng: Rng::new(seed), up, down, up_bursting: false, down_bursting: false }
    }
}

impl Network for SeededNet {
    fn fate(&mut self, upstream: bool) -> Fate {
        let (net, bursting) =
            if upstream { (self.up, &mut self.up_bursting) } else { (self.down, &mut self.down_bursting) };
        if let Some((enter, leave)) = net.burst {
            let r = self.rng.f64();
            *bursting = if *bursting { r >= leave } else { r < enter };
            if *bursting {
                return Fate::Lost;
            }
        }
        if net.loss > 0.0 && self.rng.f64() < net.loss {
            return Fate::Lost;
        }
        let mut delay = net.latency;
        if net.jitter > Duration::ZERO {
            delay += net.jitter.mul_f64(self.rng.f64());
        }
        if net.reorder > 0.0 && self.rng.f64() < net.reorder {
            delay += Duration::from_millis(20) + Duration::from_millis(40).mul_f64(self.rng.f64());
        }
        if net.duplicate > 0.0 && self.rng.f64() < net.duplicate {
            return Fate::Twice(delay, delay + Duration::from_millis(5));
        }
        Fate::After(delay)
    }
}
