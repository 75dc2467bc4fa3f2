//! The looped sample: read once at start ([`load`]), then encoded by one thread for all
//! callers, a bounded number of frames ahead. Once its frames repeat (see
//! [`LoopEncoder::repeating`]), the thread hands the loop over and ends: from then on the
//! sample costs an `Arc` clone a frame.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver};

use tapedeck_core::media::sample::{decode, LoopEncoder, SampleError, SampleLoop};
use tapedeck_core::media::SAMPLE_RATE_HZ;

/// Encoded frames kept ready beyond what the engine holds (at 10 ms, half a second).
pub const LOOKAHEAD_FRAMES: usize = 50;

/// What the encoder thread hands the loop, in order.
#[derive(Debug)]
pub enum Sample {
    /// The next encoded frame.
    Frame(Arc<[u8]>),
    /// Every frame from here on; nothing follows.
    Loop(SampleLoop),
}

/// The looped sample's frames, in order.
pub type Frames = Receiver<Sample>;

/// Reads a WAV file as 48 kHz mono s16 (see the module docs for what is accepted) and logs
/// what was converted.
pub fn load(path: &Path) -> Result<Vec<i16>, SampleError> {
    let name = || path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| SampleError::Open { path: name(), source })?;
    let converted =
        decode(std::io::BufReader::new(file)).map_err(|source| SampleError::Refused { path: name(), source })?;
    log::info!("sample {}: {} -> {SAMPLE_RATE_HZ} Hz mono", path.display(), converted.source);
    Ok(converted.pcm)
}

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
        if tx.send(Sample::Frame(frame)).is_err() {
            return;
        }
        if let Some(repeating) = encoder.repeating() {
            log::debug!("the sample's frames repeat every {} frames: encoding done", repeating.len());
            let _ = tx.send(Sample::Loop(repeating));
            return;
        }
    })?;
    Ok((rx, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_names_the_file_it_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "shopping list\n").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains("not a WAV file"), "{err}");
        let missing = load(&dir.path().join("missing.wav")).unwrap_err();
        assert!(matches!(missing, SampleError::Open { .. }), "{missing:?}");
    }
}
