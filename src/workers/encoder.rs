//! The looped sample: read once at start ([`load`]), then encoded by one thread for every
//! event loop, a bounded number of frames ahead. Once its frames repeat (see
//! [`LoopEncoder::repeating`]), the thread hands the loop over and ends: from then on the
//! sample costs an `Arc` clone a frame.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Select, SendTimeoutError, Sender, TrySendError};

use tapedeck_core::media::sample::{decode, LoopEncoder, SampleError, SampleLoop};
use tapedeck_core::media::SAMPLE_RATE_HZ;

/// Encoded frames kept ready beyond what the engine holds (at 10 ms, half a second).
pub const LOOKAHEAD_FRAMES: usize = 50;

/// One event loop's supply of the sample's frames, in order: from the encoder thread, then,
/// once the frames repeat, from the loop the thread handed over.
pub struct Frames {
    /// Frames with their number in the sample's stream.
    encoded: Receiver<(u64, Arc<[u8]>)>,
    /// How many frames the thread has encoded.
    encoded_count: Arc<AtomicU64>,
    /// Set by the encoder thread after its last frame.
    handed_over: Arc<OnceLock<SampleLoop>>,
    repeating: Option<SampleLoop>,
}

impl Frames {
    /// The next frame, or `None` if the encoder has none ready (an underrun). Frames that
    /// waited while this loop took none (nobody in it listened) and the other loops went on
    /// are dropped: a loop that starts taking frames again joins the others where they are.
    pub fn next_frame(&mut self) -> Option<Arc<[u8]>> {
        if let Some(repeating) = &mut self.repeating {
            return Some(repeating.next_frame());
        }
        if let Some(frame) = self.fresh() {
            return Some(frame);
        }
        let handed_over = self.handed_over.clone();
        let handed_over = handed_over.get()?;
        // The thread set the loop after sending its last frame: take that one first.
        if let Some(frame) = self.fresh() {
            return Some(frame);
        }
        let mut repeating = handed_over.clone();
        let frame = repeating.next_frame();
        self.repeating = Some(repeating);
        Some(frame)
    }

    /// The next frame received that is not stale.
    fn fresh(&self) -> Option<Arc<[u8]>> {
        loop {
            let (number, frame) = self.encoded.try_recv().ok()?;
            if self.encoded_count.load(Ordering::Acquire).saturating_sub(number) <= 2 * LOOKAHEAD_FRAMES as u64 {
                return Some(frame);
            }
        }
    }
}

/// How long the encoder waits for a loop with no room for the next frame before it stops
/// waiting for that loop (nobody in it listens, or it is stalled): five frames at 10 ms,
/// well within the other loops' lookahead.
const ASLEEP_AFTER: Duration = Duration::from_millis(50);

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

/// Starts the encoder thread, with a supply per event loop: every loop gets the frames (an
/// `Arc` clone each) in the same order, so all callers hear the same sample. The thread
/// keeps every loop [`LOOKAHEAD_FRAMES`] ahead; a loop that has taken no frame for
/// `ASLEEP_AFTER` (nobody in it listens, or it is stalled) is not waited for until it takes
/// frames again, so it never holds up the others. The thread stops by itself once the
/// frames repeat, or when every loop is gone.
pub fn spawn(encoder: LoopEncoder, loops: usize) -> std::io::Result<(Vec<Frames>, JoinHandle<()>)> {
    spawn_waiting(encoder, loops, ASLEEP_AFTER)
}

/// [`spawn`], waiting `asleep_after` for a loop without room.
fn spawn_waiting(
    mut encoder: LoopEncoder,
    loops: usize,
    asleep_after: Duration,
) -> std::io::Result<(Vec<Frames>, JoinHandle<()>)> {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..loops.max(1)).map(|_| bounded(LOOKAHEAD_FRAMES)).unzip();
    let handed_over = Arc::new(OnceLock::new());
    let encoded_count = Arc::new(AtomicU64::new(0));
    let frames: Vec<Frames> = receivers
        .into_iter()
        .map(|encoded| Frames {
            encoded,
            encoded_count: encoded_count.clone(),
            handed_over: handed_over.clone(),
            repeating: None,
        })
        .collect();
    let mut loops: Vec<Supplied> = senders.into_iter().map(|tx| Supplied { tx, awake: true, asleep_after }).collect();
    #[allow(clippy::disallowed_methods)] // workers own their threads
    let handle = std::thread::Builder::new().name("sample-encoder".into()).spawn(move || {
        for number in 0u64.. {
            // Wait until some loop has room (or has gone): with nobody listening anywhere,
            // the thread sleeps here.
            let mut select = Select::new();
            for l in &loops {
                select.send(&l.tx);
            }
            let _ = select.ready();
            let frame = match encoder.next_frame() {
                Ok(f) => f,
                Err(e) => {
                    log::error!("sample encoder stopped: {e}");
                    return;
                }
            };
            encoded_count.store(number + 1, Ordering::Release);
            loops.retain_mut(|l| l.give(number, &frame));
            if loops.is_empty() {
                return;
            }
            if let Some(repeating) = encoder.repeating() {
                log::debug!("the sample's frames repeat every {} frames: encoding done", repeating.len());
                let _ = handed_over.set(repeating);
                return;
            }
        }
    })?;
    Ok((frames, handle))
}

/// A loop the encoder thread supplies.
struct Supplied {
    tx: Sender<(u64, Arc<[u8]>)>,
    /// Taking frames: waited for (up to `asleep_after`) when it has no room.
    awake: bool,
    asleep_after: Duration,
}

impl Supplied {
    /// Hands the loop the frame (or not, if it sleeps and has no room); `false` once the
    /// loop is gone.
    fn give(&mut self, number: u64, frame: &Arc<[u8]>) -> bool {
        let item = (number, frame.clone());
        let sent = if self.awake {
            self.tx.send_timeout(item, self.asleep_after).map_err(|e| match e {
                SendTimeoutError::Timeout(_) => TrySendError::Full(()),
                SendTimeoutError::Disconnected(_) => TrySendError::Disconnected(()),
            })
        } else {
            self.tx.try_send(item).map_err(|e| match e {
                TrySendError::Full(_) => TrySendError::Full(()),
                TrySendError::Disconnected(_) => TrySendError::Disconnected(()),
            })
        };
        match sent {
            Ok(()) => {
                self.awake = true;
                true
            }
            Err(TrySendError::Full(())) => {
                self.awake = false;
                true
            }
            Err(TrySendError::Disconnected(())) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every loop gets the same frames in the same order, then the same loop; a loop that
    /// has ended does not hold up the others, and neither does one that takes no frames.
    #[test]
    fn every_loop_gets_every_frame() {
        let pcm: Vec<i16> = (0..48_000).map(|i| ((i as f64 * 0.05).sin() * 8000.0) as i16).collect();
        let encoder = LoopEncoder::new(pcm.into(), tapedeck_core::media::Ptime::Ms20).unwrap();
        // Waiting a whole second for a loop with no room: a drain below descheduled for a
        // moment (the machine is busy) is still waited for.
        let (mut frames, thread) = spawn_waiting(encoder, 4, Duration::from_secs(1)).unwrap();
        drop(frames.pop()); // a loop that has ended
        let _idle = frames.pop(); // a loop nobody listens in: it takes no frames
        let drain = |rx: &mut Frames| {
            let mut got = Vec::new();
            while got.len() < 400 {
                match rx.next_frame() {
                    Some(frame) => got.push(frame),
                    None => std::thread::sleep(Duration::from_millis(1)),
                }
            }
            got
        };
        let (mut first, mut second) = (frames.remove(0), frames.remove(0));
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| drain(&mut first));
            let b = s.spawn(|| drain(&mut second));
            (a.join().unwrap(), b.join().unwrap())
        });
        thread.join().unwrap();
        assert_eq!(a, b, "the loops got different frames");
        assert!(first.repeating.is_some(), "the 1 s sample's frames repeat within 400 frames");
    }

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
