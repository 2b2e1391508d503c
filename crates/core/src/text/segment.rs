//! Splitting messages into service-sized segments and packing them into requests.
//! Pure functions, so the limits are tested without a service.

use crate::ports::{Segment, SegmentLimits};

/// Split `text` into pieces of at most `max_bytes` bytes, on UTF-8 boundaries, preferring the
/// end of a sentence, then whitespace, within the window.
pub fn chunk_text(text: &str, max_bytes: usize) -> Vec<String> {
    let max_bytes = max_bytes.max(4); // one char always fits
    let mut out = Vec::new();
    let mut rest = text.trim();
    while rest.len() > max_bytes {
        let mut limit = max_bytes;
        while !rest.is_char_boundary(limit) {
            limit -= 1;
        }
        let window = &rest[..limit];
        // Only accept a boundary in the back half, so chunks stay reasonably full.
        let min = limit / 2;
        let sentence = window
            .char_indices()
            .filter(|(i, c)| *i >= min && matches!(c, '.' | '!' | '?' | '\n'))
            .map(|(i, c)| i + c.len_utf8())
            .next_back();
        let space = window
            .char_indices()
            .filter(|(i, c)| *i >= min && c.is_whitespace())
            .map(|(i, _)| i)
            .next_back();
        let cut = sentence.or(space).unwrap_or(limit).max(1);
        let piece = rest[..cut].trim();
        if !piece.is_empty() {
            out.push(piece.to_string());
        }
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Pack segments, in order, into requests within the segment-count and total-byte limits.
pub fn batch_segments(segments: Vec<Segment>, limits: SegmentLimits) -> Vec<Vec<Segment>> {
    let mut batches: Vec<Vec<Segment>> = Vec::new();
    let mut current: Vec<Segment> = Vec::new();
    let mut bytes = 0usize;
    for seg in segments {
        let len = seg.text.len();
        if !current.is_empty()
            && (current.len() >= limits.max_segments || bytes + len > limits.max_request_bytes)
        {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += len;
        current.push(seg);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPREHEND: SegmentLimits = SegmentLimits {
        max_segments: 10,
        max_segment_bytes: 1024,
        max_request_bytes: 10 * 1024,
    };

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(chunk_text("  hello  ", 1024), vec!["hello"]);
        assert_eq!(chunk_text("", 1024), vec![""]);
    }

    #[test]
    fn chunks_respect_byte_limit_and_char_boundaries() {
        let text = "é€😀".repeat(500); // multi-byte, no spaces
        let chunks = chunk_text(&text, 1024);
        assert!(chunks.iter().all(|c| c.len() <= 1024));
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn chunks_prefer_sentence_boundaries() {
        let s1 = "a".repeat(600) + ". ";
        let s2 = "b".repeat(600) + ".";
        let chunks = chunk_text(&format!("{s1}{s2}"), 1024);
        assert_eq!(chunks, vec![s1.trim().to_string(), s2]);
    }

    #[test]
    fn chunks_fall_back_to_whitespace() {
        let text = "word ".repeat(400);
        let chunks = chunk_text(&text, 1024);
        assert!(chunks
            .iter()
            .all(|c| c.len() <= 1024 && !c.ends_with("wor")));
        assert_eq!(chunks.join(" ").split_whitespace().count(), 400);
    }

    #[test]
    fn batches_respect_count_and_total_bytes() {
        let small: Vec<Segment> = (0..25)
            .map(|i| Segment {
                item: i,
                text: "hi".into(),
            })
            .collect();
        let b = batch_segments(small, COMPREHEND);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);

        let big: Vec<Segment> = (0..12)
            .map(|i| Segment {
                item: i,
                text: "x".repeat(1024),
            })
            .collect();
        let b = batch_segments(big, COMPREHEND);
        assert!(b
            .iter()
            .all(|batch| batch.iter().map(|s| s.text.len()).sum::<usize>() <= 10 * 1024));
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 12);
        // order is preserved
        let flat: Vec<usize> = b.concat().iter().map(|s| s.item).collect();
        assert_eq!(flat, (0..12).collect::<Vec<_>>());
    }
}
