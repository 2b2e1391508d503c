//! Decode recordings the way the offline transcription does, without the model, and print what
//! Whisper would hear: the length of the 16 kHz mix and whether the channels' difference is
//! heard too. For checking a file, and for measuring the decoder's memory:
//!
//! ```text
//! cargo run --release -p moderation-offline --features whisper --example decode -- a.wav
//! /usr/bin/time -v target/release/examples/decode long.wav
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use moderation_offline::speech::audio;

fn main() -> ExitCode {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if files.is_empty() {
        eprintln!("usage: decode RECORDING...");
        return ExitCode::from(2);
    }
    let mut status = ExitCode::SUCCESS;
    for file in &files {
        let ext = file
            .extension()
            .map_or(String::new(), |e| e.to_string_lossy().to_lowercase());
        let decoded = std::fs::read(file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| audio::decode_16k(&bytes, &ext).map_err(|e| e.to_string()));
        match decoded {
            Ok(d) => println!(
                "{}: {:.1} s at 16 kHz; channels' difference {}",
                file.display(),
                d.mid.len() as f64 / f64::from(audio::SAMPLE_RATE),
                if d.side.is_some() {
                    "heard too"
                } else {
                    "not needed"
                }
            ),
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
