//! Images through the offline chain: screen-image (no offline classifier yet, Tesseract OCR)
//! → evaluate-policy → write-report, driven with the `events/` fixtures; hostile files; and the
//! report in headless Chromium (blurred image, text boxes, a screenshot).

use moderation_core::keys;
use moderation_core::model::{Report, Status, Verdict};
use moderation_core::stage::run_chain;
use moderation_tests::{
    chromium_or_skip, dispatch, dump_dom, event, file_url, fixture, read_doc, screenshot,
    stage_images, tesseract_or_skip, workspace_root, Apps, FIXTURE_BUCKET,
};

fn put(root: &std::path::Path, key: &str, bytes: &[u8]) {
    let path = root.join(FIXTURE_BUCKET).join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

fn report_of(root: &std::path::Path, key: &str) -> Report {
    read_doc(
        root,
        &keys::report_json_key(&keys::source_id(FIXTURE_BUCKET, key)),
    )
}

async fn moderate(apps: &Apps, keys: Vec<String>) {
    run_chain(FIXTURE_BUCKET, keys, |stage, obj| async move {
        dispatch(apps, stage, &obj.key).await
    })
    .await
    .expect("chain runs");
}

fn item<'a>(r: &'a Report, id: &str) -> &'a moderation_core::model::Item {
    r.items
        .iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("no item {id}: {:?}", r.items))
}

#[tokio::test]
async fn the_sample_meme_and_chat_screenshot_are_flagged_by_their_text_offline() {
    if !tesseract_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = Apps::offline(root).await;
    let keys = stage_images(root);
    assert_eq!(keys.len(), 3, "{keys:?}");
    moderate(&apps, keys).await;

    let meme = report_of(root, "incoming/image/samples/lose-again-meme.png");
    assert_eq!(meme.source.kind, moderation_core::model::SourceKind::Image);
    let bottom = meme
        .items
        .iter()
        .find(|i| i.text.to_lowercase().contains("kill yourself"))
        .unwrap_or_else(|| panic!("the bottom caption was not read: {:?}", meme.items));
    assert_eq!(bottom.verdict, Some(Verdict::Violation), "{bottom:?}");
    assert!(
        bottom.bounding_box.is_some_and(|b| b.top > 0.7),
        "{bottom:?}"
    );
    let caption = item(&meme, "caption");
    assert!(
        caption.text.starts_with("WHEN YOU LOSE AGAIN"),
        "{caption:?}"
    );
    assert_eq!(caption.verdict, Some(Verdict::Violation));

    let chat = report_of(root, "incoming/image/samples/squad-chat-screenshot.png");
    // A chat screenshot's lines are separate messages, not one caption.
    assert!(
        chat.items.iter().all(|i| i.id != "caption"),
        "{:?}",
        chat.items
    );
    let flagged: Vec<&str> = chat
        .items
        .iter()
        .filter(|i| i.verdict == Some(Verdict::Violation))
        .map(|i| i.text.as_str())
        .collect();
    assert!(
        flagged.iter().any(|t| t.contains("worthless idiot")),
        "{flagged:?}"
    );
    assert!(
        chat.items
            .iter()
            .filter(|i| i.text.contains("gg everyone"))
            .all(|i| i.verdict == Some(Verdict::BelowThreshold)),
        "{:?}",
        chat.items
    );

    let benign = report_of(root, "incoming/image/samples/victory-screenshot.png");
    assert_eq!(benign.summary.violations, 0, "{:?}", benign.items);
    for r in [&meme, &chat, &benign] {
        // No offline classifier looked at the picture: it is held for a person, and the report
        // says what went unchecked.
        let picture = item(r, "image");
        assert_eq!(picture.verdict, Some(Verdict::NeedsReview));
        assert!(picture
            .review_reason
            .as_deref()
            .is_some_and(|w| w.contains("no image classifier")));
        let found = r.image.as_ref().expect("image findings");
        assert!(found.not_checked.iter().any(|c| c == "Violence"));
        assert_eq!(found.text_model.as_deref(), Some("Tesseract OCR"));
        assert_eq!(r.status, Status::Partial);
        assert_eq!(r.usage.images, 1);
    }
}

#[tokio::test]
async fn the_report_blurs_a_flagged_image_and_outlines_its_text_in_chromium() {
    if !tesseract_or_skip() {
        return;
    }
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = Apps::offline(root).await;
    let key = "incoming/image/samples/lose-again-meme.png";
    put(
        root,
        key,
        &std::fs::read(workspace_root().join("events/uploads/lose-again-meme.png")).expect("read"),
    );
    moderate(&apps, vec![key.to_string()]).await;
    let report = report_of(root, key);
    let html = root
        .join(FIXTURE_BUCKET)
        .join(keys::report_html_key(&report.report_id));
    let url = file_url(&html);
    let dom = dump_dom(&browser, &url, 500);
    assert!(
        dom.contains("class=\"frame blurred\" id=\"image\" data-blurred=\"true\""),
        "{dom}"
    );
    assert!(dom.contains("<img src=\"../incoming/image/samples/lose%2Dagain%2Dmeme%2Epng\""));
    assert!(
        dom.contains("class=\"box flagged\""),
        "a flagged line is outlined"
    );
    assert!(dom.contains("id=\"not-checked\""));
    assert!(dom.contains("<label for=\"reveal\""));
    // The page renders: a screenshot of it is a real PNG of the requested size.
    let shot = dir.path().join("report.png");
    screenshot(&browser, &url, &shot, 1000, 1200);
    let bytes = std::fs::read(&shot).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG"));
    assert_eq!(&bytes[16..24], &[0, 0, 3, 232, 0, 0, 4, 176], "1000 × 1200");
}

#[tokio::test]
async fn the_fixtures_drive_the_handler_directly_and_through_sqs() {
    if !tesseract_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = Apps::offline(root).await;
    for name in ["lose-again-meme.png", "squad-chat-screenshot.png"] {
        put(
            root,
            &format!("incoming/image/match-42/{name}"),
            &std::fs::read(workspace_root().join("events/uploads").join(name)).expect("read"),
        );
    }
    let out = screen_image::handler(event(fixture("s3-put-image.json")), &apps.image)
        .await
        .expect("handled");
    let id = keys::source_id(
        FIXTURE_BUCKET,
        "incoming/image/match-42/lose-again-meme.png",
    );
    assert_eq!(out["written"][0], keys::screened_key(&id), "{out}");
    let out = screen_image::handler(event(fixture("sqs-s3-put-image.json")), &apps.image)
        .await
        .expect("handled");
    assert_eq!(out["batchItemFailures"], serde_json::json!([]), "{out}");
    let id = keys::source_id(
        FIXTURE_BUCKET,
        "incoming/image/match-42/squad-chat-screenshot.png",
    );
    let screened: moderation_core::model::StageDocument = read_doc(root, &keys::screened_key(&id));
    assert!(
        screened.items.iter().any(|i| i.verdict.is_none()),
        "{screened:?}"
    );
}

/// PNG's chunk checksum, so a doctored header still passes the decoder's check.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG of `w` × `h`.
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    moderation_core::picture::blank_png(w, h, &mut out);
    out.into_inner()
}

#[tokio::test]
async fn hostile_and_odd_files_get_a_clear_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = Apps::offline(root).await;
    let mut bomb = png(2, 2);
    bomb[16..24].copy_from_slice(&[0, 0, 0xC3, 0x50, 0, 0, 0xC3, 0x50]); // 50,000 × 50,000
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let mut noise = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    noise.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let cases: Vec<(&str, Vec<u8>, Status, &str)> = vec![
        (
            "svg.png",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>".to_vec(),
            Status::Failed,
            "SVG",
        ),
        ("noise.png", noise, Status::Failed, "cannot be"),
        (
            "truncated.png",
            png(300, 300)[..300].to_vec(),
            Status::Failed,
            "png",
        ),
        ("bomb.png", bomb, Status::Failed, "50000×50000 pixels"),
        (
            "named-wrong.jpg",
            png(100, 100),
            Status::Failed,
            "named .jpg but its bytes are PNG",
        ),
        (
            "notes.bmp",
            b"BM....".to_vec(),
            Status::Failed,
            "unsupported image file type",
        ),
        // A 1 × 1 pixel is upscaled to Rekognition's minimum and checked.
        ("pixel.png", png(1, 1), Status::Partial, "upscaled from 1×1"),
    ];
    let mut keys = Vec::new();
    for (name, bytes, _, _) in &cases {
        let key = format!("incoming/image/odd/{name}");
        put(root, &key, bytes);
        keys.push(key);
    }
    moderate(&apps, keys).await;
    for (name, _, status, want) in cases {
        let r = report_of(root, &format!("incoming/image/odd/{name}"));
        assert_eq!(r.status, status, "{name}: {:?}", r.errors);
        let said = r
            .errors
            .iter()
            .map(|e| e.message.clone())
            .chain(r.image.iter().flat_map(|f| f.prepared.clone()))
            .collect::<Vec<_>>()
            .join(" | ");
        assert!(said.contains(want), "{name}: {said}");
        if status == Status::Failed {
            assert!(r.items.is_empty(), "{name}");
        }
    }
}
