use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use super::*;

// ---------------------------------------------------------------------------------------------
// Features and decoding rules, without the model

/// Entries of openai-whisper's `assets/mel_filters.npz` (`mel_80`, float32), which
/// `librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)` produced.
#[test]
fn mel_filters_match_openai_whisper() {
    let f = mel_filters(16_000, 400, 80);
    assert_eq!(f.len(), 80 * 201);
    let at = |m: usize, k: usize| f[m * 201 + k];
    for (m, k, want) in [
        (0, 1, 0.024_862_595),
        (1, 1, 0.001_990_822),
        (1, 2, 0.022_871_772),
        (10, 11, 0.004_954_375),
        (10, 12, 0.0),
        (40, 42, 0.005_411_105),
        (40, 43, 0.014_735_566),
        (40, 44, 0.006_518_19),
        (60, 90, 0.001_434_534_3),
        (60, 93, 0.006_591_093),
        (60, 96, 0.000_797_849_15),
        (79, 186, 0.000_366_741_67),
        (79, 200, 0.0),
    ] {
        let got = at(m, k);
        assert!(
            (got - want).abs() < 1e-7,
            "filter {m} bin {k}: {got}, want {want}"
        );
    }
    let sum: f64 = f.iter().map(|&v| f64::from(v)).sum();
    assert!((sum - 1.999_024_092).abs() < 1e-5, "sum {sum}");
    // Filter 79 covers FFT bins 186..=199 only.
    let nonzero: Vec<usize> = (0..201).filter(|&k| at(79, k) > 0.0).collect();
    assert_eq!(nonzero, (186..200).collect::<Vec<_>>());
}

#[test]
fn log_mel_of_a_tone_peaks_in_its_band_and_is_normalised() {
    let mel = MelFrontend::new(80);
    let pcm: Vec<f32> = (0..16_000)
        .map(|i| 0.5 * (std::f32::consts::TAU * 1_000.0 * i as f32 / 16_000.0).sin())
        .collect();
    let (features, frames) = mel.log_mel(&pcm);
    assert_eq!(frames, 100);
    assert_eq!(features.len(), 80 * 100);
    // Whisper's scaling: (max(log10, max - 8) + 4) / 4, so the peak is (max + 4) / 4 and the
    // floor 2 below it.
    let max = features.iter().copied().fold(f32::MIN, f32::max);
    let min = features.iter().copied().fold(f32::MAX, f32::min);
    assert!((max - min - 2.0).abs() < 1e-4, "range {min}..{max}");
    // In the middle frame, the loudest mel bin holds 1 kHz: bins whose filters cover 1000 Hz.
    let t = 50;
    let loudest = (0..80)
        .max_by(|&a, &b| features[a * frames + t].total_cmp(&features[b * frames + t]))
        .unwrap_or(0);
    let f = mel_filters(16_000, 400, 80);
    assert!(
        f[loudest * 201 + 25] > 0.0,
        "loudest bin {loudest} does not cover 1 kHz"
    );
}

#[test]
fn silence_and_very_short_input_give_no_segments_without_the_model() {
    let mel = MelFrontend::new(80);
    assert_eq!(mel.log_mel(&[]).1, 0);
    assert_eq!(mel.log_mel(&[0.0; 159]).1, 0);
    let (f, frames) = mel.log_mel(&[0.0; 1_600]);
    assert_eq!(frames, 10);
    assert!(f.iter().all(|v| v.is_finite()));
}

#[test]
fn silence_is_found_and_segment_edges_move_to_the_sound() {
    let mel = MelFrontend::new(80);
    // 1 s silence, 0.5 s tone, 1 s silence, a tone 60 dB quieter, 0.5 s silence.
    let tone = |amp: f32, n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| amp * (std::f32::consts::TAU * 440.0 * i as f32 / 16_000.0).sin())
            .collect()
    };
    let mut pcm = vec![0.0; 16_000];
    pcm.extend(tone(0.5, 8_000));
    pcm.extend(vec![0.0; 16_000]);
    pcm.extend(tone(0.0005, 8_000));
    pcm.extend(vec![0.0; 8_000]);
    let (f, frames) = mel.log_mel(&pcm);
    let voiced = mel.voiced(&f, frames);
    let runs: Vec<usize> = (1..frames)
        .filter(|&t| voiced[t] != voiced[t - 1])
        .collect();
    // One voiced run, the loud tone (the window reaches 12.5 ms either side of it).
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        (99..=101).contains(&runs[0]) && (150..=152).contains(&runs[1]),
        "{runs:?}"
    );
    // A segment from 0.3 s to 2.4 s becomes the tone with 0.1 s margins.
    let (s, e) = trim_to_voiced(0.3, 2.4, &voiced);
    assert!((s - 0.9).abs() < 0.03 && (e - 1.6).abs() < 0.03, "{s} {e}");
    // Edges already on the sound stay; a segment over silence only is kept as it is.
    assert_eq!(trim_to_voiced(1.1, 1.3, &voiced), (1.1, 1.3));
    assert_eq!(trim_to_voiced(2.0, 2.5, &voiced), (2.0, 2.5));
    assert_eq!(trim_to_voiced(5.0, 6.0, &voiced), (5.0, 6.0));
}

fn specials() -> Specials {
    Specials {
        sot: 50_257,
        eot: 50_256,
        no_speech: Some(50_361),
        timestamp_begin: 50_363,
        suppress: (50_257..50_363).collect(),
        suppress_begin: vec![220, 50_256],
    }
}

const TS: u32 = 50_363;
const VOCAB: usize = 51_864;

fn allowed(logits: &[f32]) -> Vec<usize> {
    (0..logits.len())
        .filter(|&i| logits[i] > f32::NEG_INFINITY)
        .collect()
}

#[test]
fn first_token_is_a_timestamp_within_one_second() {
    let sp = specials();
    let mut logits = vec![0f32; VOCAB];
    logits[11] = 50.0; // a very likely text token is still not allowed first
    apply_rules(&mut logits, &[], &sp);
    let ok = allowed(&logits);
    assert_eq!(ok.first(), Some(&(TS as usize)));
    assert_eq!(ok.last(), Some(&(TS as usize + 50)));
    assert_eq!(ok.len(), 51);
}

#[test]
fn timestamps_come_in_pairs_and_never_go_back() {
    let sp = specials();
    // After "<|1.00|> hello": text, end, or a timestamp >= 1.00 (closing the segment).
    let mut logits = vec![0f32; VOCAB];
    logits[100] = 30.0; // text clearly wins, so timestamps stay allowed only by the rules
    apply_rules(&mut logits, &[TS + 50, 100], &sp);
    let ok = allowed(&logits);
    assert!(ok.contains(&100) && ok.contains(&50_256));
    // The closing timestamp must be later than the opening one.
    assert!(!ok.contains(&(TS as usize + 50)));
    assert!(ok.contains(&(TS as usize + 51)));
    // A closing timestamp just came: only another timestamp (>= it) or the end may follow.
    let mut logits = vec![0f32; VOCAB];
    logits[50_256] = 30.0;
    apply_rules(&mut logits, &[TS + 50, 100, TS + 80], &sp);
    let ok = allowed(&logits);
    assert_eq!(ok.first(), Some(&50_256));
    assert_eq!(ok.get(1), Some(&(TS as usize + 80)));
    // A pair just closed: no timestamp.
    let mut logits = vec![0f32; VOCAB];
    apply_rules(&mut logits, &[TS + 50, 100, TS + 80, TS + 80], &sp);
    assert!(allowed(&logits).iter().all(|&t| t < TS as usize));
    // Suppressed specials never appear.
    assert!(!allowed(&logits).contains(&(sp.sot as usize)));
}

#[test]
fn probable_timestamps_outweigh_a_single_text_token() {
    let sp = specials();
    // Text token 100 is the single best token, but the 1,501 timestamps together are likelier.
    let mut logits = vec![0f32; VOCAB];
    logits[100] = 5.0;
    apply_rules(&mut logits, &[TS, 100], &sp);
    assert!(allowed(&logits).iter().all(|&t| t >= TS as usize));
}

#[test]
fn segments_come_from_timestamp_pairs_and_seek_resumes_at_the_last_one() {
    let sp = specials();
    // <|0.00|> a b <|1.00|><|1.20|> c <|2.50|><|2.60|> d (cut by the window)
    let tokens = [TS, 1, 2, TS + 50, TS + 60, 3, TS + 125, TS + 130, 4];
    let (segs, advance) = segments(&tokens, &sp, 30.0, 3_000);
    assert_eq!(segs, vec![(30.0, 31.0, vec![1, 2]), (31.2, 32.5, vec![3]),]);
    // Resume at the end of the last complete segment, 2.50 s (250 frames): "d" is decoded
    // again in the next window, whole.
    assert_eq!(advance, 250);

    // Ending on a single timestamp: the window is complete.
    let tokens = [TS, 1, TS + 50, TS + 60, 3, TS + 125];
    let (segs, advance) = segments(&tokens, &sp, 0.0, 1_800);
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[1], (1.2, 2.5, vec![3]));
    assert_eq!(advance, 1_800);

    // No pair at all: one segment for the window, up to its last timestamp.
    let (segs, advance) = segments(&[TS, 7, 8, TS + 100], &sp, 10.0, 500);
    assert_eq!(segs, vec![(10.0, 12.0, vec![7, 8])]);
    assert_eq!(advance, 500);

    // A pair at 0.00 must not stall the loop.
    let (_, advance) = segments(&[TS, TS, 5], &sp, 0.0, 3_000);
    assert!(advance >= 1);
}

#[test]
fn loops_are_detected_but_ordinary_repetition_is_not() {
    assert_eq!(repetition(&[1, 2, 3, 4, 5]), None);
    // "no no no no" is speech.
    assert_eq!(repetition(&[9, 7, 7, 7, 7]), None);
    assert_eq!(repetition(&[7; 16]), Some(1));
    let looped: Vec<u32> = [5, 6, 7].iter().cycle().take(18).copied().collect();
    assert_eq!(repetition(&looped), Some(3));
    let phrase: Vec<u32> = (0..10).collect();
    let mut four = vec![99];
    for _ in 0..4 {
        four.extend(&phrase);
    }
    assert_eq!(repetition(&four), Some(10));
    assert_eq!(repetition(&four[..four.len() - 1]), None);
}

// ---------------------------------------------------------------------------------------------
// Word error rate

use crate::speech::samples::{word_error_rate as wer, words};

#[test]
fn wer_counts_word_edits_ignoring_case_and_punctuation() {
    assert_eq!(wer("Hello, world!", "hello world"), 0.0);
    assert_eq!(wer("a b c d", "a x c d"), 0.25);
    assert_eq!(wer("a b c d", "a c d"), 0.25);
    assert_eq!(wer("a b", "a b c d"), 1.0);
    assert_eq!(wer("Don't stop", "dont stop"), 0.0);
}

// ---------------------------------------------------------------------------------------------
// With the model and espeak-ng

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn require() -> bool {
    std::env::var("REQUIRE_MODELS").as_deref() == Ok("1")
}

fn model_dir() -> PathBuf {
    std::env::var_os("WHISPER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".cache/models/whisper-tiny-en"))
}

/// Loaded once for all tests; `None` (after a skip line) without the model.
fn loaded() -> Option<&'static Whisper> {
    static MODEL: OnceLock<Option<Whisper>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = model_dir();
            if !dir.join("model.bin").is_file() && !dir.join("model.safetensors").is_file() {
                // CI sets REQUIRE_MODELS=1 so a missing model cannot pass as a skip.
                assert!(
                    !require(),
                    "REQUIRE_MODELS=1 but {} has no Whisper model; \
                     run crates/offline/scripts/fetch-whisper.sh",
                    dir.display()
                );
                eprintln!(
                    "skipping: no Whisper tiny.en in {} (crates/offline/scripts/fetch-whisper.sh)",
                    dir.display()
                );
                return None;
            }
            let started = Instant::now();
            let w = Whisper::load(&dir).expect("Whisper loads");
            eprintln!(
                "whisper: loaded in {:.2} s",
                started.elapsed().as_secs_f64()
            );
            Some(w)
        })
        .as_ref()
}

/// The model, when espeak-ng is there to speak the test clips.
fn fixture() -> Option<&'static Whisper> {
    let w = loaded()?;
    if Command::new("espeak-ng").arg("--version").output().is_err() {
        assert!(
            !require(),
            "REQUIRE_MODELS=1 but espeak-ng is not installed (make deps-test)"
        );
        eprintln!("skipping: espeak-ng is not installed (make deps-test)");
        return None;
    }
    Some(w)
}

/// The converted file is what `candle-transformers`' Whisper loads, and this crate's network
/// (with its decoder cache and exact GELU) computes what that one does.
#[test]
fn the_network_agrees_with_candle_transformers_whisper() {
    use candle_transformers::models::whisper as ct;
    let Some(w) = loaded() else { return };
    let path = model_dir().join("model.safetensors");
    let bytes = fs::read(&path).expect("model.safetensors");
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("header");
    let dims = WhisperDims::from_metadata(&meta.metadata().clone().unwrap_or_default())
        .expect("dimensions in the metadata");
    let config = ct::Config {
        num_mel_bins: dims.num_mel_bins,
        max_source_positions: dims.max_source_positions,
        d_model: dims.d_model,
        encoder_attention_heads: dims.encoder_attention_heads,
        encoder_layers: dims.encoder_layers,
        vocab_size: dims.vocab_size,
        max_target_positions: dims.max_target_positions,
        decoder_attention_heads: dims.decoder_attention_heads,
        decoder_layers: dims.decoder_layers,
        suppress_tokens: vec![],
    };
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)
        .expect("var builder");
    let mut theirs = ct::model::Whisper::load(&vb, config).expect("candle-transformers loads it");

    // Two seconds of a chirp, as features of one window.
    let pcm: Vec<f32> = (0..32_000)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            0.3 * (std::f32::consts::TAU * (200.0 + 400.0 * t) * t).sin()
        })
        .collect();
    let (mel, frames) = w.mel.log_mel(&pcm);
    let window = w.window(&mel, frames, 0, frames).expect("window");

    let ours = w.encoder.forward(&window).expect("our encoder");
    let other = theirs
        .encoder
        .forward(&window, true)
        .expect("their encoder");
    let other = other.squeeze(0).expect("batch of one");
    let close = |a: &Tensor, b: &Tensor| -> (f32, f32) {
        let a = a.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("a");
        let b = b.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("b");
        let dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        let max = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        (dot / (na * nb), max)
    };
    // Only the GELU differs (candle-transformers uses the tanh approximation).
    let (cos, max) = close(&ours, &other);
    assert!(
        cos > 0.9999,
        "encoder outputs differ: cosine {cos}, max {max}"
    );

    // The decoder, token by token with the cache, against the whole sequence each time.
    let sp = &w.specials;
    let prefix = [sp.sot, sp.timestamp_begin, 40, 1_000, 286];
    let mut cache = w.decoder.start(&ours).expect("cache");
    for n in 1..=prefix.len() {
        let ours_logits = w.decoder.step(&mut cache, &prefix[n - 1..n]).expect("step");
        let ids = Tensor::new(&prefix[..n], &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .expect("ids");
        let hidden = theirs
            .decoder
            .forward(&ids, &ours.unsqueeze(0).expect("batch"), n == 1)
            .expect("their decoder");
        let last = hidden
            .narrow(1, n - 1, 1)
            .and_then(|h| theirs.decoder.final_linear(&h))
            .and_then(|l| l.flatten_all())
            .expect("their logits");
        let (cos, max) = close(&ours_logits, &last);
        assert!(
            cos > 0.9999 && max < 0.5,
            "step {n}: cosine {cos}, max {max}"
        );
        let argmax = |t: &Tensor| {
            t.argmax(0)
                .and_then(|i| i.to_scalar::<u32>())
                .expect("argmax")
        };
        assert_eq!(argmax(&ours_logits), argmax(&last), "step {n}");
    }
    // Five tokens at once (causal mask) give what five single steps gave.
    let mut cache = w.decoder.start(&ours).expect("cache");
    let all = w.decoder.step(&mut cache, &prefix).expect("five at once");
    let mut cache = w.decoder.start(&ours).expect("cache");
    let mut one = None;
    for t in &prefix {
        one = Some(w.decoder.step(&mut cache, &[*t]).expect("one"));
    }
    let (cos, max) = close(&all, &one.expect("stepped"));
    assert!(cos > 0.99999 && max < 1e-3, "cosine {cos}, max {max}");
}

/// `text` spoken by espeak-ng, as a WAV file (22.05 kHz mono 16-bit).
fn speak(text: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("clip.wav");
    let status = Command::new("espeak-ng")
        .arg("-w")
        .arg(&path)
        .arg(text)
        .status()
        .expect("espeak-ng runs");
    assert!(status.success(), "espeak-ng failed on {text:?}");
    std::fs::read(&path).expect("espeak-ng wrote the clip")
}

fn joined(segments: &[TimedText]) -> String {
    segments
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn timed(w: &Whisper, wav: &[u8], seconds: f64) -> Vec<TimedText> {
    let started = Instant::now();
    let segments = w.transcribe(wav, "wav").expect("transcribes");
    let took = started.elapsed().as_secs_f64();
    eprintln!(
        "whisper: {seconds:.1} s of audio in {took:.2} s (real-time factor {:.3})",
        took / seconds
    );
    for s in &segments {
        eprintln!("  [{:6.2} - {:6.2}] {}", s.start_time, s.end_time, s.text);
    }
    segments
}

/// (b) Game chat with a threat and an insult, through the port (WAV at 22.05 kHz).
#[test]
fn game_chat_is_transcribed_with_a_low_word_error_rate() {
    let Some(w) = fixture() else { return };
    let reference = "Nice try, but you are a worthless idiot and your aim is terrible. \
                     I will find you and hurt you after the match. \
                     Report him, he is cheating.";
    let wav = speak(reference);
    let seconds = audio::decode_mono_16k(&wav, "wav").expect("decodes").len() as f64 / 16_000.0;
    let segments = timed(w, &wav, seconds);
    let text = joined(&segments);
    let error = wer(reference, &text);
    eprintln!("whisper: WER {error:.3}");
    assert!(error <= 0.2, "WER {error:.3}: {text:?}");
    // espeak-ng's "hurt" comes out as "third" (CTranslate2 with the same weights agrees).
    assert!(
        words(&text).windows(2).any(|p| p == ["find", "you"]),
        "{text:?}"
    );
    for s in &segments {
        assert!(
            s.start_time <= s.end_time && s.end_time <= seconds + 0.01,
            "{s:?}"
        );
    }
}

/// (c) Longer than one 30 s window: the phrase spoken at 34 s is found there.
#[test]
fn recordings_longer_than_30_seconds_keep_real_offsets() {
    let Some(w) = fixture() else { return };
    let script: [(f64, &str); 7] = [
        (0.5, "Hey team, push the middle lane and take the tower."),
        (8.0, "You are such a useless noob, just leave the game."),
        (16.0, "Nice shot, well played everyone."),
        (24.0, "Stop feeding, we are losing because of you."),
        (34.0, "I will find you and hurt you after the match."),
        (43.0, "Good game, see you in the next round."),
        (50.0, "Thanks for playing with us tonight."),
    ];
    let mut pcm: Vec<f32> = Vec::new();
    for (i, (at, text)) in script.iter().enumerate() {
        let clip = audio::decode_mono_16k(&speak(text), "wav").expect("decodes");
        let start = (at * 16_000.0) as usize;
        assert!(pcm.len() <= start, "clip {} overlaps the one before", i);
        pcm.resize(start, 0.0);
        pcm.extend(clip);
    }
    pcm.resize(pcm.len() + 16_000, 0.0);
    let seconds = pcm.len() as f64 / 16_000.0;
    assert!(seconds > 45.0, "{seconds} s");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let frames: Vec<Vec<f32>> = pcm.iter().map(|&s| vec![s]).collect();
    let wav = crate::speech::audio::tests::wav_bytes(spec, &frames);

    let segments = timed(w, &wav, seconds);
    let reference: Vec<&str> = script.iter().map(|(_, t)| *t).collect();
    let error = wer(&reference.join(" "), &joined(&segments));
    eprintln!("whisper: WER {error:.3} over {seconds:.1} s");
    assert!(error <= 0.25, "WER {error:.3}");

    for pair in segments.windows(2) {
        assert!(
            pair[0].start_time <= pair[1].start_time
                && pair[0].end_time <= pair[1].start_time + 0.01,
            "out of order: {pair:?}"
        );
    }
    assert!(segments.iter().all(|s| s.start_time <= s.end_time));
    let last = segments.last().expect("segments");
    assert!(
        last.end_time > 45.0 && last.end_time <= seconds + 0.01,
        "{last:?}"
    );
    let threat = segments
        .iter()
        .find(|s| words(&s.text).windows(2).any(|p| p == ["find", "you"]))
        .expect("the threat is transcribed");
    assert!(
        (threat.start_time - 34.0).abs() <= 2.0,
        "the threat was spoken at 34 s, found at {:.2} s",
        threat.start_time
    );
    let thanks = segments
        .iter()
        .find(|s| words(&s.text).contains(&"tonight".to_string()))
        .expect("the last phrase is transcribed");
    assert!((thanks.start_time - 50.0).abs() <= 2.0, "{thanks:?}");
}

/// (d) Stereo tricks: a threat in the left channel and its inverse in the right cancels in a
/// mix; a second voice in the channels' difference under ordinary speech is not in the mix.
#[test]
fn speech_a_downmix_would_cancel_or_hide_is_heard() {
    let Some(w) = fixture() else { return };
    let threat = audio::decode_mono_16k(
        &speak("I will find you and hurt you after the match."),
        "wav",
    )
    .expect("decodes");
    let stereo = |frames: Vec<Vec<f32>>| {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        crate::speech::audio::tests::wav_bytes(spec, &frames)
    };
    let seconds = threat.len() as f64 / 16_000.0;
    let inverted = stereo(threat.iter().map(|&s| vec![s, -s]).collect());
    let text = joined(&timed(w, &inverted, seconds));
    assert!(
        words(&text).windows(2).any(|p| p == ["find", "you"]),
        "{text:?}"
    );
    let cover =
        audio::decode_mono_16k(&speak("Nice shot, well played everyone, good game."), "wav")
            .expect("decodes");
    let n = threat.len().max(cover.len());
    let at = |v: &[f32], i: usize| v.get(i).copied().unwrap_or(0.0);
    let hidden = stereo(
        (0..n)
            .map(|i| {
                let (c, h) = (0.5 * at(&cover, i), 0.5 * at(&threat, i));
                vec![c + h, c - h]
            })
            .collect(),
    );
    let text = joined(&timed(w, &hidden, n as f64 / 16_000.0));
    assert!(
        words(&text).windows(2).any(|p| p == ["find", "you"]),
        "{text:?}"
    );
    assert!(words(&text).contains(&"played".to_string()), "{text:?}");
}

#[test]
fn silence_and_undecodable_audio() {
    let Some(w) = fixture() else { return };
    // 5 s of silence: nothing, not a hallucination.
    let silence = w.transcribe_pcm(&vec![0.0; 80_000]).expect("transcribes");
    assert!(
        silence
            .iter()
            .all(|s| s.text.split_whitespace().count() <= 2),
        "{silence:?}"
    );
    assert!(w.transcribe_pcm(&[]).expect("empty").is_empty());
    let err = w.transcribe(b"RIFF\x00\x00", "wav").expect_err("garbage");
    assert!(matches!(err, moderation_core::Error::Input(_)), "{err}");
    let err = w.transcribe(b"fLaC", "flac").expect_err("truncated");
    assert!(err.to_string().contains("flac"), "{err}");
    let err = w
        .transcribe(b"\0\0\0\x18ftypmp42", "mp4")
        .expect_err("format");
    assert!(
        err.to_string().contains("unsupported audio format \"mp4\""),
        "{err}"
    );
    assert!(w.name().contains("whisper"));
}

#[test]
fn a_missing_model_folder_is_a_model_file_error() {
    let err = Whisper::load(Path::new("/nonexistent/whisper")).err();
    assert!(
        matches!(&err, Some(Error::SpeechModelFile { path, .. }) if path.ends_with("tokenizer.json")),
        "{err:?}"
    );
}

#[test]
fn a_boundary_inside_a_phrase_moves_to_the_nearby_pause() {
    // Sound 0–4.4 s, a pause until 5.2 s, sound until 8 s; Whisper said the second phrase
    // starts at 4.0 s (inside the first one).
    let frames = (8.0 / SECONDS_PER_FRAME) as usize;
    let voiced: Vec<bool> = (0..frames)
        .map(|f| {
            let t = f as f64 * SECONDS_PER_FRAME;
            !(4.4..5.2).contains(&t)
        })
        .collect();
    let seg = |s: f64, e: f64| TimedText {
        start_time: s,
        end_time: e,
        text: String::new(),
    };
    let mut segs = vec![seg(0.0, 4.0), seg(4.0, 8.0)];
    realign_boundaries(&mut segs, &voiced);
    assert!((segs[0].end_time - 4.5).abs() < 0.02, "{:?}", segs[0]);
    assert!((segs[1].start_time - 5.1).abs() < 0.02, "{:?}", segs[1]);
    // Segments that do not meet, or a short gap inside a phrase, are left alone.
    let mut apart = vec![seg(0.0, 3.0), seg(5.3, 8.0)];
    realign_boundaries(&mut apart, &voiced);
    assert_eq!((apart[0].end_time, apart[1].start_time), (3.0, 5.3));
    let comma: Vec<bool> = (0..frames)
        .map(|f| !(40..55).contains(&f)) // 0.15 s
        .collect();
    let mut inside = vec![seg(0.0, 0.3), seg(0.3, 8.0)];
    realign_boundaries(&mut inside, &comma);
    assert_eq!(inside[1].start_time, 0.3);
}
