//! Paths as a person's terminal shows them: a file name may hold a line break (which would
//! forge a summary line) or an escape sequence (which would clear or recolour the terminal),
//! so every control character is written as its escape (`\n`, `\u{1b}`).

use std::path::Path;

/// `path` for human-facing output, control characters escaped.
pub fn shown(path: &Path) -> String {
    escaped(&path.display().to_string())
}

/// `text` with its control characters escaped and everything else as it is.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_format_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Invisible characters that reorder or hide text on a terminal (bidi overrides, zero-width).
fn is_format_control(c: char) -> bool {
    matches!(c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2066..=0x2069 | 0xFEFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            escaped("fake.txt: 0 items\nreal.txt"),
            "fake.txt: 0 items\\nreal.txt"
        );
        assert_eq!(escaped("\u{1b}[2Jx.txt"), "\\u{1b}[2Jx.txt");
        assert_eq!(escaped("a\u{202E}txt.exe"), "a\\u{202e}txt.exe");
        assert_eq!(escaped("chat é 💬.txt"), "chat é 💬.txt");
    }
}
