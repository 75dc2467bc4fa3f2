//! A recording's waveform for the console: the peak level of each of [`BUCKETS`] equal
//! stretches of the file, computed from the WAV's samples on the request's thread (never an
//! event loop) and cached, keyed by name, size and modification time (a file that changes
//! is computed again).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Stretches a waveform has (one a pixel column or two of the console's drawing).
pub const BUCKETS: usize = 400;
/// Waveforms kept (each is [`BUCKETS`] bytes); beyond it the cache starts afresh.
const CACHED: usize = 256;

type Key = (String, u64, SystemTime);

/// Waveforms computed so far.
#[derive(Default)]
pub struct Cache {
    map: Mutex<HashMap<Key, Arc<Vec<u8>>>>,
}

impl Cache {
    /// The waveform of the WAV at `path` (named `name`, `size` bytes, modified `modified`):
    /// from the cache, or computed now. `None` if the file cannot be read as a WAV.
    pub fn get(&self, name: &str, path: &Path, size: u64, modified: SystemTime) -> Option<Arc<Vec<u8>>> {
        let key = (name.to_string(), size, modified);
        if let Some(hit) = self.lock().get(&key) {
            return Some(hit.clone());
        }
        // Computed without the lock: another request may compute the same one meanwhile.
        let peaks = Arc::new(peaks(path)?);
        let mut map = self.lock();
        if map.len() >= CACHED {
            map.clear();
        }
        map.insert(key, peaks.clone());
        Some(peaks)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Vec<u8>>>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Each bucket's peak |sample|, scaled to 0..=255 (255: full scale).
fn peaks(path: &Path) -> Option<Vec<u8>> {
    let mut reader = hound::WavReader::open(path).ok()?;
    let spec = reader.spec();
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return None;
    }
    let total = u64::from(reader.duration()) * u64::from(spec.channels);
    let per_bucket = total.div_ceil(BUCKETS as u64).max(1);
    let mut out = vec![0u8; BUCKETS];
    for (i, sample) in reader.samples::<i16>().enumerate() {
        let Ok(s) = sample else { break };
        let bucket = ((i as u64 / per_bucket) as usize).min(BUCKETS - 1);
        let level = (i32::from(s).unsigned_abs() * 255 / 32768).min(255) as u8;
        out[bucket] = out[bucket].max(level);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waveform_shows_where_the_sound_is_and_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        // Silence, then a half-scale tone, each half of the file.
        let samples = (0..96_000).map(|i| if i < 48_000 { 0.0 } else { (i as f64 * 0.0576).sin() * 16_384.0 });
        super::super::write_wav(&path, samples.map(|s| s as i16));
        let cache = Cache::default();
        let meta = std::fs::metadata(&path).unwrap();
        let wave = cache.get("a.wav", &path, meta.len(), meta.modified().unwrap()).unwrap();
        assert_eq!(wave.len(), BUCKETS);
        assert!(wave[..BUCKETS / 2].iter().all(|&p| p == 0), "the first half is silent");
        assert!(wave[BUCKETS / 2 + 1..].iter().all(|&p| (120..=128).contains(&p)), "{:?}", &wave[BUCKETS / 2..]);
        // Cached: the same even when the file is gone.
        std::fs::remove_file(&path).unwrap();
        let again = cache.get("a.wav", &path, meta.len(), meta.modified().unwrap()).unwrap();
        assert!(Arc::ptr_eq(&wave, &again));
        assert!(
            cache.get("a.wav", &path, meta.len() + 1, meta.modified().unwrap()).is_none(),
            "another key reads again"
        );
    }
}
