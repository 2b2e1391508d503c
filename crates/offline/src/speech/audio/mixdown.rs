//! Channels to what Whisper hears, in bounded memory and without letting a downmix hide
//! speech. Frames are mixed as they are decoded (no interleaved copy of the recording), the
//! mix is resampled to 16 kHz a block at a time, and beside the usual mid signal (the mean of
//! the channels) the side signal (half the difference of the first two) is kept wherever it
//! carries sound the mid does not: speech in one channel and its inverse in the other cancels
//! in the mid, and a second voice can hide in the difference.

use moderation_core::ports::TimedText;

use super::{resample, unusable, Error, SAMPLE_RATE};

/// The longest recording decoded at once offline. At 16 kHz a mix is 230 MB an hour (460 MB
/// with its side signal), and Whisper tiny takes about half the recording's length to read it.
pub const MAX_SECONDS: u64 = 3_600;
/// Seconds of source audio resampled at a time.
const BLOCK_SECONDS: usize = 30;
/// A side signal this much quieter than the mid (RMS over a second) is stereo width, not
/// something the mid misses.
const SIDE_RATIO: f32 = 0.3;
/// Below this RMS (about -50 dBFS) a second of side signal is silence.
const SIDE_FLOOR: f32 = 0.003;

/// A recording as Whisper hears it: the mid signal, and the side signal where it carries
/// sound of its own (silence elsewhere), both 16 kHz.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub mid: Vec<f32>,
    pub side: Option<Vec<f32>>,
}

/// Mixes frames as a decoder hands them over.
pub(super) struct Mixdown {
    format: &'static str,
    rate: u32,
    channels: usize,
    block: usize,
    pending_mid: Vec<f32>,
    pending_side: Vec<f32>,
    mid: Vec<f32>,
    side: Vec<f32>,
    frames: u64,
    max_frames: u64,
    max_seconds: u64,
}

impl Mixdown {
    /// A mix of `channels` at `rate` Hz that refuses more than `max_seconds`.
    pub(super) fn new(format: &'static str, rate: u32, channels: usize, max_seconds: u64) -> Self {
        let block = rate as usize * BLOCK_SECONDS;
        Mixdown {
            format,
            rate,
            channels,
            block,
            pending_mid: Vec::with_capacity(block.min(1 << 20)),
            pending_side: Vec::new(),
            mid: Vec::new(),
            side: Vec::new(),
            frames: 0,
            max_frames: max_seconds * u64::from(rate),
            max_seconds,
        }
    }

    /// One frame: a sample per channel.
    pub(super) fn push(&mut self, frame: &[f32]) -> Result<(), Error> {
        self.frames += 1;
        if self.frames > self.max_frames {
            return Err(too_long(self.format, None, self.max_seconds));
        }
        let mid = frame.iter().sum::<f32>() / frame.len().max(1) as f32;
        self.pending_mid.push(mid);
        if self.channels >= 2 {
            self.pending_side.push((frame[0] - frame[1]) / 2.0);
        }
        if self.pending_mid.len() >= self.block {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.pending_mid.is_empty() {
            return Ok(());
        }
        self.mid
            .extend(resample(&self.pending_mid, self.rate, SAMPLE_RATE)?);
        self.pending_mid.clear();
        if !self.pending_side.is_empty() {
            self.side
                .extend(resample(&self.pending_side, self.rate, SAMPLE_RATE)?);
            self.pending_side.clear();
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<Decoded, Error> {
        self.flush()?;
        let side = keep_side(&self.mid, std::mem::take(&mut self.side));
        Ok(Decoded {
            mid: self.mid,
            side,
        })
    }
}

/// The refusal of a recording over `max_seconds` (its length, when the header gives it).
pub(super) fn too_long(format: &str, seconds: Option<f64>, max_seconds: u64) -> Error {
    let length = seconds.map_or_else(
        || format!("longer than {} min", max_seconds / 60),
        |s| format!("{:.1} min long", s / 60.0),
    );
    unusable(
        format,
        format!(
            "the recording is {length}: the offline speech model takes at most {} min at once \
             (split the recording, or moderate it with Amazon Transcribe)",
            max_seconds / 60
        ),
    )
}

fn rms(s: &[f32]) -> f32 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|v| v * v).sum::<f32>() / s.len() as f32).sqrt()
}

/// The side signal, silenced in every second where the mid carries the same sound; `None`
/// when no second is left.
fn keep_side(mid: &[f32], mut side: Vec<f32>) -> Option<Vec<f32>> {
    if side.is_empty() {
        return None;
    }
    let second = SAMPLE_RATE as usize;
    let mut kept = false;
    for (n, chunk) in side.chunks_mut(second).enumerate() {
        let m = mid.get(n * second..(n * second + chunk.len()).min(mid.len()));
        let (s, m) = (rms(chunk), m.map_or(0.0, rms));
        if s > SIDE_FLOOR && s >= SIDE_RATIO * m {
            kept = true;
        } else {
            chunk.fill(0.0);
        }
    }
    kept.then_some(side)
}

/// What the side signal adds to the mid's transcript: its segments, except those that repeat
/// a mid segment at the same time (speech panned to one side is in both).
pub fn merge_channels(mut mid: Vec<TimedText>, side: Vec<TimedText>) -> Vec<TimedText> {
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let added: Vec<TimedText> = side
        .into_iter()
        .filter(|s| {
            let sw = words(&s.text);
            !mid.iter().any(|m| {
                let overlaps = m.start_time < s.end_time && s.start_time < m.end_time;
                let mw = words(&m.text);
                let shared = sw.iter().filter(|w| mw.contains(w)).count();
                overlaps && shared * 2 >= sw.len().max(1)
            })
        })
        .collect();
    mid.extend(added);
    mid.sort_by(|a, b| a.start_time.total_cmp(&b.start_time));
    mid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f32, amplitude: f32) -> Vec<f32> {
        (0..(16_000.0 * seconds) as usize)
            .map(|i| amplitude * (std::f32::consts::TAU * 300.0 * i as f32 / 16_000.0).sin())
            .collect()
    }

    fn mix(frames: impl Iterator<Item = [f32; 2]>) -> Decoded {
        let mut m = Mixdown::new("wav", 16_000, 2, MAX_SECONDS);
        for f in frames {
            m.push(&f).expect("within the limit");
        }
        m.finish().expect("mixed")
    }

    #[test]
    fn speech_cancelled_in_the_mid_is_kept_in_the_side() {
        let speech = tone(2.0, 0.4);
        let d = mix(speech.iter().map(|&s| [s, -s]));
        assert!(rms(&d.mid) < 1e-6);
        let side = d.side.expect("the side carries the speech");
        assert!((rms(&side) - rms(&speech)).abs() < 0.01);
    }

    #[test]
    fn ordinary_stereo_has_no_side_and_a_short_hidden_voice_is_found() {
        // The same voice a little louder on the left: stereo width, nothing hidden.
        let speech = tone(3.0, 0.4);
        let d = mix(speech.iter().map(|&s| [s, 0.8 * s]));
        assert_eq!(d.side, None);
        // One second of a second voice in the difference, in ten seconds of the first.
        let long = tone(10.0, 0.4);
        let hidden = tone(1.0, 0.2);
        let d = mix(long.iter().enumerate().map(|(i, &s)| {
            let h = if (16_000..32_000).contains(&i) {
                hidden[i - 16_000]
            } else {
                0.0
            };
            [s + h, s - h]
        }));
        let side = d.side.expect("the hidden second is kept");
        assert!(rms(&side[16_000..32_000]) > 0.1);
        assert_eq!(rms(&side[48_000..]), 0.0, "the rest is silenced");
    }

    #[test]
    fn a_recording_past_the_limit_is_refused_with_the_limit_named() {
        let mut m = Mixdown::new("mp3", 1_000, 1, 120);
        let err = (0..=120 * 1_000)
            .try_for_each(|_| m.push(&[0.0]))
            .expect_err("too long");
        assert!(err.to_string().contains("longer than 2 min"), "{err}");
        assert!(err.to_string().contains("at most 2 min"), "{err}");
    }

    #[test]
    fn side_segments_repeating_the_mid_are_dropped() {
        let at = |s: f64, text: &str| TimedText {
            start_time: s,
            end_time: s + 2.0,
            text: text.into(),
        };
        let merged = merge_channels(
            vec![at(0.0, "gg everyone"), at(5.0, "push mid")],
            vec![at(0.2, "GG, everyone!"), at(3.0, "i will kill you")],
        );
        let texts: Vec<&str> = merged.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["gg everyone", "i will kill you", "push mid"]);
    }
}
