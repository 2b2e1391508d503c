//! Offline backend speed: the embedded toxicity model (linear model + lexicons) in messages
//! per second on one core, and — once it lands — Whisper's real-time factor on a 60 s clip.

use std::time::Instant;

use moderation_offline::OfflineDetector;

use crate::stats::median;
use crate::workload::message;
use crate::Ctx;

#[derive(Debug, Clone, Default)]
pub struct OfflineResult {
    /// Messages per second, one value per run.
    pub scoring: Vec<f64>,
    pub messages_per_run: usize,
    pub whisper: Whisper,
}

#[derive(Debug, Clone, Default)]
pub enum Whisper {
    Measured {
        /// Processing time ÷ audio duration, one value per run.
        rtf: Vec<f64>,
        clip_seconds: f64,
    },
    #[default]
    NotBuilt,
    Failed(String),
}

pub async fn run(ctx: &Ctx) -> OfflineResult {
    let runs = ctx.runs;
    let n = 20_000;
    let scoring = tokio::task::spawn_blocking(move || score_runs(runs, n))
        .await
        .unwrap_or_default();
    eprintln!("bench:   offline scoring {:.0} msg/s", median(&scoring));
    OfflineResult {
        scoring,
        messages_per_run: n,
        whisper: whisper_rtf(ctx).await,
    }
}

/// Single-threaded, so one core: score `n` distinct messages, `runs` times.
fn score_runs(runs: usize, n: usize) -> Vec<f64> {
    let Ok(detector) = OfflineDetector::embedded() else {
        return Vec::new();
    };
    let messages: Vec<String> = (0..n).map(message).collect();
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let sum: f64 = messages.iter().map(|m| detector.score(m).toxicity).sum();
            std::hint::black_box(sum);
            n as f64 / t.elapsed().as_secs_f64()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// HOOK — Whisper real-time factor. `moderation_offline::whisper::Whisper` (feature `whisper`
// of moderation-offline, implementing `moderation_core::ports::SpeechToText`) is being added
// separately. When it lands, build this crate with `--features whisper` and construct the
// engine in `whisper_engine` below; `measure_rtf` already does the timing on a 60 s clip.
// ---------------------------------------------------------------------------------------

/// Not measured until the `whisper` feature is built.
#[cfg(not(feature = "whisper"))]
async fn whisper_rtf(_ctx: &Ctx) -> Whisper {
    Whisper::NotBuilt
}

#[cfg(feature = "whisper")]
async fn whisper_rtf(ctx: &Ctx) -> Whisper {
    let clip = match speech_clip(&ctx.work, 60.0) {
        Ok(c) => c,
        Err(e) => return Whisper::Failed(e),
    };
    let runs = ctx.runs;
    let root = ctx.root.clone();
    tokio::task::spawn_blocking(move || match whisper_engine(&root) {
        Ok(engine) => measure_rtf(engine.as_ref(), &clip, runs),
        Err(e) => Whisper::Failed(e),
    })
    .await
    .unwrap_or_else(|e| Whisper::Failed(e.to_string()))
}

/// HOOK: construct the offline Whisper here (model files under `.cache/models/`).
#[cfg(feature = "whisper")]
fn whisper_engine(
    _root: &std::path::Path,
) -> Result<Box<dyn moderation_core::ports::SpeechToText>, String> {
    Err(
        "not measured: moderation_offline::whisper::Whisper is not wired into the harness yet"
            .into(),
    )
}

/// A WAV clip and its duration in seconds.
#[cfg_attr(not(feature = "whisper"), allow(dead_code))]
pub struct Clip {
    pub wav: Vec<u8>,
    pub seconds: f64,
}

/// Real-time factor: seconds of processing per second of audio (below 1 is faster than
/// real time), one value per run.
#[cfg_attr(not(feature = "whisper"), allow(dead_code))]
pub fn measure_rtf(
    engine: &dyn moderation_core::ports::SpeechToText,
    clip: &Clip,
    runs: usize,
) -> Whisper {
    let mut rtf = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        if let Err(e) = engine.transcribe(&clip.wav, "wav") {
            return Whisper::Failed(e.to_string());
        }
        rtf.push(t.elapsed().as_secs_f64() / clip.seconds);
    }
    Whisper::Measured {
        rtf,
        clip_seconds: clip.seconds,
    }
}

/// About `seconds` of English speech from espeak-ng (Debian `espeak-ng`), the clip the demo
/// uses for audio: chat lines read one after another until the clip is long enough.
#[cfg_attr(not(feature = "whisper"), allow(dead_code))]
pub fn speech_clip(dir: &std::path::Path, seconds: f64) -> Result<Clip, String> {
    let path = dir.join("whisper-clip.wav");
    // ~2.5 words a second at espeak-ng's default 175 wpm with pauses.
    let words_needed = (seconds * 2.6) as usize;
    let mut text = String::new();
    let mut i = 0;
    while text.split_whitespace().count() < words_needed {
        text.push_str(&message(i).replace('#', "number "));
        text.push_str(". ");
        i += 1;
    }
    let status = std::process::Command::new("espeak-ng")
        .arg("-w")
        .arg(&path)
        .arg(&text)
        .status()
        .map_err(|e| format!("espeak-ng: {e}"))?;
    if !status.success() {
        return Err(format!("espeak-ng exited with {status}"));
    }
    let wav = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let seconds = wav_seconds(&wav).ok_or("espeak-ng wrote an unreadable WAV")?;
    Ok(Clip { wav, seconds })
}

/// Duration of a PCM WAV from its `fmt ` and `data` chunks.
#[cfg_attr(not(feature = "whisper"), allow(dead_code))]
fn wav_seconds(wav: &[u8]) -> Option<f64> {
    let u32_at =
        |i: usize| -> Option<u32> { Some(u32::from_le_bytes(wav.get(i..i + 4)?.try_into().ok()?)) };
    let mut pos = 12;
    let mut byte_rate = None;
    while pos + 8 <= wav.len() {
        let id = wav.get(pos..pos + 4)?;
        let len = u32_at(pos + 4)? as usize;
        if id == b"fmt " {
            byte_rate = u32_at(pos + 16);
        } else if id == b"data" {
            // espeak-ng streams: the header may say 0x7fffffff; use what is there.
            let len = len.min(wav.len().saturating_sub(pos + 8));
            return Some(len as f64 / f64::from(byte_rate?));
        }
        pos += 8 + len + (len & 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_duration_from_header() {
        let mut wav = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        wav.extend(16u32.to_le_bytes());
        wav.extend(1u16.to_le_bytes()); // PCM
        wav.extend(1u16.to_le_bytes()); // mono
        wav.extend(22_050u32.to_le_bytes());
        wav.extend(44_100u32.to_le_bytes()); // byte rate
        wav.extend(2u16.to_le_bytes());
        wav.extend(16u16.to_le_bytes());
        wav.extend(b"data");
        wav.extend(88_200u32.to_le_bytes());
        wav.extend(vec![0u8; 88_200]);
        assert_eq!(wav_seconds(&wav), Some(2.0));
    }
}
