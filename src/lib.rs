//! tapedeck: a WebRTC audio daemon. A caller posts an SDP offer over HTTP; tapedeck answers,
//! records everything the caller says to a WAV file, and plays one looped sample back to
//! every caller at once.
//!
//! # Threads
//!
//! ```text
//!  HTTP (tiny_http)                        UDP (a socket per loop)
//!  signalling threads --Command+Waker-->   event loops (mio, `--loops` threads loop-N;
//!  (+ a thread per offer,                   a call lives in one loop, the one with
//!   hang-up or listing)                     the fewest calls when it was offered)
//!                                           each reads the clock once a turn
//!                                           Engine (sans-IO, its calls' Rtcs)
//!                 Opus payloads + RTP time |        ^ the sample's Opus frames
//!                                          v        |
//!                          recorder workers       sample encoder thread
//!                          (shared by all loops)   one encoder for all loops,
//!                          jitter buffer, decode,  a fixed number of frames ahead,
//!                          WAV (hound)             until the frames repeat (then each
//!                                                  loop plays them itself)
//! ```
//!
//! The main thread starts everything, then waits for the loops. SIGTERM or `POST /drain`
//! drains (no new calls; calls go on up to `--drain-timeout`), SIGINT stops at once; the
//! loops end their calls and return, and the recorders finalize every file
//! ([`io::lifecycle`]).
//!
//! Beside them, off every loop: with `--upload`, one upload thread takes finished
//! recordings from the recorders (which only write a small journal entry) to object
//! storage ([`workers::uploads`]), and a thread per `--webhook` URL delivers events.
//!
//! # The run loop
//!
//! The core's `Engine` is driven by two calls only: `handle_input(now, input)` and
//! `poll_output()`, drained until it returns `Output::Timeout(deadline)`. The shell in
//! [`io`] does the rest each turn: read the clock, drain the command channel, let the engine
//! catch up with that one `now` and send the tick's frames, then drain the socket until
//! `WouldBlock` and carry out what that asks, then sleep until the deadline (a tick of the
//! sample clock, or a connecting session's timer; connected sessions' timers wait for the
//! tick), at most `io::RECV_EVERY`, or a command's wake-up: the socket does not wake the loop. Because the engine never reads
//! a clock, opens a socket or spawns a thread, the same engine runs in the simulated-network
//! tests.
//!
//! The loops, the recorders and the HTTP threads share [`telemetry::Telemetry`]:
//! relaxed counters for `/metrics`, each loop's heartbeat for `/healthz`, and each
//! recording's progress for `/sessions`. A loop writes its part once a turn, recorders once
//! a tick; no one waits on it.
//!
//! Errors are bad input (an `Err` with a clear message); panics are broken invariants, and
//! every `expect` says why it cannot fail. Network input never panics.
//!
//! # Modules
//!
//! The sans-IO core (engine, recorder, captures) is its own crate, `tapedeck-core`
//! (`crates/core`); this crate is the daemon around it:
//!
//! - [`io`]: the event loop, the HTTP API (offers, WHIP, sessions, health, metrics, token,
//!   CORS, client addresses behind proxies) and the demo page's assets.
//! - [`workers`]: the recorder pool (threads around the sans-IO recording pipeline, which the
//!   simulated-network tests drive too), the sample encoder thread, the uploads to object
//!   storage and the webhooks.
//! - [`telemetry`]: what the loop, the recorders and HTTP share for `/metrics`, `/healthz`
//!   and `/sessions`.
//! - [`config`], [`logging`]: the typed settings (flags, environment, TOML file; the token
//!   that never prints); console and capped, rotated file logs with session ids.
//!
//! The callers, `tapedeck-load` and `tapedeck-floor` live in the tools crate
//! (`crates/tools`).

pub mod config;
pub mod io;
pub mod logging;
pub mod telemetry;
pub mod workers;
