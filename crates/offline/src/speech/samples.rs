//! Sample voice chat for the demo and the tests: each line spoken by `espeak-ng` (Debian
//! package), joined with pauses into one WAV, with the time each line starts and ends, so a
//! report's segment times can be checked against where the words really are.

use std::process::Command;

use crate::error::Error;

/// Voice, speed (words per minute) and the pause around lines.
const VOICE: &str = "en-us";
const WORDS_PER_MINUTE: &str = "150";

/// One recording made of spoken lines.
#[derive(Debug, Clone)]
pub struct SpokenClip {
    /// 16-bit PCM WAV, mono, at espeak-ng's rate.
    pub wav: Vec<u8>,
    /// `(start, end, line)` in seconds, in order.
    pub lines: Vec<(f64, f64, String)>,
}

/// Whether `espeak-ng` can be run.
pub fn espeak_available() -> bool {
    Command::new("espeak-ng")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn speak_err(reason: impl Into<String>) -> Error {
    Error::AudioFormat {
        format: "espeak-ng".into(),
        reason: reason.into(),
    }
}

/// Mono 16-bit PCM samples and the sample rate of a WAV file.
fn pcm16(wav: &[u8]) -> Result<(u32, Vec<i16>), Error> {
    if wav.len() < 12 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return Err(speak_err("output is not a RIFF/WAVE file"));
    }
    let (mut rate, mut fmt_ok, mut pos) = (0u32, false, 12usize);
    while pos + 8 <= wav.len() {
        let id = &wav[pos..pos + 4];
        let declared = u32::from_le_bytes([wav[pos + 4], wav[pos + 5], wav[pos + 6], wav[pos + 7]]);
        let body = pos + 8;
        // espeak-ng writes 0xFFFFFFFF sizes when streaming to stdout: the data runs to the end.
        let end = body.saturating_add(declared as usize).min(wav.len());
        if id == b"fmt " && end >= body + 16 {
            let f = &wav[body..end];
            let format = u16::from_le_bytes([f[0], f[1]]);
            let channels = u16::from_le_bytes([f[2], f[3]]);
            rate = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
            let bits = u16::from_le_bytes([f[14], f[15]]);
            fmt_ok = format == 1 && channels == 1 && bits == 16;
        } else if id == b"data" {
            if !fmt_ok || rate == 0 {
                return Err(speak_err("expected 16-bit mono PCM"));
            }
            let samples = wav[body..end]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return Ok((rate, samples));
        }
        pos = end + (end - body) % 2;
    }
    Err(speak_err("no audio data in the output"))
}

fn wav_bytes(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Speak each line with espeak-ng and join them with `gap` seconds of silence (also before the
/// first line), recording where each line is.
pub fn speak_lines(lines: &[&str], gap: f64) -> Result<SpokenClip, Error> {
    let mut rate = 0u32;
    let mut all: Vec<i16> = Vec::new();
    let mut timed = Vec::with_capacity(lines.len());
    for line in lines {
        let out = Command::new("espeak-ng")
            .args(["-v", VOICE, "-s", WORDS_PER_MINUTE, "--stdout", "--"])
            .arg(line)
            .output()
            .map_err(|e| speak_err(format!("could not run espeak-ng: {e}")))?;
        if !out.status.success() {
            return Err(speak_err(String::from_utf8_lossy(&out.stderr).into_owned()));
        }
        let (r, samples) = pcm16(&out.stdout)?;
        if rate != 0 && r != rate {
            return Err(speak_err(format!("sample rate changed from {rate} to {r}")));
        }
        rate = r;
        all.extend(std::iter::repeat_n(0i16, (gap * rate as f64) as usize));
        let start = all.len() as f64 / rate as f64;
        all.extend_from_slice(&samples);
        timed.push((start, all.len() as f64 / rate as f64, line.to_string()));
    }
    all.extend(std::iter::repeat_n(0i16, (gap * rate as f64) as usize));
    Ok(SpokenClip {
        wav: wav_bytes(rate.max(1), &all),
        lines: timed,
    })
}

pub(crate) fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace('\'', "")
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Word error rate: word-level Levenshtein distance over the reference length, after
/// lower-casing and dropping punctuation.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (words(reference), words(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut row = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitution = prev[j] + usize::from(rw != hw);
            row[j + 1] = substitution.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_round_trips_and_defects_are_named() {
        let samples: Vec<i16> = (0..100).map(|i| i * 10).collect();
        let wav = wav_bytes(22_050, &samples);
        assert_eq!(pcm16(&wav).expect("parses"), (22_050, samples));
        assert!(pcm16(b"not a wav").is_err());
        let mut stereo = wav.clone();
        stereo[22] = 2;
        assert!(pcm16(&stereo)
            .expect_err("stereo")
            .to_string()
            .contains("mono"));
    }

    #[test]
    fn lines_are_timed_where_they_are_spoken() {
        if !espeak_available() {
            eprintln!("skipping: espeak-ng not installed (make demo / make test install it)");
            return;
        }
        let clip = speak_lines(&["good game", "see you next match"], 0.5).expect("speaks");
        assert_eq!(clip.lines.len(), 2);
        let (s1, e1, _) = clip.lines[0];
        let (s2, e2, _) = clip.lines[1];
        assert!((s1 - 0.5).abs() < 1e-3 && e1 > s1 && (s2 - (e1 + 0.5)).abs() < 1e-3 && e2 > s2);
        let (rate, samples) = pcm16(&clip.wav).expect("valid wav");
        assert!((samples.len() as f64 / rate as f64 - (e2 + 0.5)).abs() < 1e-3);
    }
}
