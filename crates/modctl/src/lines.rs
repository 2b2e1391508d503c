//! Standard output for result lines.

use std::io::Write;

/// Standard output that may close early (`modctl moderate … | head -1`): a closed pipe ends
/// the printing, not the work, so every report is still written.
pub(crate) struct Lines<W: Write> {
    out: W,
    closed: bool,
}

impl<W: Write> Lines<W> {
    pub(crate) fn new(out: W) -> Self {
        Lines { out, closed: false }
    }

    pub(crate) fn line(&mut self, text: &str) {
        if self.closed {
            return;
        }
        if let Err(e) = writeln!(self.out, "{text}").and_then(|()| self.out.flush()) {
            self.closed = true;
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("modctl: standard output failed ({e}); reports are still written");
            }
        }
    }
}
