use super::*;

#[test]
fn escaping_leaves_no_markup_and_no_raw_control_character() {
    assert_eq!(
        esc("<b>\"a\" & 'b'</b>"),
        "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;"
    );
    assert_eq!(
        esc("\u{1b}[2Jx\u{0}.txt\nnext"),
        "\\u{1b}[2Jx\\u{0}.txt\nnext"
    );
}

/// An evaluated document of the source at `uri` (`kind`: text, audio, image) with no items.
pub(super) fn empty_document(uri: &str, kind: &str) -> StageDocument {
    serde_json::from_value(serde_json::json!({
        "schema": "moderation.evaluated/v1", "id": "r", "created_at": "2026-12-06T00:00:00Z",
        "source": {"uri": uri, "kind": kind},
        "trigger": {"type": "upload"}, "status": "complete", "threshold": 0.5,
        "items": [], "errors": [], "usage": {"comprehend_units": 0, "transcribe_seconds": 0.0,
        "llm_calls": 0, "llm_input_tokens": 0, "llm_output_tokens": 0}
    }))
    .expect("document")
}

fn report_of(flagged: usize, below: usize) -> Report {
    let doc = empty_document("s3://b/incoming/text/x.txt", "text");
    let items = (0..flagged + below)
        .map(|n| {
            let mut item = Item::new(format!("line-{n}"), format!("message {n}"));
            item.verdict = Some(if n < flagged {
                item.toxicity = 0.9;
                if n % 2 == 0 {
                    Verdict::NeedsReview
                } else {
                    Verdict::Violation
                }
            } else {
                Verdict::BelowThreshold
            });
            item
        })
        .collect();
    build_report(StageDocument { items, ..doc })
}

#[test]
fn past_the_limit_flagged_items_are_one_line_each_and_then_counted() {
    let html = render_html(&report_of(MAX_FLAGGED_IN_FULL + 10, 3), 0.5, None);
    // The three clean items are few enough to be shown in full after them.
    assert_eq!(
        html.matches("<section class=\"item ").count(),
        MAX_FLAGGED_IN_FULL + 3
    );
    assert!(html.contains("id=\"more-flagged\" data-count=\"10\""));
    assert_eq!(html.matches("<td data-verdict=").count(), 10);
    assert!(!html.contains("flagged-not-shown"));
    // Violations come first, in full.
    assert!(html.contains("id=\"line-1\" data-verdict=\"violation\""));

    let n = MAX_FLAGGED_IN_FULL + MAX_FLAGGED_LISTED + 3;
    let html = render_html(&report_of(n, 0), 0.5, None);
    assert_eq!(
        html.matches("<td data-verdict=").count(),
        MAX_FLAGGED_LISTED
    );
    assert!(html.contains("id=\"flagged-not-shown\" data-count=\"3\""));
}

#[test]
fn a_spooled_report_renders_the_same_page_as_one_in_memory() {
    let report = report_of(7, 600);
    let items = SpooledItems::from_items(&report.items).expect("spools");
    let spooled = report.clone().with_items(items);
    let mut out = Vec::new();
    render_html_to(&spooled, 0.5, None, &mut out).expect("renders");
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        render_html(&report, 0.5, None)
    );
}
