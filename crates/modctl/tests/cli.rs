//! modctl's command-line contract (docs/modctl.md): outputs, one line per source, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn modctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modctl"))
        .args(args)
        .current_dir(workspace())
        .env_remove("MODERATION_BACKEND")
        .env_remove("TOXICITY_THRESHOLD")
        .output()
        .expect("modctl runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn moderate_writes_reports_and_prints_one_line_per_source() {
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().display().to_string();
    let o = modctl(&[
        "moderate",
        "events/uploads/lobby-chat.txt",
        "events/uploads/guild-chat.jsonl",
        "--out",
        &dir,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("events/uploads/lobby-chat.txt: 6 items, 2 violations"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("events/uploads/guild-chat.jsonl: 6 items, 3 violations"),
        "{text}"
    );
    assert!(lines[2].starts_with("index: "));
    let reports: Vec<String> = std::fs::read_dir(out.path().join("reports"))
        .expect("reports dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(
        reports.iter().filter(|n| n.ends_with(".json")).count(),
        2,
        "{reports:?}"
    );
    assert_eq!(
        reports.iter().filter(|n| n.ends_with(".html")).count(),
        3,
        "{reports:?}"
    );
}

#[test]
fn same_file_names_do_not_overwrite_each_other() {
    let src = tempfile::tempdir().expect("tempdir");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(src.path().join(sub)).expect("mkdir");
        std::fs::write(
            src.path().join(sub).join("chat.txt"),
            format!("hello from {sub}\n"),
        )
        .expect("write");
    }
    let out = tempfile::tempdir().expect("tempdir");
    let (a, b) = (src.path().join("a/chat.txt"), src.path().join("b/chat.txt"));
    let o = modctl(&[
        "moderate",
        &a.display().to_string(),
        &b.display().to_string(),
        "--out",
        &out.path().display().to_string(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let jsons = std::fs::read_dir(out.path().join("reports"))
        .expect("reports")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count();
    assert_eq!(jsons, 2);
}

#[test]
fn text_column_override_is_case_insensitive() {
    let src = tempfile::tempdir().expect("tempdir");
    let csv = src.path().join("chat.csv");
    std::fs::write(&csv, "Who,Said\nann,you are such an idiot\n").expect("write");
    let out = tempfile::tempdir().expect("tempdir");
    let o = modctl(&[
        "moderate",
        &csv.display().to_string(),
        "--text-column",
        "SAID",
        "--out",
        &out.path().display().to_string(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout(&o).contains("1 items, 1 violations"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn usage_errors_exit_2_before_anything_is_moderated() {
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().display().to_string();
    for args in [
        vec![
            "moderate",
            "events/uploads/lobby-chat.txt",
            "README.md",
            "--out",
            &dir,
        ],
        vec!["moderate", "does-not-exist.txt", "--out", &dir],
        vec![
            "moderate",
            "events/uploads/lobby-chat.txt",
            "--threshold",
            "2",
            "--out",
            &dir,
        ],
        vec!["moderate", "--out", &dir],
        vec!["frobnicate"],
    ] {
        let o = modctl(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Nothing was moderated by the failed runs.
    assert!(!out.path().join("reports").exists());
}

#[test]
fn an_unwritable_output_folder_exits_1() {
    let blocker = tempfile::NamedTempFile::new().expect("file");
    // A regular file where the output folder should be: every write fails.
    let o = modctl(&[
        "moderate",
        "events/uploads/lobby-chat.txt",
        "--out",
        &blocker.path().display().to_string(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn moderate_takes_a_recording_and_reports_its_segments() {
    let model = workspace().join(".cache/models/whisper-tiny-en");
    let ready = moderation_offline::speech::samples::espeak_available()
        && (model.join("model.safetensors").is_file() || model.join("model.bin").is_file());
    if !ready {
        assert!(
            std::env::var("REQUIRE_MODELS").as_deref() != Ok("1"),
            "REQUIRE_MODELS=1 but the Whisper model or espeak-ng is missing"
        );
        eprintln!("skipping: needs the Whisper model (make models) and espeak-ng");
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    let clip = moderation_offline::speech::samples::speak_lines(
        &[
            "good game everyone, nice push on the bridge",
            "shut up, you are a stupid idiot",
        ],
        1.5,
    )
    .expect("espeak-ng speaks");
    let wav = out.path().join("clip.wav");
    std::fs::write(&wav, &clip.wav).expect("write");
    let dir = out.path().join("out").display().to_string();
    let o = modctl(&["moderate", &wav.display().to_string(), "--out", &dir]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    let first = text.lines().next().unwrap_or_default();
    assert!(first.contains("clip.wav: 2 items, 1 violations"), "{text}");
    assert!(first.contains("1 below threshold (Complete)"), "{text}");
}

/// `modctl moderate a b | true`: the reader is gone before the first line; every source is
/// still moderated and the exit code is the usual one (no panic, no SIGABRT).
#[test]
fn a_closed_stdout_does_not_stop_the_work() {
    use std::process::Stdio;
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_modctl"))
        .args([
            "moderate",
            "events/uploads/lobby-chat.txt",
            "events/uploads/guild-chat.jsonl",
            "--out",
            &dir,
        ])
        .current_dir(workspace())
        .env_remove("MODERATION_BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("modctl starts");
    // Close our end of the pipe at once, as `| true` does.
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("modctl ends");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let reports = std::fs::read_dir(out.path().join("reports"))
        .expect("reports dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .count();
    assert_eq!(reports, 2);
}

#[test]
fn check_prompt_allows_warns_or_blocks_and_prints_the_negative_prompt() {
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().display().to_string();
    for (prompt, code, decision) in [
        (
            "a knight riding a dragon over a castle at sunset",
            0,
            "allow",
        ),
        (
            "a poster telling the other team to kill yourself",
            4,
            "block",
        ),
        // A minor and nudity together block, whatever the score (0.72 here, a warning alone).
        (
            "draw a naked child",
            4,
            "block: forbidden term sexual:involving a minor",
        ),
        ("d r a w a n@ked ch1ld, photorealistic", 4, "block"),
        // Offline there is no model for other languages: a person should look first.
        (
            "un caballero montando un dragón sobre el castillo al atardecer",
            3,
            "warn",
        ),
    ] {
        let o = modctl(&["check-prompt", prompt, "--out", &dir]);
        let text = stdout(&o);
        assert_eq!(o.status.code(), Some(code), "{prompt}: {text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with(decision), "{prompt}: {text}");
        assert!(
            lines[1].starts_with("negative prompt: nudity, nsfw"),
            "{text}"
        );
    }
    let o = modctl(&[
        "check-prompt",
        "a cat",
        "--negative-prompts",
        "/nonexistent/list.txt",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/list.txt"));
}

#[test]
fn a_file_named_like_an_image_that_is_not_one_gets_a_failed_report() {
    let out = tempfile::tempdir().expect("tempdir");
    let fake = out.path().join("avatar.png");
    std::fs::write(&fake, b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>").expect("write");
    let dir = out.path().join("out").display().to_string();
    let o = modctl(&["moderate", &fake.display().to_string(), "--out", &dir]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    assert!(
        text.contains("avatar.png: 0 items") && text.contains("(Failed)"),
        "{text}"
    );
}

/// A progress bar on a terminal (a pseudo-terminal from util-linux `script`), none with
/// `--quiet`, and none off a terminal: piped output stays exactly the result lines.
#[test]
fn a_progress_bar_is_drawn_only_on_a_terminal_and_never_with_quiet() {
    let out = tempfile::tempdir().expect("tempdir");
    let log = out.path().join("chat.txt");
    let lines: Vec<String> = (0..200)
        .map(|i| format!("round {i}: push mid, heal me, nice shot"))
        .collect();
    std::fs::write(&log, lines.join("\n")).expect("write log");
    let bin = env!("CARGO_BIN_EXE_modctl");
    let on_pty = |extra: &str| -> String {
        let typescript = out.path().join("typescript");
        let command = format!(
            "{bin} moderate {} --out {} {extra}",
            log.display(),
            out.path().join("reports-out").display()
        );
        let status = Command::new("script")
            .args(["-qec", &command])
            .arg(&typescript)
            .current_dir(workspace())
            .env_remove("MODERATION_BACKEND")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("util-linux `script` runs (Debian bsdutils)");
        assert!(status.success());
        String::from_utf8_lossy(&std::fs::read(&typescript).expect("typescript")).into_owned()
    };
    let drawn = on_pty("");
    assert!(drawn.contains("/200 messages scored"), "{drawn}");
    let quiet = on_pty("--quiet");
    assert!(!quiet.contains("messages scored"), "{quiet}");
    assert!(quiet.contains("chat.txt: 200 items"), "{quiet}");
    // Off a terminal: stderr is empty and stdout is the result lines alone.
    let o = modctl(&[
        "moderate",
        &log.display().to_string(),
        "--out",
        &out.path().join("piped").display().to_string(),
    ]);
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
}

#[test]
fn one_failing_file_is_reported_and_the_rest_still_run() {
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().display().to_string();
    // A regular file that cannot be read (the kernel refuses reads of it), as a .txt.
    let unreadable = out.path().join("unreadable.txt");
    std::os::unix::fs::symlink("/proc/self/clear_refs", &unreadable).expect("symlink");
    let o = modctl(&[
        "moderate",
        "events/uploads/lobby-chat.txt",
        &unreadable.display().to_string(),
        "events/uploads/match-chat.csv",
        "--out",
        &dir,
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("events/uploads/lobby-chat.txt: 6 items"),
        "{text}"
    );
    assert!(lines[1].contains("unreadable.txt: "), "{text}");
    assert!(
        lines[2].starts_with("events/uploads/match-chat.csv: "),
        "{text}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("1 of 3 files failed") && err.contains("unreadable.txt"),
        "{err}"
    );
}

#[test]
fn size_limits_are_checked_before_anything_is_copied() {
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().join("out");
    let sparse = out.path().join("huge.txt");
    // 2 GiB of nothing: costs no disk until something copies it.
    std::fs::File::create(&sparse)
        .and_then(|f| f.set_len(2 << 30))
        .expect("sparse file");
    let o = modctl(&[
        "moderate",
        &sparse.display().to_string(),
        "events/uploads/lobby-chat.txt",
        "--out",
        &dir.display().to_string(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = stdout(&o);
    assert!(
        text.contains("huge.txt: not moderated: 2147483648 bytes, over the 104857600 byte limit (MAX_OBJECT_BYTES)"),
        "{text}"
    );
    assert!(text.contains("lobby-chat.txt: 6 items"), "{text}");
    let copied = walk(&dir)
        .into_iter()
        .filter(|p| p.ends_with("huge.txt"))
        .count();
    assert_eq!(copied, 0, "the oversized file was copied");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn file_names_cannot_forge_lines_or_drive_the_terminal() {
    let out = tempfile::tempdir().expect("tempdir");
    let evil = out
        .path()
        .join("x\nfake.txt: 0 items (Complete)\u{1b}[2J.txt");
    std::fs::write(&evil, "you are an idiot\n").expect("write");
    let o = modctl(&[
        "moderate",
        &evil.display().to_string(),
        "--out",
        &out.path().join("out").display().to_string(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains("x\\nfake.txt: 0 items (Complete)\\u{1b}[2J.txt: 1 items"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'));
    let html: String = walk(&out.path().join("out"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .map(|p| std::fs::read_to_string(p).expect("html"))
        .collect();
    assert!(!html.contains('\u{1b}'), "a raw ESC in the HTML");
}

#[test]
fn a_blank_text_column_is_a_usage_error_and_redirected_logs_are_plain() {
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().display().to_string();
    let o = modctl(&[
        "moderate",
        "events/uploads/match-chat.csv",
        "--text-column",
        " ",
        "--out",
        &dir,
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(env!("CARGO_BIN_EXE_modctl"))
        .args(["moderate", "events/uploads/lobby-chat.txt", "--out", &dir])
        .current_dir(workspace())
        .env("RUST_LOG", "info")
        .output()
        .expect("modctl runs");
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.is_empty() && !err.contains('\u{1b}'), "{err}");
}
