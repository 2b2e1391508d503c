//! Offline speech-to-text (feature `whisper`): OpenAI Whisper tiny.en run on the CPU with
//! candle, behind the [`SpeechToText`] port.
//!
//! The model folder comes from `scripts/fetch-whisper.sh`: CTranslate2's `model.bin`, its
//! `config.json` (suppressed tokens), `tokenizer.json`, and `model.safetensors`, converted from
//! `model.bin` by [`crate::speech::ct2`] on first load (written beside it, so once). The
//! network is this crate's ([`model`], candle tensors, a key/value cache in the decoder); the same file
//! loads in `candle-transformers`' Whisper, and the two agree (tested).
//!
//! What follows openai-whisper's `transcribe()` with greedy decoding:
//! - features: 80-bin log-mel of 25 ms Hann windows every 10 ms (centred, reflect-padded, as
//!   `torch.stft`), Slaney mel filterbank, `log10` clamped 8 below the recording's maximum;
//! - 30 s windows: each window is decoded from `<|startoftranscript|>` with timestamp tokens;
//!   segments are the text between pairs of timestamps, and the next window starts at the last
//!   complete timestamp (or after the window, when it ended on one), so times are offsets into
//!   the recording;
//! - logit rules: suppressed tokens from the model's config, no blank or end at the start,
//!   timestamps in pairs and never decreasing, the first within 1 s, and a timestamp whenever
//!   the timestamps together are likelier than any text token;
//! - a window whose `<|nocaptions|>` probability is over 0.6 while its tokens average a
//!   log-probability under -1 is silence and yields nothing.
//!
//! Added to that, from the features' loudness (frames within 50 dB of the loudest): more than
//! 1 s of silence before a window is skipped (the model must open a window's first segment
//! within 1 s, so a phrase after a long pause would otherwise be dated too early), and segment
//! edges, which Whisper puts anywhere in the silence between phrases, are pulled in to the
//! sound. Trailing silence is never decoded.
//!
//! Runaway decoding is bounded: at most 224 tokens per window, and a loop (the same run of
//! tokens repeated) ends the window, keeping one copy.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use moderation_core::error::ServiceErrorKind;
use moderation_core::ports::{SpeechToText, TimedText};
use moderation_core::Result as CoreResult;
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use serde::Deserialize;
use tokenizers::Tokenizer;

use crate::error::{boxed, Error};
use crate::speech::audio::{self, SAMPLE_RATE};
use crate::speech::ct2::{self, WhisperDims};

mod model;

use model::{Decoder, Encoder};

/// Samples per analysis window (25 ms).
const N_FFT: usize = 400;
/// Samples between frames (10 ms).
const HOP: usize = 160;
/// Frames in a 30 s window.
const N_FRAMES: usize = 3_000;
/// Mel frames per decoder time step: a timestamp token is 20 ms.
const FRAMES_PER_TIMESTAMP: usize = 2;
const SECONDS_PER_FRAME: f64 = HOP as f64 / SAMPLE_RATE as f64;
const TIME_PRECISION: f64 = FRAMES_PER_TIMESTAMP as f64 * SECONDS_PER_FRAME;
/// Timestamp tokens run from 0.00 to 30.00 s.
const N_TIMESTAMPS: u32 = 1_501;
/// Tokens sampled per window at most (half the decoder's 448 positions, as openai-whisper).
const SAMPLE_LEN: usize = 224;
/// The first timestamp of a window is at most 1 s.
const MAX_INITIAL_TIMESTAMP_INDEX: u32 = 50;
const NO_SPEECH_THRESHOLD: f64 = 0.6;
const LOGPROB_THRESHOLD: f64 = -1.0;
/// A run of up to this many text tokens repeated back to back is looked for as a loop.
const LOOP_MAX_PERIOD: usize = 32;
/// A frame is voiced when its loudest mel band is within 50 dB of the recording's loudest frame
/// and above an absolute floor (about 70 dB under a full-scale tone); in log10 power.
const VOICED_RANGE: f32 = 5.0;
const VOICED_FLOOR: f32 = -5.0;
/// Leading silence longer than this is skipped before a window (in frames, 10 ms each)...
const MAX_LEADING_SILENCE: usize = 100;
/// ...keeping this much of it before the speech.
const LEADING_MARGIN: usize = 30;
/// Segment edges moved to the voiced frames keep this margin (seconds).
const EDGE_MARGIN: f64 = 0.1;

fn model_file(path: &Path) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Error + '_ {
    move |source| Error::SpeechModelFile {
        path: path.display().to_string(),
        source,
    }
}

fn failed(what: &str) -> impl FnOnce(candle_core::Error) -> Error + '_ {
    move |e| Error::Transcription {
        what: what.to_string(),
        source: Box::new(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Features

fn hz_to_mel(hz: f64) -> f64 {
    // Slaney: linear below 1 kHz, logarithmic above (librosa's default, htk=False).
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1_000.0;
    let log_step = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        MIN_LOG_HZ / F_SP + (hz / MIN_LOG_HZ).ln() / log_step
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1_000.0;
    let log_step = 6.4f64.ln() / 27.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (log_step * (mel - min_log_mel)).exp()
    } else {
        F_SP * mel
    }
}

/// The mel filterbank Whisper was trained with (`librosa.filters.mel(sr, n_fft, n_mels)`,
/// Slaney scale and area normalisation), row-major `n_mels × (n_fft / 2 + 1)`.
pub fn mel_filters(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_bins = n_fft / 2 + 1;
    let nyquist = f64::from(sample_rate) / 2.0;
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(nyquist));
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut out = vec![0f32; n_mels * n_bins];
    for m in 0..n_mels {
        let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
        let norm = 2.0 / (right - left);
        for k in 0..n_bins {
            let f = k as f64 * f64::from(sample_rate) / n_fft as f64;
            let rising = (f - left) / (centre - left);
            let falling = (right - f) / (right - centre);
            out[m * n_bins + k] = (rising.min(falling).max(0.0) * norm) as f32;
        }
    }
    out
}

/// Log-mel features: the filterbank kept as the non-zero run of each row, and an FFT plan.
struct MelFrontend {
    n_mels: usize,
    /// Per mel bin: first FFT bin and the weights from there.
    filters: Vec<(usize, Vec<f32>)>,
    window: Vec<f32>,
    fft: Arc<dyn rustfft::Fft<f32>>,
}

impl MelFrontend {
    fn new(n_mels: usize) -> Self {
        let n_bins = N_FFT / 2 + 1;
        let dense = mel_filters(SAMPLE_RATE, N_FFT, n_mels);
        let filters = dense
            .chunks_exact(n_bins)
            .map(|row| {
                let first = row.iter().position(|&w| w > 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w > 0.0).map_or(first, |l| l + 1);
                (first, row[first..last].to_vec())
            })
            .collect();
        // Periodic Hann, as torch.hann_window.
        let window = (0..N_FFT)
            .map(|i| (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / N_FFT as f64).cos()) as f32)
            .collect();
        MelFrontend {
            n_mels,
            filters,
            window,
            fft: FftPlanner::new().plan_fft_forward(N_FFT),
        }
    }

    /// Features of the whole recording: `n_mels` rows of `pcm.len() / HOP` frames, normalised
    /// as Whisper expects. Frame `t` is centred on sample `t × HOP`; the start is
    /// reflect-padded and the end zero-padded, as openai-whisper pads 30 s of silence before
    /// its STFT.
    fn log_mel(&self, pcm: &[f32]) -> (Vec<f32>, usize) {
        let frames = pcm.len() / HOP;
        let mut mel = vec![0f32; self.n_mels * frames];
        let sample = |i: isize| pcm.get(i.unsigned_abs()).copied().unwrap_or(0.0);
        let mut buf = vec![Complex::new(0f32, 0f32); N_FFT];
        let mut scratch = vec![Complex::new(0f32, 0f32); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0f32; N_FFT / 2 + 1];
        let half = (N_FFT / 2) as isize;
        for t in 0..frames {
            let start = (t * HOP) as isize - half;
            for (j, (b, w)) in buf.iter_mut().zip(&self.window).enumerate() {
                *b = Complex::new(sample(start + j as isize) * w, 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buf) {
                *p = c.norm_sqr();
            }
            for (m, (first, weights)) in self.filters.iter().enumerate() {
                let energy: f32 = power[*first..]
                    .iter()
                    .zip(weights)
                    .map(|(p, w)| p * w)
                    .sum();
                mel[m * frames + t] = energy.max(1e-10).log10();
            }
        }
        let max = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in &mut mel {
            *v = (v.max(max - 8.0) + 4.0) / 4.0;
        }
        (mel, frames)
    }

    /// Which frames of [`MelFrontend::log_mel`]'s output hold sound rather than silence (see
    /// [`VOICED_RANGE`]). Whisper itself places segment edges in silence only roughly, and must
    /// start a window's first segment within 1 s: this is used to skip long silences before a
    /// window and to pull segment edges in to where the sound is.
    fn voiced(&self, mel: &[f32], frames: usize) -> Vec<bool> {
        let mut loudest = vec![f32::NEG_INFINITY; frames];
        for row in mel.chunks_exact(frames.max(1)).take(self.n_mels) {
            for (l, &v) in loudest.iter_mut().zip(row) {
                *l = l.max(v * 4.0 - 4.0);
            }
        }
        let peak = loudest.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let threshold = (peak - VOICED_RANGE).max(VOICED_FLOOR);
        loudest.iter().map(|&l| l >= threshold).collect()
    }
}

/// Narrow `(start, end)` in seconds to the voiced frames inside it, with a margin; unchanged
/// when none is voiced.
fn trim_to_voiced(start: f64, end: f64, voiced: &[bool]) -> (f64, f64) {
    let first = (start / SECONDS_PER_FRAME).floor() as usize;
    let last = ((end / SECONDS_PER_FRAME).ceil() as usize).min(voiced.len());
    let Some(range) = voiced.get(first..last) else {
        return (start, end);
    };
    match (
        range.iter().position(|&v| v),
        range.iter().rposition(|&v| v),
    ) {
        (Some(on), Some(off)) => {
            let on = (first + on) as f64 * SECONDS_PER_FRAME - EDGE_MARGIN;
            let off = (first + off + 1) as f64 * SECONDS_PER_FRAME + EDGE_MARGIN;
            (start.max(on), end.min(off))
        }
        _ => (start, end),
    }
}

/// A stretch of silence this long (in frames) between two phrases is a pause a boundary may
/// move to; shorter ones are gaps inside a phrase (commas, stops).
const MIN_PAUSE_FRAMES: usize = 30;
/// How far (seconds) a boundary may move to reach a pause.
const MAX_BOUNDARY_SHIFT: f64 = 2.0;

/// Whisper sometimes puts the boundary between two phrases inside one of them (e.g. the next
/// segment "starts" while the last words of the previous one are still being said). Where two
/// segments meet and a pause lies within [`MAX_BOUNDARY_SHIFT`] of the boundary, the boundary
/// moves to that pause, so each segment's times cover its own words.
fn realign_boundaries(segs: &mut [TimedText], voiced: &[bool]) {
    let frame = |t: f64| ((t / SECONDS_PER_FRAME).round().max(0.0) as usize).min(voiced.len());
    for i in 1..segs.len() {
        let boundary = segs[i].start_time;
        if (segs[i - 1].end_time - boundary).abs() > 0.15 {
            continue; // not touching: trim_to_voiced already placed both edges
        }
        let b = frame(boundary);
        let lo = frame((boundary - MAX_BOUNDARY_SHIFT).max(segs[i - 1].start_time));
        let hi = frame((boundary + MAX_BOUNDARY_SHIFT).min(segs[i].end_time));
        // Silent runs inside [lo, hi), nearest to the boundary first.
        let mut best: Option<(usize, usize)> = None;
        let mut run_start = None;
        // One step past `hi` closes a run that reaches it.
        let frames = voiced[lo..hi].iter().map(|v| !v).chain([false]);
        for (f, silent) in (lo..).zip(frames) {
            match (silent, run_start) {
                (true, None) => run_start = Some(f),
                (false, Some(s)) => {
                    run_start = None;
                    if f - s < MIN_PAUSE_FRAMES {
                        continue;
                    }
                    let distance = |(s, e): (usize, usize)| {
                        if b < s {
                            s - b
                        } else {
                            b.saturating_sub(e)
                        }
                    };
                    if best.is_none_or(|r| distance((s, f)) < distance(r)) {
                        best = Some((s, f));
                    }
                }
                _ => {}
            }
        }
        if let Some((s, e)) = best {
            if (s..=e).contains(&b) {
                continue; // already in the pause
            }
            segs[i - 1].end_time = s as f64 * SECONDS_PER_FRAME + EDGE_MARGIN;
            segs[i].start_time = e as f64 * SECONDS_PER_FRAME - EDGE_MARGIN;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// CTranslate2's `config.json` next to `model.bin`.
#[derive(Debug, Default, Deserialize)]
struct Ct2Config {
    #[serde(default)]
    suppress_ids: Vec<i64>,
    #[serde(default)]
    suppress_ids_begin: Vec<i64>,
}

#[derive(Debug, Clone)]
struct Specials {
    sot: u32,
    eot: u32,
    no_speech: Option<u32>,
    timestamp_begin: u32,
    /// Never sampled.
    suppress: Vec<u32>,
    /// Not sampled as the first token of a window.
    suppress_begin: Vec<u32>,
}

impl Specials {
    fn new(tokenizer: &Tokenizer, config: &Ct2Config, vocab_size: usize) -> Result<Self, String> {
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| format!("the tokenizer has no {t}"))
        };
        let eot = id("<|endoftext|>")?;
        let sot = id("<|startoftranscript|>")?;
        let no_timestamps = id("<|notimestamps|>")?;
        let no_speech = id("<|nocaptions|>").or_else(|_| id("<|nospeech|>")).ok();
        let timestamp_begin = no_timestamps + 1;
        let vocab = u32::try_from(vocab_size).map_err(|e| e.to_string())?;
        if timestamp_begin + N_TIMESTAMPS != vocab {
            return Err(format!(
                "timestamps would start at token {timestamp_begin}, but the model has {vocab} \
                 tokens, not {timestamp_begin} + {N_TIMESTAMPS}"
            ));
        }
        let valid = |ids: &[i64]| -> Vec<u32> {
            ids.iter()
                .filter_map(|&i| u32::try_from(i).ok())
                .filter(|&i| i < vocab)
                .collect()
        };
        // The model's list, plus every special token between <|endoftext|> and the timestamps
        // (start of transcript, languages, tasks, <|nocaptions|>, <|notimestamps|>).
        let mut suppress = valid(&config.suppress_ids);
        suppress.extend(eot + 1..timestamp_begin);
        suppress.sort_unstable();
        suppress.dedup();
        let mut suppress_begin = valid(&config.suppress_ids_begin);
        if suppress_begin.is_empty() {
            // Blank and end of text, as openai-whisper's SuppressBlank.
            suppress_begin.push(eot);
            suppress_begin.extend(tokenizer.token_to_id("\u{120}"));
        }
        Ok(Specials {
            sot,
            eot,
            no_speech,
            timestamp_begin,
            suppress,
            suppress_begin,
        })
    }

    fn is_timestamp(&self, t: u32) -> bool {
        t >= self.timestamp_begin
    }
}

/// Masks the logits of the next token by openai-whisper's rules for timestamped transcription.
/// `sampled` are the tokens after `<|startoftranscript|>`.
fn apply_rules(logits: &mut [f32], sampled: &[u32], sp: &Specials) {
    let ts = sp.timestamp_begin as usize;
    let eot = sp.eot as usize;
    let block = |logits: &mut [f32], range: std::ops::Range<usize>| {
        let end = range.end.min(logits.len());
        if let Some(s) = logits.get_mut(range.start.min(end)..end) {
            s.fill(f32::NEG_INFINITY);
        }
    };
    for &t in &sp.suppress {
        block(logits, t as usize..t as usize + 1);
    }
    if sampled.is_empty() {
        for &t in &sp.suppress_begin {
            block(logits, t as usize..t as usize + 1);
        }
    }

    let last_ts = sampled.last().is_some_and(|&t| sp.is_timestamp(t));
    let penultimate_ts = sampled.len() < 2 || sp.is_timestamp(sampled[sampled.len() - 2]);
    if last_ts {
        if penultimate_ts {
            // A pair just closed: text (or the end) must follow.
            block(logits, ts..logits.len());
        } else {
            // An open segment was just closed by a timestamp: another one must open.
            block(logits, 0..eot);
        }
    }
    if let Some(&latest) = sampled.iter().rev().find(|&&t| sp.is_timestamp(t)) {
        // Never go back in time; a segment that opened must last at least one step.
        let floor = if last_ts && !penultimate_ts {
            latest
        } else {
            latest + 1
        };
        block(logits, ts..floor as usize);
    }
    if sampled.is_empty() {
        block(logits, 0..ts);
        block(
            logits,
            ts + MAX_INITIAL_TIMESTAMP_INDEX as usize + 1..logits.len(),
        );
    }

    // When the timestamps together outweigh the best text token, take a timestamp.
    let log_z = log_sum_exp(logits);
    let ts_mass = log_sum_exp(&logits[ts.min(logits.len())..]);
    let best_text = logits[..ts.min(logits.len())]
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    if ts_mass - log_z > best_text - log_z {
        block(logits, 0..ts);
    }
}

fn log_sum_exp(v: &[f32]) -> f32 {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    let sum: f64 = v.iter().map(|&x| f64::from(x - max).exp()).sum();
    max + sum.ln() as f32
}

/// If the text tokens end in a loop (a run of up to [`LOOP_MAX_PERIOD`] tokens repeated back
/// to back, at least 4 times and over at least 16 tokens), its period.
fn repetition(text: &[u32]) -> Option<usize> {
    (1..=LOOP_MAX_PERIOD).find(|&period| {
        let reps = 4.max(16usize.div_ceil(period));
        let need = period * reps;
        text.len() >= need && {
            let tail = &text[text.len() - need..];
            tail.iter().zip(&tail[period..]).all(|(a, b)| a == b)
        }
    })
}

/// The decoded tokens of one window.
#[derive(Debug, Clone, PartialEq)]
struct WindowTokens {
    /// After `<|startoftranscript|>`, without `<|endoftext|>`.
    tokens: Vec<u32>,
    avg_logprob: f64,
    no_speech_prob: f64,
}

/// A window's segments (start, end, text tokens) in seconds from the recording's start, and how
/// many mel frames the next window starts after this one's start.
fn segments(
    tokens: &[u32],
    sp: &Specials,
    time_offset: f64,
    segment_frames: usize,
) -> (Vec<(f64, f64, Vec<u32>)>, usize) {
    let is_ts: Vec<bool> = tokens.iter().map(|&t| sp.is_timestamp(t)).collect();
    let position = |t: u32| f64::from(t - sp.timestamp_begin) * TIME_PRECISION;
    let text = |s: &[u32]| -> Vec<u32> { s.iter().copied().filter(|&t| t < sp.eot).collect() };
    let single_timestamp_ending =
        is_ts.len() >= 2 && !is_ts[is_ts.len() - 2] && is_ts[is_ts.len() - 1];
    // Indices where a timestamp follows a timestamp: the boundaries between segments.
    let mut cuts: Vec<usize> = (1..tokens.len())
        .filter(|&i| is_ts[i] && is_ts[i - 1])
        .collect();
    let mut out = Vec::new();
    if cuts.is_empty() {
        // One segment for the whole window, ending at its last timestamp if it has one.
        let mut duration = segment_frames as f64 * SECONDS_PER_FRAME;
        if let Some(&last) = tokens.iter().rev().find(|&&t| sp.is_timestamp(t)) {
            if last != sp.timestamp_begin {
                duration = position(last);
            }
        }
        out.push((time_offset, time_offset + duration, text(tokens)));
        return (out, segment_frames);
    }
    if single_timestamp_ending {
        cuts.push(tokens.len());
    }
    let mut from = 0;
    for &cut in &cuts {
        let seg = &tokens[from..cut];
        if let (Some(&first), Some(&last)) = (seg.first(), seg.last()) {
            if sp.is_timestamp(first) && sp.is_timestamp(last) {
                out.push((
                    time_offset + position(first),
                    time_offset + position(last),
                    text(seg),
                ));
            }
        }
        from = cut;
    }
    let advance = if single_timestamp_ending {
        segment_frames
    } else {
        // Resume at the last complete timestamp: the words after it were cut by the window.
        let last = tokens[from - 1];
        (last - sp.timestamp_begin) as usize * FRAMES_PER_TIMESTAMP
    };
    // Always move forward, never past the window.
    (out, advance.clamp(1, segment_frames))
}

// ---------------------------------------------------------------------------------------------
// The model

/// Whisper tiny.en on the CPU. Shareable: a transcription keeps its state (the decoder's cache)
/// to itself, so several can run at once.
pub struct Whisper {
    encoder: Encoder,
    decoder: Decoder,
    tokenizer: Tokenizer,
    specials: Specials,
    mel: MelFrontend,
    device: Device,
    name: String,
}

impl Whisper {
    /// Load `tokenizer.json`, `config.json` and `model.safetensors` from `dir` (see the module
    /// doc). A missing `model.safetensors` is converted from `model.bin` and written there.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path).map_err(model_file(&tok_path))?;

        let config_path = dir.join("config.json");
        let config: Ct2Config = match fs::read_to_string(&config_path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(boxed)
                .map_err(model_file(&config_path))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ct2Config::default(),
            Err(e) => return Err(model_file(&config_path)(boxed(e))),
        };

        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            let bin = dir.join("model.bin");
            if bin.is_file() {
                tracing::info!(from = %bin.display(), "converting CTranslate2 weights to safetensors");
                ct2::convert_whisper_file(&bin, &weights)?;
            }
        }
        // Read, not mmap: the workspace forbids unsafe code, and the file is only 75 MB.
        let bytes = fs::read(&weights)
            .map_err(boxed)
            .map_err(model_file(&weights))?;
        let dims = {
            let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
                .map_err(boxed)
                .map_err(model_file(&weights))?;
            let meta = meta.metadata().clone().unwrap_or_default();
            WhisperDims::from_metadata(&meta).map_err(|e| model_file(&weights)(e.into()))?
        };
        let specials = Specials::new(&tokenizer, &config, dims.vocab_size)
            .map_err(|e| model_file(&tok_path)(e.into()))?;
        if dims.max_source_positions * 2 != N_FRAMES || dims.max_target_positions <= SAMPLE_LEN {
            return Err(model_file(&weights)(
                format!("unexpected context sizes in {dims:?}").into(),
            ));
        }
        let device = Device::Cpu;
        let (encoder, decoder) = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
            .and_then(|vb| {
                Ok((
                    Encoder::load(&dims, vb.pp("model.encoder"))?,
                    Decoder::load(&dims, vb.pp("model.decoder"))?,
                ))
            })
            .map_err(boxed)
            .map_err(model_file(&weights))?;
        let name = format!(
            "whisper ({})",
            dir.file_name()
                .map_or("model".into(), |n| n.to_string_lossy().into_owned())
        );
        Ok(Whisper {
            encoder,
            decoder,
            tokenizer,
            mel: MelFrontend::new(dims.num_mel_bins),
            specials,
            device,
            name,
        })
    }

    /// Transcribe 16 kHz mono samples (see [`audio::decode_mono_16k`]).
    pub fn transcribe_pcm(&self, pcm: &[f32]) -> Result<Vec<TimedText>, Error> {
        let (mel, frames) = self.mel.log_mel(pcm);
        let voiced = self.mel.voiced(&mel, frames);
        let duration = pcm.len() as f64 / f64::from(SAMPLE_RATE);
        let mut out: Vec<TimedText> = Vec::new();
        let mut seek = 0;
        while seek < frames {
            // Skip a long silence (all of it, at the end of the recording).
            let Some(sound) = voiced[seek..].iter().position(|&v| v) else {
                break;
            };
            if sound > MAX_LEADING_SILENCE {
                seek += sound - LEADING_MARGIN;
            }
            let segment_frames = N_FRAMES.min(frames - seek);
            let time_offset = seek as f64 * SECONDS_PER_FRAME;
            let window = self.window(&mel, frames, seek, segment_frames)?;
            let audio = self
                .encoder
                .forward(&window)
                .map_err(failed("running the encoder"))?;
            let decoded = self.decode_window(&audio)?;
            if decoded.no_speech_prob > NO_SPEECH_THRESHOLD
                && decoded.avg_logprob < LOGPROB_THRESHOLD
            {
                tracing::debug!(time_offset, "window is silence");
                seek += segment_frames;
                continue;
            }
            let (segs, advance) =
                segments(&decoded.tokens, &self.specials, time_offset, segment_frames);
            for (start, end, tokens) in segs {
                let text = self.tokenizer.decode(&tokens, true).map_err(|source| {
                    Error::Transcription {
                        what: "decoding tokens to text".into(),
                        source,
                    }
                })?;
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                // Timestamps past the end (in the window's padding) are clamped, not dropped
                // with their words.
                let end = end.min(duration);
                let (start, end) = trim_to_voiced(start.min(end), end, &voiced);
                out.push(TimedText {
                    start_time: start,
                    end_time: end,
                    text: text.to_string(),
                });
            }
            seek += advance;
        }
        realign_boundaries(&mut out, &voiced);
        Ok(out)
    }

    /// Frames `seek..seek + len` of every mel row, zero-padded to a 30 s window.
    fn window(&self, mel: &[f32], frames: usize, seek: usize, len: usize) -> Result<Tensor, Error> {
        let n_mels = self.mel.n_mels;
        let mut data = vec![0f32; n_mels * N_FRAMES];
        for (row, dst) in data.chunks_exact_mut(N_FRAMES).enumerate() {
            let src = &mel[row * frames + seek..row * frames + seek + len];
            dst[..len].copy_from_slice(src);
        }
        Tensor::from_vec(data, (1, n_mels, N_FRAMES), &self.device)
            .map_err(failed("building the features"))
    }

    /// Greedy decoding of one window with timestamps.
    fn decode_window(&self, audio: &Tensor) -> Result<WindowTokens, Error> {
        let sp = &self.specials;
        let mut cache = self
            .decoder
            .start(audio)
            .map_err(failed("attending to the audio"))?;
        let mut tokens = vec![sp.sot];
        let mut text_positions: Vec<usize> = Vec::new();
        let mut sum_logprob = 0f64;
        let mut no_speech_prob = 0f64;
        for step in 0..SAMPLE_LEN {
            // The cache holds every token but the newest.
            let newest = tokens.len() - 1;
            let mut logits = self
                .decoder
                .step(&mut cache, &tokens[newest..])
                .and_then(|l| l.to_vec1::<f32>())
                .map_err(failed("running the decoder"))?;
            if step == 0 {
                // The only input is <|startoftranscript|>: its unfiltered distribution says
                // whether there is speech at all.
                if let Some(ns) = sp.no_speech.and_then(|t| logits.get(t as usize)) {
                    no_speech_prob = f64::from(ns - log_sum_exp(&logits)).exp();
                }
            }
            let sampled = &tokens[1..];
            apply_rules(&mut logits, sampled, sp);
            let Some((next, &best)) = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))
            else {
                break;
            };
            if best == f32::NEG_INFINITY {
                break;
            }
            sum_logprob += f64::from(best - log_sum_exp(&logits));
            let next = u32::try_from(next).unwrap_or(sp.eot);
            if next == sp.eot {
                break;
            }
            tokens.push(next);
            if next < sp.eot {
                text_positions.push(tokens.len() - 2);
                let text: Vec<u32> = text_positions.iter().map(|&i| tokens[i + 1]).collect();
                if let Some(period) = repetition(&text) {
                    // Keep one copy of the repeated run: cut where the second one starts.
                    let reps = 4.max(16usize.div_ceil(period));
                    let keep = text_positions[text_positions.len() - (reps - 1) * period];
                    tracing::warn!(period, "decoding loop cut");
                    tokens.truncate(keep + 1);
                    break;
                }
            }
        }
        let sampled = tokens.split_off(1);
        Ok(WindowTokens {
            avg_logprob: sum_logprob / (sampled.len() + 1) as f64,
            tokens: sampled,
            no_speech_prob,
        })
    }
}

impl SpeechToText for Whisper {
    fn name(&self) -> &str {
        &self.name
    }

    fn transcribe(&self, audio: &[u8], extension: &str) -> CoreResult<Vec<TimedText>> {
        let decoded = audio::decode_16k(audio, extension)
            .map_err(|e| moderation_core::Error::Input(e.to_string()))?;
        let heard = |pcm: &[f32]| {
            self.transcribe_pcm(pcm)
                .map_err(|e| moderation_core::Error::service("whisper", ServiceErrorKind::Other, e))
        };
        let mid = heard(&decoded.mid)?;
        // What the channels' difference carries that their mix does not (an inverted channel
        // cancels speech in the mix) is heard too.
        match &decoded.side {
            Some(side) => Ok(audio::merge_channels(mid, heard(side)?)),
            None => Ok(mid),
        }
    }
}

#[cfg(test)]
mod tests;
