//! Audio: the per-call recorder (jitter buffer, Opus decoding with concealment, WAV) and the
//! looped sample (loading, conversion, Opus encoding). Sans-IO: callers pass the writers,
//! the PCM and the time.

pub mod capture;
pub mod recording;
pub mod sample;
