//! The recording or picture a report shows: where the page loads it from, and — for a link
//! that ends by itself (presigned) — a plain statement of when it stops working. Reports are
//! kept for good; a presigned link is not, and a role's session credentials end it sooner than
//! the expiry it asks for.

use chrono::{DateTime, SecondsFormat, Utc};
use tracing::warn;

use crate::chain::keys;
use crate::model::{Report, SourceKind};
use crate::ports::{LinkLifetime, MediaLinks};

/// What the page loads the media from, and when that link stops working if it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLink {
    pub url: String,
    /// Shown under the player or picture; `None` for links that do not expire.
    pub note: Option<String>,
}

/// The link a report's audio player uses for `key` in the report's own bucket: relative to
/// `reports/`, each path segment percent-encoded.
pub fn relative_media_link(key: &str) -> String {
    format!("../{}", url_path(key))
}

/// `key` as a URL path: each segment percent-encoded, the slashes kept.
pub fn url_path(key: &str) -> String {
    let encoded: Vec<String> = key
        .split('/')
        .map(|seg| {
            percent_encoding::utf8_percent_encode(seg, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        })
        .collect();
    encoded.join("/")
}

/// When a link signed at `signed` stops working, and where the file stays.
pub fn expiry_note(signed: DateTime<Utc>, lifetime: LinkLifetime, source_uri: &str) -> String {
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let until = chrono::Duration::from_std(lifetime.at_most)
        .ok()
        .and_then(|d| signed.checked_add_signed(d))
        .map(stamp)
        .unwrap_or_else(|| "its expiry".into());
    let session = if lifetime.ends_with_session {
        ", or sooner when the temporary credentials that signed it expire (a Lambda role's \
         last a few hours)"
    } else {
        ""
    };
    format!(
        "This link was signed at {} and works until {until} at the latest{session}. \
         The file itself stays at {source_uri}.",
        stamp(signed)
    )
}

/// Where the report's player or picture loads the media from, for audio and image sources: a
/// presigned URL when the backend makes them, else the path relative to `reports/` in the same
/// bucket. A link that cannot be made leaves the report without one rather than failing it.
pub(super) async fn media_link<I>(
    report: &Report<I>,
    bucket: &str,
    links: Option<&dyn MediaLinks>,
) -> Option<MediaLink> {
    if !matches!(report.source.kind, SourceKind::Audio | SourceKind::Image) {
        return None;
    }
    let (src_bucket, key) = keys::parse_s3_uri(&report.source.uri)?;
    // A user report on an empty conversation names a folder, not a recording; a transcript
    // whose job record was lost names the transcript.
    if key.is_empty() || key.ends_with('/') || key.starts_with(keys::TRANSCRIPTS) {
        return None;
    }
    if let Some(links) = links {
        let signed = Utc::now();
        match links.media_url(src_bucket, key).await {
            Ok(Some(url)) => {
                let note = links
                    .lifetime()
                    .map(|l| expiry_note(signed, l, &report.source.uri));
                return Some(MediaLink { url, note });
            }
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "no link to the recording for the audio player");
                return None;
            }
        }
    }
    (src_bucket == bucket).then(|| MediaLink {
        url: relative_media_link(key),
        note: None,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::stages::write_report::tests::empty_document;
    use crate::stages::write_report::{build_report, esc, render_html};

    struct Presigned;

    #[async_trait]
    impl MediaLinks for Presigned {
        async fn media_url(&self, bucket: &str, key: &str) -> crate::Result<Option<String>> {
            Ok(Some(format!(
                "https://{bucket}.s3.amazonaws.com/{key}?X-Amz-Expires=3600"
            )))
        }

        fn lifetime(&self) -> Option<LinkLifetime> {
            Some(LinkLifetime {
                at_most: Duration::from_secs(3600),
                ends_with_session: true,
            })
        }
    }

    fn audio_report() -> crate::model::Report {
        build_report(empty_document("s3://b/incoming/audio/m/a <1>.wav", "audio"))
    }

    #[tokio::test]
    async fn the_page_says_when_a_presigned_player_link_stops_working() {
        let report = audio_report();
        let link = media_link(&report, "b", Some(&Presigned))
            .await
            .expect("a link");
        let html = render_html(&report, 0.5, Some(&link));
        assert!(html.contains("<audio id=\"player\""), "{html}");
        let note = link.note.expect("a presigned link has a note");
        assert!(html.contains(&format!("<p class=\"link-expiry\">{}</p>", esc(&note))));
        assert!(note.contains("s3://b/incoming/audio/m/a <1>.wav"), "{note}");
        // Offline, a relative link that does not expire, and nothing to say about it.
        let local = media_link(&report, "b", None).await.expect("a link");
        assert_eq!(local.url, "../incoming/audio/m/a%20%3C1%3E%2Ewav");
        assert_eq!(local.note, None);
        assert!(!render_html(&report, 0.5, Some(&local)).contains("<p class=\"link-expiry\""));
    }

    #[test]
    fn a_presigned_link_says_when_it_ends_and_where_the_file_stays() {
        let signed = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let week = LinkLifetime {
            at_most: Duration::from_secs(7 * 24 * 3600),
            ends_with_session: true,
        };
        let note = expiry_note(signed, week, "s3://b/incoming/audio/m/a.wav");
        assert!(note.contains("signed at 2026-12-07T10:00:00Z"), "{note}");
        assert!(
            note.contains("until 2026-12-14T10:00:00Z at the latest"),
            "{note}"
        );
        assert!(note.contains("temporary credentials"), "{note}");
        assert!(
            note.ends_with("stays at s3://b/incoming/audio/m/a.wav."),
            "{note}"
        );
        let long_lived = LinkLifetime {
            at_most: Duration::from_secs(3600),
            ends_with_session: false,
        };
        let note = expiry_note(signed, long_lived, "s3://b/k");
        assert!(
            note.contains("until 2026-12-07T11:00:00Z at the latest."),
            "{note}"
        );
        assert!(!note.contains("credentials"), "{note}");
    }
}
