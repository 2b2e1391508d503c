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

// Whisper real-time factor (feature `whisper`: moderation-offline's Whisper tiny.en, model
// from `make models`).

/// Not measured without the `whisper` feature.
#[cfg(not(feature = "whisper"))]
async fn whisper_rtf(_ctx: &Ctx) -> Whisper {
    Whisper::NotBuilt
}

#[cfg(feature = "whisper")]
async fn whisper_rtf(ctx: &Ctx) -> Whisper {
    let clip = match speech_clip(60.0) {
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

/// The offline Whisper from `WHISPER_DIR` or `<workspace>/.cache/models/whisper-tiny-en`.
#[cfg(feature = "whisper")]
fn whisper_engine(
    root: &std::path::Path,
) -> Result<Box<dyn moderation_core::ports::SpeechToText>, String> {
    let dir = std::env::var_os("WHISPER_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join(".cache/models/whisper-tiny-en"));
    moderation_offline::whisper::Whisper::load(&dir)
        .map(|w| Box::new(w) as Box<dyn moderation_core::ports::SpeechToText>)
        .map_err(|e| format!("{e} (make models)"))
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

/// About `seconds` of English speech from espeak-ng (Debian `espeak-ng`): chat lines spoken
/// one after another, with short pauses, until the clip is long enough.
#[cfg_attr(not(feature = "whisper"), allow(dead_code))]
pub fn speech_clip(seconds: f64) -> Result<Clip, String> {
    use moderation_offline::speech_samples::speak_lines;
    // espeak-ng at 150 words a minute with the pauses: ~2 words a second.
    let words_needed = (seconds * 2.0) as usize;
    let mut lines = Vec::new();
    let mut words = 0;
    while words < words_needed {
        let line = message(lines.len()).replace('#', "number ");
        words += line.split_whitespace().count();
        lines.push(line);
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let clip = speak_lines(&refs, 0.4).map_err(|e| e.to_string())?;
    let seconds = clip.lines.last().map_or(0.0, |(_, end, _)| end + 0.4);
    Ok(Clip {
        wav: clip.wav,
        seconds,
    })
}
