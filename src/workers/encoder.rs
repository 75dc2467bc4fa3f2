//! The looped sample: read once at start ([`load`]), then encoded by one thread for every
//! event loop, a bounded number of frames ahead. Once its frames repeat (see
//! [`LoopEncoder::repeating`]), the thread hands the loop over and ends: from then on the
//! sample costs an `Arc` clone a frame.
//!
//! The frames are numbered, and kept in one [`Feed`] that every loop reads with a cursor of
//! its own ([`Frames`]). The loops take frame after frame at each tick of their (common)
//! sample clock, so callers in every loop hear the same point of the sample, like a radio.
//! A loop that took no frames for a while (nobody in it listened) or fell behind joins the
//! others where they are. While no loop takes frames the thread waits: an idle daemon does
//! not encode.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tapedeck_core::engine::SAMPLE_QUEUE;
use tapedeck_core::media::sample::{decode, LoopEncoder, SampleError, SampleLoop};
use tapedeck_core::media::SAMPLE_RATE_HZ;

/// Encoded frames kept ready beyond the furthest loop (at 10 ms, half a second).
pub const LOOKAHEAD_FRAMES: u64 = 50;
/// A loop this many frames behind the furthest one joins it (a loop's turn may come a
/// tick after another's; more than this, and it was idle or stalled).
const BEHIND_AT_MOST: u64 = 5;
/// A loop that joins takes the frames the furthest loop holds queued (an engine holds
/// [`SAMPLE_QUEUE`] frames while anyone listens in it, and none while no one does), so the
/// two play the same frame at the same tick.
const JOIN_AT: u64 = SAMPLE_QUEUE as u64;
const _: () = assert!(JOIN_AT <= BEHIND_AT_MOST, "a loop that joins finds its frames kept");

/// The frames every loop reads; see the module docs.
struct Feed {
    state: Mutex<FeedState>,
    /// Signalled when a loop takes a frame or goes: the encoder may have room.
    taken: Condvar,
}

struct FeedState {
    /// The number of `frames[0]`.
    first: u64,
    frames: VecDeque<Arc<[u8]>>,
    /// One past the furthest frame any loop has taken.
    position: u64,
    /// Once the frames repeat: from this number on, the loop.
    repeating: Option<(u64, SampleLoop)>,
    /// Loops still reading.
    readers: usize,
}

impl FeedState {
    /// Frame `n`, if it is encoded (or the loop has it) and still kept.
    fn get(&self, n: u64) -> Option<Arc<[u8]>> {
        if let Some(frame) = n.checked_sub(self.first).and_then(|i| self.frames.get(i as usize)) {
            return Some(frame.clone());
        }
        match &self.repeating {
            Some((from, repeating)) if n >= *from => Some(repeating.ahead(n - from)),
            _ => None,
        }
    }

    /// One past the last frame encoded.
    fn end(&self) -> u64 {
        self.first + self.frames.len() as u64
    }
}

impl Feed {
    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One event loop's way to the sample's frames.
pub struct Frames {
    feed: Arc<Feed>,
    /// The number of the next frame this loop plays.
    cursor: Option<u64>,
}

impl Frames {
    /// The next frame, or `None` if the encoder has none ready (an underrun).
    pub fn next_frame(&mut self) -> Option<Arc<[u8]>> {
        let mut feed = self.feed.lock();
        let n = match self.cursor {
            Some(n) if n + BEHIND_AT_MOST >= feed.position => n,
            _ => feed.position.saturating_sub(JOIN_AT), // join the others
        };
        let frame = feed.get(n)?;
        self.cursor = Some(n + 1);
        feed.position = feed.position.max(n + 1);
        // Keep a few frames behind the furthest loop for the others; the rest is history.
        while feed.first + BEHIND_AT_MOST < feed.position && !feed.frames.is_empty() {
            feed.frames.pop_front();
            feed.first += 1;
        }
        drop(feed);
        self.feed.taken.notify_one();
        Some(frame)
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        self.feed.lock().readers -= 1;
        self.feed.taken.notify_one();
    }
}

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

/// Starts the encoder thread, with a reader for each of `loops` event loops (see the module
/// docs). The thread stops by itself once the frames repeat, or when every reader is gone.
pub fn spawn(mut encoder: LoopEncoder, loops: usize) -> std::io::Result<(Vec<Frames>, JoinHandle<()>)> {
    let loops = loops.max(1);
    let feed = Arc::new(Feed {
        state: Mutex::new(FeedState {
            first: 0,
            frames: VecDeque::new(),
            position: 0,
            repeating: None,
            readers: loops,
        }),
        taken: Condvar::new(),
    });
    let frames = (0..loops).map(|_| Frames { feed: feed.clone(), cursor: None }).collect();
    #[allow(clippy::disallowed_methods)] // workers own their threads
    let handle = std::thread::Builder::new().name("sample-encoder".into()).spawn(move || loop {
        {
            let mut state = feed.lock();
            while state.readers > 0 && state.end() >= state.position + LOOKAHEAD_FRAMES {
                state = feed.taken.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if state.readers == 0 {
                return;
            }
        }
        let frame = match encoder.next_frame() {
            Ok(f) => f,
            Err(e) => {
                log::error!("sample encoder stopped: {e}");
                return;
            }
        };
        let repeating = encoder.repeating();
        let mut state = feed.lock();
        state.frames.push_back(frame);
        if let Some(repeating) = repeating {
            log::debug!("the sample's frames repeat every {} frames: encoding done", repeating.len());
            let from = state.end();
            state.repeating = Some((from, repeating));
            return;
        }
    })?;
    Ok((frames, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 s tone at 20 ms: a cycle of 50 frames, handed over after two.
    fn tone_encoder() -> LoopEncoder {
        let pcm: Vec<i16> = (0..48_000).map(|i| ((i as f64 * 0.05).sin() * 8000.0) as i16).collect();
        LoopEncoder::new(pcm.into(), tapedeck_core::media::Ptime::Ms20).unwrap()
    }

    /// Takes `n` frames, waiting for the encoder where it is behind.
    fn take(frames: &mut Frames, n: usize) -> Vec<Arc<[u8]>> {
        let mut got = Vec::new();
        while got.len() < n {
            match frames.next_frame() {
                Some(frame) => got.push(frame),
                None => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        }
        got
    }

    /// Loops taking frames tick by tick get the same frames in the same order, through the
    /// hand-over to the repeating loop; loops that are gone or take nothing hold no one up.
    #[test]
    fn every_loop_gets_the_same_frames() {
        let mut reference = tone_encoder();
        let expected: Vec<Arc<[u8]>> = (0..100).map(|_| reference.next_frame().unwrap()).collect();
        let (mut frames, thread) = spawn(tone_encoder(), 4).unwrap();
        drop(frames.pop()); // a loop that has ended
        let _idle = frames.pop(); // a loop nobody listens in: it takes no frames
        let (mut a, mut b) = (frames.remove(0), frames.remove(0));
        // Both engines fill their queues, then take a frame a tick.
        let mut heard = (take(&mut a, JOIN_AT as usize), take(&mut b, JOIN_AT as usize));
        for _ in 0..300 {
            heard.0.extend(take(&mut a, 1));
            heard.1.extend(take(&mut b, 1));
        }
        thread.join().unwrap();
        assert_eq!(heard.0, heard.1, "the loops got different frames");
        // The first two cycles (50 frames each) are the encoder's; after that the loop plays
        // (the second cycle's frames, round and round).
        assert_eq!(heard.0[..100], expected[..100]);
        for (i, frame) in heard.0.iter().enumerate().skip(100) {
            assert!(*frame == expected[50 + (i - 100) % 50], "frame {i} is not the loop's");
        }
    }

    /// A loop whose first caller comes while another loop plays joins it where it is
    /// (instead of starting where that one started), and one that falls behind catches up.
    #[test]
    fn a_loop_that_was_idle_joins_the_others() {
        let mut reference = tone_encoder();
        let expected: Vec<Arc<[u8]>> = (0..80).map(|_| reference.next_frame().unwrap()).collect();
        let (mut frames, _thread) = spawn(tone_encoder(), 2).unwrap();
        let (mut busy, mut idle) = (frames.remove(0), frames.remove(0));
        // The busy loop's engine has played 36 frames and holds 4 more.
        assert_eq!(take(&mut busy, 40), expected[..40]);
        // The idle loop's first caller: its engine takes the same 4 frames, and plays frame
        // 36 at this tick, as the busy one does.
        assert_eq!(take(&mut idle, 4), expected[36..40]);
        assert_eq!(take(&mut busy, 1), expected[40..41]);
        assert_eq!(take(&mut idle, 1), expected[40..41]);
        // The idle loop stalls for 20 frames, then catches up where the busy one is.
        assert_eq!(take(&mut busy, 20), expected[41..61]);
        assert_eq!(take(&mut idle, 1), expected[57..58]);
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
