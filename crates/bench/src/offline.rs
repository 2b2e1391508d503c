//! Offline backend speed: the embedded toxicity model (linear model + lexicons) in messages
//! per second on one core, the MiniLM detector head (feature `semantic`) in messages per
//! second on the machine's cores, and Whisper's real-time factor on a 60 s clip.

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
    pub embedding: Embedding,
}

/// The embedding detector (lexicons + all-MiniLM-L6-v2 head), batches of 32 as modctl runs it.
#[derive(Debug, Clone, Default)]
pub enum Embedding {
    Measured {
        /// Messages per second, one value per run (distinct messages each run: no cache hits).
        per_s: Vec<f64>,
        messages_per_run: usize,
    },
    #[default]
    NotBuilt,
    Failed(String),
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
    let embedding = embedding_speed(ctx).await;
    if let Embedding::Measured { per_s, .. } = &embedding {
        eprintln!("bench:   embedding detector {:.0} msg/s", median(per_s));
    }
    OfflineResult {
        scoring,
        messages_per_run: n,
        whisper: whisper_rtf(ctx).await,
        embedding,
    }
}

#[cfg(not(feature = "semantic"))]
async fn embedding_speed(_ctx: &Ctx) -> Embedding {
    Embedding::NotBuilt
}

#[cfg(feature = "semantic")]
async fn embedding_speed(ctx: &Ctx) -> Embedding {
    let runs = ctx.runs;
    let dir = std::env::var_os("MINILM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ctx.root.join(".cache/models/all-minilm-l6-v2"));
    tokio::task::spawn_blocking(move || {
        let detector = match moderation_offline::text::embedding::EmbeddingDetector::load(&dir) {
            Ok(d) => d,
            Err(e) => return Embedding::Failed(format!("{e} (make models)")),
        };
        let n = 1_024;
        let mut per_s = Vec::new();
        for run in 0..runs {
            let messages: Vec<String> = (0..n).map(|i| message(run * n + i)).collect();
            let t = Instant::now();
            for batch in messages.chunks(32) {
                let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
                if let Err(e) = detector.score_all(&refs) {
                    return Embedding::Failed(e.to_string());
                }
            }
            per_s.push(n as f64 / t.elapsed().as_secs_f64());
        }
        Embedding::Measured {
            per_s,
            messages_per_run: n,
        }
    })
    .await
    .unwrap_or_else(|e| Embedding::Failed(e.to_string()))
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
    moderation_offline::speech::whisper::Whisper::load(&dir)
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
    use moderation_offline::speech::samples::speak_lines;
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
