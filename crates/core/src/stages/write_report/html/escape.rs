//! The one HTML escaper: every piece of text a report or index page shows goes through it.

/// HTML-escape text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // A raw control character (an ESC from a file name) is no HTML: shown as its escape.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => {
                out.extend(c.escape_default())
            }
            c => out.push(c),
        }
    }
    out
}
