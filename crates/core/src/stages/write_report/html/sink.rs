//! Where rendered HTML goes: a buffer that spills to the output past a size, so a page of a
//! million items never sits whole in memory.

use crate::error::{Error, Result};

/// Past this much, rendered HTML goes to the output instead of growing in memory.
const SPILL_BYTES: usize = 64 * 1024;

/// Write `b` to `out` once it has grown past [`SPILL_BYTES`].
pub(super) fn spill(b: &mut String, out: &mut dyn std::io::Write) -> Result<()> {
    if b.len() >= SPILL_BYTES {
        flush_html(b, out)?;
    }
    Ok(())
}

/// Write all of `b` to `out` and empty it.
pub(super) fn flush_html(b: &mut String, out: &mut dyn std::io::Write) -> Result<()> {
    out.write_all(b.as_bytes()).map_err(|source| Error::Io {
        path: "report page".into(),
        source,
    })?;
    b.clear();
    Ok(())
}
