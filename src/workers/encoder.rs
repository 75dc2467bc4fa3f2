//! The sample encoder thread: one for all callers, a bounded number of frames ahead.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver};

use crate::media::sample::LoopEncoder;

/// Encoded frames kept ready beyond what the engine holds (at 10 ms, half a second).
pub const LOOKAHEAD_FRAMES: usize = 50;

/// The encoded frames of the looped sample, in order.
pub type Frames = Receiver<Arc<[u8]>>;

/// Starts the encoder thread. It stops by itself when the receiver is dropped.
pub fn spawn(mut encoder: LoopEncoder) -> std::io::Result<(Frames, JoinHandle<()>)> {
    let (tx, rx) = bounded(LOOKAHEAD_FRAMES);
    #[allow(clippy::disallowed_methods)] // workers own their threads
    let handle = std::thread::Builder::new().name("sample-encoder".into()).spawn(move || loop {
        let frame = match encoder.next_frame() {
            Ok(f) => f,
            Err(e) => {
                log::error!("sample encoder stopped: {e}");
                return;
            }
        };
        if tx.send(frame).is_err() {
            return;
        }
    })?;
    Ok((rx, handle))
}
