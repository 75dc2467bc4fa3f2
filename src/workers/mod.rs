//! Threads that do the work measured in milliseconds, off the event loop: recording
//! (jitter buffer, Opus decoding, WAV writing), encoding the looped sample, uploading
//! finished recordings to object storage, and delivering webhooks.

pub mod encoder;
pub mod recorder;
pub mod uploads;
pub mod webhooks;
