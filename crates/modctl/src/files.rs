//! The files a run moderates: the keys they are uploaded under, the demo's sample folder, and
//! the demo's voice chat spoken with espeak-ng.

use std::path::{Path, PathBuf};

use moderation_core::chain::keys;

use crate::cli::CliError;
use crate::shown::shown;

/// The key each file is uploaded under: `incoming/text/<name>` or
/// `incoming/audio/local/<name>`, made unique when two arguments share a file name (so their
/// reports do not overwrite each other).
pub fn upload_keys(paths: &[PathBuf]) -> Result<Vec<String>, CliError> {
    let mut keys: Vec<String> = Vec::with_capacity(paths.len());
    for p in paths {
        if !p.is_file() {
            return Err(CliError::Usage(format!(
                "{} is not a readable file",
                shown(p)
            )));
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let folder = match keys::kind_of(&name) {
            Some(moderation_core::model::SourceKind::Text) => keys::INCOMING_TEXT.to_string(),
            Some(moderation_core::model::SourceKind::Audio) => {
                format!("{}local/", keys::INCOMING_AUDIO)
            }
            Some(moderation_core::model::SourceKind::Image) => {
                format!("{}local/", keys::INCOMING_IMAGE)
            }
            None => {
                return Err(CliError::Usage(format!(
                "{}: unsupported file type (expected .txt, .csv, .jsonl, audio: {}, or images: {})",
                shown(p),
                keys::AUDIO_EXTENSIONS.join(", "),
                moderation_core::media::picture::IMAGE_EXTENSIONS.join(", ")
            )))
            }
        };
        let mut key = format!("{folder}{name}");
        let mut n = 2;
        while keys.contains(&key) {
            let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, ""));
            key = format!("{folder}{stem}-{n}.{ext}");
            n += 1;
        }
        keys.push(key);
    }
    Ok(keys)
}

/// The moderatable files directly in `dir`, sorted.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| CliError::Io {
            path: shown(dir),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| keys::kind_of(&p.to_string_lossy()).is_some())
        .collect();
    paths.sort();
    Ok(paths)
}

/// Speak each `<name>.txt` script in `scripts` with espeak-ng into `<out>/<name>.wav` (one
/// line per utterance, `#` comments); none when espeak-ng is missing.
pub fn speak_scripts(scripts: &Path, out: &Path) -> Result<Vec<PathBuf>, CliError> {
    let io = |path: &Path| {
        let path = shown(path);
        move |source| CliError::Io { path, source }
    };
    let Ok(entries) = std::fs::read_dir(scripts) else {
        return Ok(Vec::new());
    };
    let mut scripts: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    scripts.sort();
    if scripts.is_empty() {
        return Ok(Vec::new());
    }
    if !moderation_offline::speech::samples::espeak_available() {
        eprintln!(
            "modctl: skipping the voice-chat samples in {}: espeak-ng is not installed (make demo installs it)",
            shown(scripts[0].parent().unwrap_or(Path::new(".")))
        );
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut wavs = Vec::new();
    for script in scripts {
        let text = std::fs::read_to_string(&script).map_err(io(&script))?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let clip = moderation_offline::speech::samples::speak_lines(&lines, 0.8)
            .map_err(moderation_core::Error::from)?;
        let stem = script.file_stem().unwrap_or_default().to_string_lossy();
        let wav = out.join(format!("{stem}.wav"));
        std::fs::write(&wav, &clip.wav).map_err(io(&wav))?;
        wavs.push(wav);
    }
    Ok(wavs)
}
