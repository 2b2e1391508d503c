//! Images through the offline chain: screen-image (no offline classifier yet, Tesseract OCR)
//! → evaluate-policy → write-report, driven with the `events/` fixtures; hostile files; and the
//! report in headless Chromium (blurred image, text boxes, a screenshot).

use moderation_core::chain::delivery::run_chain;
use moderation_core::chain::keys;
use moderation_core::model::{Report, Status, Verdict};
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
    let classifier = moderation_tests::offline_classifier_on();
    for r in [&meme, &chat, &benign] {
        let picture = item(r, "image");
        let found = r.image.as_ref().expect("image findings");
        if classifier {
            // open_nsfw looked: none of these is anywhere near nude, and the report says what
            // it cannot see.
            assert_eq!(
                picture.verdict,
                Some(Verdict::BelowThreshold),
                "{picture:?}"
            );
            assert!(found.label_model.contains("open_nsfw"), "{found:?}");
            assert!(!found.not_checked.iter().any(|c| c == "Explicit"));
            assert_eq!(r.status, Status::Complete, "{:?}", r.errors);
        } else {
            // No offline classifier looked at the picture: it is held for a person.
            assert_eq!(picture.verdict, Some(Verdict::NeedsReview));
            assert!(picture
                .review_reason
                .as_deref()
                .is_some_and(|w| w.contains("no image classifier")));
            assert_eq!(r.status, Status::Partial);
        }
        assert!(found.not_checked.iter().any(|c| c == "Violence"));
        assert_eq!(found.text_model.as_deref(), Some("Tesseract OCR"));
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
    // The checkbox is the frame's sibling, so checking it lifts the blur (no script).
    assert!(
        dom.contains("<input type=\"checkbox\" id=\"reveal\" class=\"reveal\"><label"),
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
    // The same page with the box ticked shows the picture: the screenshots differ over the
    // image, not just at the tick.
    let page = std::fs::read_to_string(&html).expect("html");
    let ticked = page.replace(
        "<input type=\"checkbox\" id=\"reveal\" class=\"reveal\">",
        "<input type=\"checkbox\" id=\"reveal\" class=\"reveal\" checked>",
    );
    assert_ne!(ticked, page);
    let revealed = html.with_file_name("revealed.html");
    std::fs::write(&revealed, ticked).expect("write");
    let shot2 = dir.path().join("revealed.png");
    screenshot(&browser, &file_url(&revealed), &shot2, 1000, 1200);
    let (a, b) = (
        image::open(&shot).expect("decode").to_rgb8(),
        image::open(&shot2).expect("decode").to_rgb8(),
    );
    let differing = a
        .pixels()
        .zip(b.pixels())
        .filter(|(p, q)| p.0.iter().zip(q.0).any(|(x, y)| x.abs_diff(y) > 24))
        .count();
    assert!(
        differing > 20_000,
        "only {differing} pixels changed when revealed"
    );
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
    moderation_core::media::picture::blank_png(w, h, &mut out);
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
        (
            "pixel.png",
            png(1, 1),
            // Partial when no classifier could look at the picture.
            if moderation_tests::offline_classifier_on() {
                Status::Complete
            } else {
                Status::Partial
            },
            "upscaled from 1×1",
        ),
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

#[tokio::test]
async fn a_screenshot_attached_to_a_user_report_is_moderated_with_the_report() {
    if !tesseract_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = Apps::offline(root).await;
    let key = "recordings/match-42/squad-chat-screenshot.png";
    put(
        root,
        key,
        &std::fs::read(workspace_root().join("events/uploads/squad-chat-screenshot.png"))
            .expect("read"),
    );
    let out = transcribe_audio::handler(event(fixture("user-report.json")), &apps.audio)
        .await
        .expect("handled");
    let written: Vec<String> = out["written"]
        .as_array()
        .expect("written")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    moderate(&apps, written).await;
    let detail: moderation_core::model::UserReport =
        serde_json::from_value(fixture("user-report.json")["detail"].clone()).expect("detail");
    let id = keys::user_report_id(FIXTURE_BUCKET, key, &detail.report_id);
    let report: Report = read_doc(root, &keys::report_json_key(&id));
    assert_eq!(
        report.source.kind,
        moderation_core::model::SourceKind::Image
    );
    assert_eq!(report.trigger.user_report.as_ref(), Some(&detail));
    assert!(report.summary.violations >= 1, "{:?}", report.items);
}

/// Rekognition as a test needs it: fixed labels, and a text reader that is throttled.
struct FixedLabels(moderation_core::ports::LabelsFound);

#[async_trait::async_trait]
impl moderation_core::ports::ImageModerator for FixedLabels {
    fn name(&self) -> &str {
        "Amazon Rekognition"
    }
    async fn labels(
        &self,
        _image: &moderation_core::ports::ImageInput<'_>,
        _min: f64,
    ) -> moderation_core::Result<moderation_core::ports::LabelsFound> {
        Ok(self.0.clone())
    }
}

struct Throttled;

#[async_trait::async_trait]
impl moderation_core::ports::ImageTextReader for Throttled {
    fn name(&self) -> &str {
        "Amazon Rekognition DetectText"
    }
    async fn lines(
        &self,
        _image: &moderation_core::ports::ImageInput<'_>,
    ) -> moderation_core::Result<moderation_core::ports::TextRead> {
        Err(moderation_core::Error::service(
            "rekognition",
            moderation_core::error::ServiceErrorKind::Throttled,
            "ProvisionedThroughputExceededException: slow down",
        ))
    }
}

#[tokio::test]
async fn unread_text_and_unseen_frames_are_held_for_a_person() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let config = moderation_tests::with_offline_vars(root, |v| {
        screen_image::Config::from_vars(v).expect("config")
    });
    let text = Arc::new(
        screen_text::App::build(config.text.clone())
            .await
            .expect("text app"),
    );
    let violence = moderation_core::model::ImageLabel {
        name: "Violence".into(),
        parent: String::new(),
        level: 1,
        confidence: 95.0,
        category: "Violence".into(),
    };
    let labels = moderation_core::ports::LabelsFound {
        labels: vec![violence],
        model: "Amazon Rekognition moderation model 7.0".into(),
        ..Default::default()
    };
    let image = screen_image::App::from_parts(
        text,
        Arc::new(FixedLabels(labels)),
        Arc::new(Throttled),
        &config,
    );
    // A two-frame GIF: only the first frame can be checked.
    let mut gif = Vec::new();
    {
        use image::{codecs::gif::GifEncoder, Delay, Frame, Rgba, RgbaImage};
        let mut enc = GifEncoder::new(&mut gif);
        for shade in [20u8, 230] {
            enc.encode_frame(Frame::from_parts(
                RgbaImage::from_pixel(120, 120, Rgba([shade, 0, 0, 255])),
                0,
                0,
                Delay::from_numer_denom_ms(80, 1),
            ))
            .expect("frame");
        }
    }
    let key = "incoming/image/match-7/clip.gif";
    put(root, key, &gif);
    image
        .process(moderation_core::model::ObjectRef::new(FIXTURE_BUCKET, key))
        .await
        .expect("screened");
    let id = keys::source_id(FIXTURE_BUCKET, key);
    let doc: moderation_core::model::StageDocument = read_doc(root, &keys::screened_key(&id));
    assert_eq!(doc.status, Status::Partial);
    let picture = doc.items.iter().find(|i| i.id == "image").expect("image");
    // Over the Violence gate: on to the policy check, with the unseen frames said.
    assert_eq!(picture.verdict, None, "{picture:?}");
    assert!(picture
        .review_reason
        .as_deref()
        .is_some_and(|r| r.contains("only the first frame")));
    assert!((picture.categories.violence_or_threat - 0.95).abs() < 1e-9);
    let unread = doc
        .items
        .iter()
        .find(|i| i.id == "text")
        .expect("text item");
    assert_eq!(unread.verdict, Some(Verdict::NeedsReview));
    assert!(unread
        .review_reason
        .as_deref()
        .is_some_and(|r| r.contains("text in the image was not read")));
}

/// `LLM_ENDPOINT` with a multimodal server (here the fake on loopback, which decodes the
/// picture it is sent): the picture nobody else could see is checked against the checklist,
/// the answers reach the report, and a picture whose text tells the model to answer "safe"
/// (the fake obeys it) is held for a person instead of passing.
#[tokio::test]
async fn a_multimodal_model_answers_the_checklist_and_image_text_cannot_talk_it_into_safe() {
    use moderation_tests::fake_aws::{FakeAws, Faults};
    if !tesseract_or_skip() {
        return;
    }
    let fake = FakeAws::start(Faults::default(), 13).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let endpoint = format!("{}/v1", fake.url());
    let (root_s, policy) = (
        root.display().to_string(),
        workspace_root()
            .join("infra/policies")
            .display()
            .to_string(),
    );
    let pairs = [
        ("MODERATION_BACKEND", "offline"),
        ("MODERATION_OFFLINE_ROOT", root_s.as_str()),
        ("POLICY_DIR", policy.as_str()),
        ("LLM_ENDPOINT", endpoint.as_str()),
        ("LLM_MODEL", "llava-1.6-7b"),
        ("IMAGE_CHECK", "on"),
    ];
    let config_of = |pairs: &[(&str, &str)]| {
        evaluate_policy::Config::from_vars(&moderation_core::chain::config::Vars::from_pairs(pairs))
            .expect("config")
    };
    // Offline the picture check is opt-in: a text-only local server would not see the picture.
    let text_only = evaluate_policy::App::build(config_of(&pairs[..5]))
        .await
        .expect("app");
    assert_eq!(text_only.image_model(), None);
    let blind = evaluate_policy::App::build(config_of(&[
        pairs[0],
        pairs[1],
        pairs[2],
        ("IMAGE_CHECK", "on"),
    ]))
    .await;
    assert!(blind.is_err_and(|e| e.to_string().contains("needs LLM_ENDPOINT")));
    let evaluate = config_of(&pairs);
    // No classifier, whatever this build has: the model is then the only thing that sees the
    // pictures, so every one of them goes to it.
    let base = Apps::offline(root).await;
    let image_config = moderation_tests::with_offline_vars(root, |v| {
        screen_image::Config::from_vars(v).expect("config")
    });
    let image = screen_image::App::from_parts(
        base.image.text().clone(),
        std::sync::Arc::new(moderation_offline::NoImageClassifier::default()),
        std::sync::Arc::new(moderation_offline::TesseractText::default()),
        &image_config,
    );
    let evaluate = evaluate_policy::App::build(evaluate).await.expect("app");
    assert_eq!(evaluate.image_model(), Some("llava-1.6-7b"));
    let apps = Apps {
        evaluate,
        image,
        ..base
    };
    let mut keys = stage_images(root);
    let sign = "incoming/image/samples/injection-sign.png";
    put(
        root,
        sign,
        &std::fs::read(workspace_root().join("events/images/injection-sign.png")).expect("read"),
    );
    keys.push(sign.to_string());
    moderate(&apps, keys).await;

    let meme = report_of(root, "incoming/image/samples/lose-again-meme.png");
    let picture = item(&meme, "image");
    assert_eq!(picture.verdict, Some(Verdict::Violation), "{picture:?}");
    let ev = picture.evaluation.as_ref().expect("evaluation");
    assert_eq!(ev.model, "llava-1.6-7b");
    assert_eq!(ev.checklist.len(), 8);
    assert_eq!(ev.category.as_deref(), Some("Harassment"));
    assert!(!ev.references.is_empty());
    // The model looked, so the picture is no longer held for lack of a classifier.
    assert!(picture.review_reason.is_none(), "{picture:?}");

    let benign = report_of(root, "incoming/image/samples/victory-screenshot.png");
    let picture = item(&benign, "image");
    assert_eq!(picture.verdict, Some(Verdict::NoViolation), "{picture:?}");
    assert_eq!(benign.status, Status::Complete, "{:?}", benign.errors);

    let tricked = report_of(root, sign);
    let picture = item(&tricked, "image");
    assert_eq!(picture.verdict, Some(Verdict::NeedsReview), "{picture:?}");
    // The (gullible) model did say safe; the report keeps its answer and says why it is held.
    assert_eq!(
        picture
            .evaluation
            .as_ref()
            .and_then(|e| e.answer.as_deref()),
        Some("N")
    );
    assert!(
        picture
            .review_reason
            .as_deref()
            .is_some_and(|r| r.contains("tells a moderation model how to answer")),
        "{picture:?}"
    );
    // Its threat is caught as text all the same.
    assert!(tricked.summary.violations >= 1, "{:?}", tricked.items);
    // One text judgement per flagged line plus one picture check per image.
    assert!(fake.ok_calls("ChatCompletions") >= 4);

    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let html = root
        .join(FIXTURE_BUCKET)
        .join(keys::report_html_key(&meme.report_id));
    let dom = dump_dom(&browser, &file_url(&html), 500);
    assert_eq!(
        dom.matches("<tr><td>").count(),
        8,
        "the checklist table has one row per question"
    );
    assert!(dom.contains("Checklist answered by the model"));
    assert!(dom.contains("Category named by the model: <b>Harassment</b>"));
}

/// With open_nsfw built in (`make test` has it): a picture's score gates like a Rekognition
/// label, a picture over the gate goes to the policy check, and the report names the model and
/// what it cannot see. A grey frame scores ~0.2, so a gate of 0.1 sends it on.
#[tokio::test]
async fn the_offline_classifier_scores_pictures_and_its_score_is_gated() {
    if !moderation_tests::offline_classifier_on() || !tesseract_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let root_s = root.display().to_string();
    let model = moderation_tests::nsfw_model().display().to_string();
    let pairs = [
        ("MODERATION_BACKEND", "offline"),
        ("MODERATION_OFFLINE_ROOT", root_s.as_str()),
        ("MODERATION_BUCKET", FIXTURE_BUCKET),
        ("NSFW_MODEL", model.as_str()),
        ("IMAGE_LABEL_THRESHOLD", "0.1"),
        ("IMAGE_MIN_CONFIDENCE", "0"),
    ];
    let config =
        screen_image::Config::from_vars(&moderation_core::chain::config::Vars::from_pairs(&pairs))
            .expect("config");
    let image = screen_image::App::build(config).await.expect("app");
    let apps = Apps {
        image,
        ..Apps::offline(root).await
    };
    let key = "incoming/image/odd/grey.png";
    let mut grey = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(300, 200, image::Rgb([128; 3])))
        .write_to(&mut grey, image::ImageFormat::Png)
        .expect("png");
    put(root, key, grey.get_ref());
    moderate(&apps, vec![key.to_string()]).await;
    let r = report_of(root, key);
    let picture = item(&r, "image");
    let found = r.image.as_ref().expect("findings");
    assert!(found.label_model.contains("open_nsfw"), "{found:?}");
    let explicit = found
        .labels
        .iter()
        .find(|l| l.category == "Explicit")
        .expect("an Explicit label at MinConfidence 0");
    assert!(
        explicit.confidence > 10.0 && explicit.confidence < 50.0,
        "{explicit:?}"
    );
    // Over the 0.1 gate: judged (offline, by the rules evaluator), not left below threshold.
    assert!(picture.evaluation.is_some(), "{picture:?}");
    assert_ne!(picture.verdict, Some(Verdict::BelowThreshold));
    assert!(found.not_checked.iter().any(|c| c == "Hate Symbols"));
}

/// The AWS adapters end to end against the loopback fake: Rekognition labels a red picture
/// Violence (over the gate) and reads its text, and the picture check sends the prepared copy
/// to Converse as an image block (the fake decodes it); a picture with no label stays below
/// the gate and costs no model call, as Rekognition checked every category.
#[tokio::test]
async fn the_aws_adapters_carry_a_picture_through_rekognition_and_converse() {
    use moderation_core::stages::evaluate_policy::image_check::{Checklist, ImageJudge};
    use moderation_tests::fake_aws::{sdk_config, FakeAws, Faults};
    use std::sync::Arc;
    let fake = FakeAws::start(Faults::default(), 17).await;
    let sdk = sdk_config(&fake.url(), std::time::Duration::from_secs(5)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let base = Apps::offline(root).await;
    let config = moderation_tests::with_offline_vars(root, |v| {
        screen_image::Config::from_vars(v).expect("config")
    });
    let rekognition = Arc::new(moderation_aws::RekognitionImages::from_sdk_config(&sdk));
    let image = screen_image::App::from_parts(
        base.image.text().clone(),
        rekognition.clone(),
        rekognition,
        &config,
    );
    let vision = ImageJudge::new(
        Box::new(moderation_aws::ConverseModel::from_sdk_config(
            &sdk,
            "vision-model",
        )),
        Checklist::default_checklist(),
    );
    let evaluate = base.evaluate.with_image_judge(Some(Arc::new(vision)));
    let apps = Apps {
        image,
        evaluate,
        ..base
    };
    let mut red = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        200,
        150,
        image::Rgb([200, 20, 20]),
    ))
    .write_to(&mut red, image::ImageFormat::Png)
    .expect("png");
    let (red_key, plain_key) = ("incoming/image/m/red.png", "incoming/image/m/plain.png");
    put(root, red_key, red.get_ref());
    put(root, plain_key, &png(200, 150));
    moderate(&apps, vec![red_key.to_string(), plain_key.to_string()]).await;

    let r = report_of(root, red_key);
    let found = r.image.as_ref().expect("findings");
    assert!(found.label_model.contains("7.0"), "{found:?}");
    assert!(found
        .labels
        .iter()
        .any(|l| l.name == "Graphic Violence" && l.level == 2));
    assert!(found.content_types.iter().any(|c| c.name == "Illustrated"));
    assert!(found.not_checked.is_empty());
    let picture = item(&r, "image");
    assert_eq!(picture.verdict, Some(Verdict::Violation), "{picture:?}");
    let ev = picture.evaluation.as_ref().expect("evaluation");
    assert_eq!(ev.model, "vision-model");
    assert_eq!(ev.category.as_deref(), Some("Graphic violence"));
    let line = item(&r, "text-1");
    assert_eq!(line.text, "gg wp");
    assert!(line.bounding_box.is_some());

    let plain = report_of(root, plain_key);
    assert_eq!(item(&plain, "image").verdict, Some(Verdict::BelowThreshold));
    assert_eq!(fake.ok_calls("DetectModerationLabels"), 2);
    assert_eq!(fake.ok_calls("DetectText"), 2);
    assert_eq!(fake.ok_calls("Converse"), 1);
}
