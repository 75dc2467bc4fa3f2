//! tapedeck's sans-IO core: everything the daemon decides, with no socket, thread, file or
//! clock of its own. Time is always an argument, writers are passed in, and the build enforces
//! it: this crate's `clippy.toml` bans clock reads, thread spawns, files and sockets.
//!
//! - [`engine`]: every `str0m::Rtc`, the session table, demultiplexing, the sample clock
//!   and the timers, driven by `handle_input(now, input)` and `poll_output()`.
//! - [`media`]: the recorder ([`media::recording`]: a timeline that follows the caller's
//!   media clock, jitter buffer, Opus decoding with FEC/PLC, drift taken up in silent
//!   stretches, WAV over `Write + Seek`; [`media::recording::Recorder`] and
//!   [`media::recording::replay`]), the capture format ([`media::capture`]), and the looped
//!   sample's conversion and encoding.
//! - [`session_id`]: a session's identity, and the session a thread's log lines are about.
//! - `testkit` and `fuzz` (feature `testkit`): an in-memory connected session, test audio,
//!   the seeded PRNG, and the functions the cargo-fuzz targets wrap.
//!
//! The daemon (the root crate) runs this against real sockets, threads and files; the
//! simulated-network tests run the very same types on a virtual clock.

pub mod engine;
#[cfg(any(test, feature = "testkit"))]
pub mod fuzz;
pub mod media;
pub mod session_id;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use session_id::SessionId;
