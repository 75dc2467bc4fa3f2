//! Threads that do the work measured in milliseconds, off the event loop: recording
//! (jitter buffer, Opus decoding, WAV writing) and encoding the looped sample.

pub mod encoder;
pub mod recorder;
