//! Convert a CTranslate2 Whisper `model.bin` into `model.safetensors` with Hugging Face tensor
//! names, next to it (or at the given output path). Run by `scripts/fetch-whisper.sh`:
//!
//! ```text
//! cargo run -p moderation-offline --features whisper --example convert-ct2 -- DIR/model.bin [OUT]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(input) = args.next().map(PathBuf::from) else {
        eprintln!("usage: convert-ct2 MODEL.BIN [OUT.safetensors]");
        return ExitCode::from(2);
    };
    let output = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| input.with_file_name("model.safetensors"));
    let started = std::time::Instant::now();
    match moderation_offline::speech::ct2::convert_whisper_file(&input, &output) {
        Ok(dims) => {
            println!(
                "{} -> {} in {:.1} s ({dims:?})",
                input.display(),
                output.display(),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The crate's errors already show their cause.
            eprintln!("convert-ct2: {e}");
            ExitCode::FAILURE
        }
    }
}
