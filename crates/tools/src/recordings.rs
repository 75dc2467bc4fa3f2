//! Judging a caller's recording against what the caller sent: `tapedeck-load
//! --check-recordings`. What matters is that every frame the caller sent is in the file,
//! whatever its media clock did; the file's length follows from that.
//!
//! The file is cut into blocks of the caller's packet time, and a block carries the tone when
//! it is loud enough and most of its energy is at the caller's frequency. A recording is
//! complete when:
//!
//! - (a) the blocks with the tone number at least the frames sent, less [`EDGE_FRAMES`];
//! - (b) between the first and the last of them no run of blocks without the tone is longer
//!   than one packet time (a lost packet is concealed, not silent);
//! - (c) the file is no shorter than the call (less [`SHORT_TOLERANCE`]) and no longer than the
//!   call or the audio sent, whichever is longer, plus [`LONG_TOLERANCE`]: a slow caller's
//!   file is padded to the call, a fast caller's is as long as its audio;
//! - and, over the talking stretch as a whole, at least half the energy is at the caller's
//!   tone (neighbouring callers' tones are 20 Hz apart, too close to tell in one block).
//!
//! Pure: samples in, a [`Judgement`] out.

use std::time::Duration;

use tapedeck_core::media::SAMPLE_RATE_HZ;
use tapedeck_core::testkit::audio::rms;

/// Frames that may be missing from the count: a frame split over two blocks at the start
/// and at the end of the talking stretch may leave neither block with enough tone.
pub const EDGE_FRAMES: u64 = 2;
/// How much shorter than the call a file may be: 20 ms plus this fraction of the call (the
/// caller and the daemon see the call begin and end at slightly different moments).
pub const SHORT_TOLERANCE: (Duration, f64) = (Duration::from_millis(20), 0.01);
/// How much longer than the call or the audio sent (the longer) a file may be.
pub const LONG_TOLERANCE: Duration = Duration::from_secs(1);
/// A block carries the tone above this RMS (full scale 1.0; the callers' tone is 0.3 peak,
/// 0.21 RMS)...
pub const TONE_RMS: f64 = 0.05;
/// ...with at least this share of its energy at the caller's frequency; the same share over
/// the whole talking stretch.
pub const TONE_SHARE: f64 = 0.5;

/// What a caller sent, against which its recording is judged.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    /// The tone's frequency, Hz.
    pub tone_hz: u32,
    /// Frames sent.
    pub frames: u64,
    /// Packet time of each frame.
    pub ptime: Duration,
    /// The call's length (connected to hang-up) as the caller saw it.
    pub call: Duration,
}

impl Sent {
    /// The audio sent: frames times packet time.
    pub fn audio(&self) -> Duration {
        self.ptime * u32::try_from(self.frames).unwrap_or(u32::MAX)
    }
}

/// What a recording holds of what its caller sent.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub sent: Sent,
    /// Blocks (of the caller's packet time) that carry the tone.
    pub tone_frames: u64,
    /// The longest run of blocks without the tone between the first and the last with it.
    pub longest_hole: Duration,
    /// The file's length.
    pub file: Duration,
    /// Share of the talking stretch's energy at the caller's frequency (0..1).
    pub tone_share: f64,
    /// What is wrong, empty when the recording is complete.
    pub problems: Vec<String>,
}

impl Judgement {
    /// Every frame is there, without holes, in a file of the right length.
    pub fn complete(&self) -> bool {
        self.problems.is_empty()
    }

    /// Frames sent that are not in the file.
    pub fn missing_frames(&self) -> u64 {
        self.sent.frames.saturating_sub(self.tone_frames)
    }

    /// The audio found: blocks with the tone times packet time.
    pub fn tone(&self) -> Duration {
        self.sent.ptime * u32::try_from(self.tone_frames).unwrap_or(u32::MAX)
    }

    /// The figures, for a report.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "frames_sent": self.sent.frames,
            "tone_frames": self.tone_frames,
            "missing_frames": self.missing_frames(),
            "sent_s": self.sent.audio().as_secs_f64(),
            "tone_s": self.tone().as_secs_f64(),
            "file_s": self.file.as_secs_f64(),
            "call_s": self.sent.call.as_secs_f64(),
            "longest_hole_s": self.longest_hole.as_secs_f64(),
            "tone_share": self.tone_share,
            "problems": self.problems,
        })
    }
}

/// Judges `samples` (48 kHz mono) against what the caller sent.
pub fn judge(samples: &[i16], sent: Sent) -> Judgement {
    let block = (sent.ptime.as_micros() as usize * SAMPLE_RATE_HZ as usize / 1_000_000).max(1);
    let tones: Vec<bool> = samples.chunks(block).map(|b| carries_tone(b, sent.tone_hz)).collect();
    let first = tones.iter().position(|&t| t);
    let last = tones.iter().rposition(|&t| t);
    let tone_frames = tones.iter().filter(|&&t| t).count() as u64;
    let (hole_blocks, tone_share) = match (first, last) {
        (Some(first), Some(last)) => {
            let stretch = &samples[first * block..((last + 1) * block).min(samples.len())];
            (longest_run(&tones[first..=last]), share_at(stretch, f64::from(sent.tone_hz)))
        }
        _ => (0, 0.0),
    };
    let file = Duration::from_secs_f64(samples.len() as f64 / f64::from(SAMPLE_RATE_HZ));
    let mut j = Judgement {
        sent,
        tone_frames,
        longest_hole: sent.ptime * hole_blocks as u32,
        file,
        tone_share,
        problems: Vec::new(),
    };
    j.problems = problems(&j);
    j
}

/// What is wrong with a recording, in words with the figures.
fn problems(j: &Judgement) -> Vec<String> {
    let s = |d: Duration| d.as_secs_f64();
    let sent = j.sent;
    let mut problems = Vec::new();
    if j.tone_frames + EDGE_FRAMES < sent.frames {
        problems.push(format!(
            "{} of {} frames sent are missing: {:.2} s of tone for {:.2} s sent",
            j.missing_frames(),
            sent.frames,
            s(j.tone()),
            s(sent.audio())
        ));
    }
    if j.longest_hole > sent.ptime {
        problems.push(format!("a hole of {:.2} s inside the talking stretch", s(j.longest_hole)));
    }
    let shortest = sent.call.saturating_sub(SHORT_TOLERANCE.0 + sent.call.mul_f64(SHORT_TOLERANCE.1));
    if j.file < shortest {
        problems.push(format!("{:.2} s long, shorter than the {:.2} s call", s(j.file), s(sent.call)));
    }
    let longest = sent.call.max(sent.audio()) + LONG_TOLERANCE;
    if j.file > longest {
        problems.push(format!(
            "{:.2} s long, longer than the {:.2} s call or the {:.2} s sent",
            s(j.file),
            s(sent.call),
            s(sent.audio())
        ));
    }
    if j.tone_share < TONE_SHARE && sent.frames > 0 {
        problems.push(format!("only {:.0} % of the energy at {} Hz", j.tone_share * 100.0, sent.tone_hz));
    }
    problems
}

/// Loud enough, and mostly the caller's tone.
fn carries_tone(block: &[i16], hz: u32) -> bool {
    rms(block) >= TONE_RMS && share_at(block, f64::from(hz)) >= TONE_SHARE
}

/// The longest run of `false`.
fn longest_run(tones: &[bool]) -> usize {
    tones.split(|&t| t).map(<[bool]>::len).max().unwrap_or(0)
}

/// Energy at `hz` relative to all energy (Goertzel), 0..1.
fn share_at(samples: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(SAMPLE_RATE_HZ);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2, mut total) = (0.0f64, 0.0f64, 0.0f64);
    for &x in samples {
        let x = f64::from(x);
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
        total += x * x;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if total == 0.0 {
        0.0
    } else {
        2.0 * power / (samples.len() as f64 * total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTIME: Duration = Duration::from_millis(20);

    /// `silence` s of silence, then `tone` s of 440 Hz, then `tail` s of silence.
    fn wav(silence: f64, tone: f64, tail: f64) -> Vec<i16> {
        let n = |s: f64| (s * f64::from(SAMPLE_RATE_HZ)).round() as usize;
        let tone = (0..n(tone)).map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE_HZ);
            ((std::f64::consts::TAU * 440.0 * t).sin() * 0.3 * 32767.0) as i16
        });
        std::iter::repeat_n(0, n(silence)).chain(tone).chain(std::iter::repeat_n(0, n(tail))).collect()
    }

    fn sent(frames: u64, call: f64) -> Sent {
        Sent { tone_hz: 440, frames, ptime: PTIME, call: Duration::from_secs_f64(call) }
    }

    #[test]
    fn a_recording_with_every_frame_is_complete() {
        // 250 frames (5 s) starting 7 ms into a 5.01 s call.
        let j = judge(&wav(0.007, 5.0, 0.003), sent(250, 5.01));
        assert!(j.complete(), "{:?}", j.problems);
        assert!(j.tone_frames >= 249, "{}", j.tone_frames);
    }

    #[test]
    fn a_slow_caller_padded_to_the_call_is_complete() {
        // 0.95x: 4.75 s of audio in a 5 s call, silence at the end.
        let j = judge(&wav(0.0, 4.75, 0.25), sent(237, 5.0));
        assert!(j.complete(), "{:?}", j.problems);
    }

    #[test]
    fn a_fast_callers_file_may_be_as_long_as_its_audio() {
        // 1.05x: 5.25 s of audio in a 5 s call.
        let j = judge(&wav(0.0, 5.25, 0.0), sent(262, 5.0));
        assert!(j.complete(), "{:?}", j.problems);
        // Cut at the call's length, its last 0.25 s are missing.
        let j = judge(&wav(0.0, 5.0, 0.0), sent(262, 5.0));
        assert_eq!(j.missing_frames(), 12);
        assert!(j.problems[0].contains("12 of 262 frames"), "{:?}", j.problems);
    }

    #[test]
    fn a_slow_callers_lost_audio_shows_as_missing_frames() {
        // Tone for 3 s, then silence to the 5 s call's end, though 4.75 s were sent.
        let j = judge(&wav(0.0, 3.0, 2.0), sent(237, 5.0));
        assert_eq!(j.missing_frames(), 87);
        assert_eq!(j.problems.len(), 1, "{:?}", j.problems);
    }

    #[test]
    fn a_hole_inside_the_talking_stretch_is_a_problem() {
        let mut samples = wav(0.0, 5.0, 0.0);
        samples[SAMPLE_RATE_HZ as usize..SAMPLE_RATE_HZ as usize * 11 / 10].fill(0);
        let j = judge(&samples, sent(245, 5.0));
        assert!((j.longest_hole.as_secs_f64() - 0.1).abs() <= 0.021, "{:?}", j.longest_hole);
        assert!(j.problems.iter().any(|p| p.contains("hole")), "{:?}", j.problems);
    }

    #[test]
    fn a_file_much_longer_than_call_and_audio_is_a_problem() {
        let j = judge(&wav(0.0, 5.0, 1.5), sent(250, 5.0));
        assert_eq!(j.problems.len(), 1, "{:?}", j.problems);
        assert!(j.problems[0].contains("longer"), "{:?}", j.problems);
    }

    #[test]
    fn another_tone_is_not_the_callers() {
        let j = judge(&wav(0.0, 5.0, 0.0), Sent { tone_hz: 880, ..sent(250, 5.0) });
        assert_eq!(j.tone_frames, 0);
        assert!(!j.complete());
    }
}
