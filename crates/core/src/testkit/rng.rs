//! The one seeded PRNG of the tests and tools (xorshift64*): runs do not depend on a crate's
//! stream, and a seed replays a run exactly. Not for anything that needs to be unguessable.

/// A small seeded PRNG.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is mapped to 1, which xorshift needs).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n) (n > 0; the modulo bias is negligible for the small n tests use).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The seed for a test scenario: `TAPEDECK_SEED` if set (to replay a failure), else
/// `default`. Printed, so a failing run shows it.
pub fn seed(default: u64) -> u64 {
    let seed = std::env::var("TAPEDECK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    eprintln!("seed {seed} (replay with TAPEDECK_SEED={seed})");
    seed
}
