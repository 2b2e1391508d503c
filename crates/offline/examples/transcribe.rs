//! Transcribe recordings with the offline Whisper model and print the segments with timings:
//!
//! ```text
//! cargo run -p moderation-offline --features whisper --example transcribe -- a.wav [b.wav ...]
//! ```
//!
//! The model folder is `WHISPER_DIR`, by default `.cache/models/whisper-tiny-en` of the workspace
//! (`make models`). Prints the load time and, per file, the real-time factor (processing time
//! over audio duration).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use moderation_core::ports::SpeechToText;
use moderation_offline::speech::{audio, whisper::Whisper};

fn main() -> ExitCode {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if files.is_empty() {
        eprintln!("usage: transcribe RECORDING...");
        return ExitCode::from(2);
    }
    let dir = std::env::var_os("WHISPER_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models/whisper-tiny-en"),
        PathBuf::from,
    );
    let started = Instant::now();
    let whisper = match Whisper::load(&dir) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("transcribe: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "loaded {} in {:.2} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    let mut status = ExitCode::SUCCESS;
    for file in &files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                status = ExitCode::FAILURE;
                continue;
            }
        };
        let ext = file
            .extension()
            .map_or(String::new(), |e| e.to_string_lossy().to_lowercase());
        let seconds = audio::decode_mono_16k(&bytes, &ext)
            .map_or(0.0, |pcm| pcm.len() as f64 / f64::from(audio::SAMPLE_RATE));
        let started = Instant::now();
        match whisper.transcribe(&bytes, &ext) {
            Ok(segments) => {
                let took = started.elapsed().as_secs_f64();
                println!(
                    "{}: {seconds:.1} s of audio in {took:.2} s (real-time factor {:.3})",
                    file.display(),
                    took / seconds.max(1e-9)
                );
                for s in segments {
                    println!("  [{:7.2} - {:7.2}] {}", s.start_time, s.end_time, s.text);
                }
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
