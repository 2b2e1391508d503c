//! Images: the screen-image release binary (`aws` backend) against the fake Rekognition with
//! 100 ms added to every call (images per second, peak RSS, CPU), and the offline detectors in
//! this process on the sample images: open_nsfw (feature `nsfw`) and Tesseract (images per
//! second on one core).

use std::time::{Duration, Instant};

use moderation_tests::fake_aws::{FakeAws, Faults};

use crate::launch::{self, Launch};
use crate::workload::{aws_env, put_object, s3_event, Endpoints};
use crate::Ctx;

/// Added to every fake AWS answer (Rekognition, and Comprehend for the text in the images).
pub const LATENCY: Duration = Duration::from_millis(100);
const SAMPLES: [&str; 3] = [
    "lose-again-meme.png",
    "squad-chat-screenshot.png",
    "victory-screenshot.png",
];

#[derive(Debug, Clone, Default)]
pub struct StageRun {
    pub images_per_s: f64,
    pub rss_mib: f64,
    pub cpu_seconds: f64,
}

#[derive(Debug, Clone)]
pub struct ImageResult {
    /// Images per screen-image run (each one invocation, one after another).
    pub images: usize,
    pub runs: Vec<StageRun>,
    pub failures: Vec<String>,
    /// open_nsfw on the samples, images per second per run; `Err` says why not measured.
    pub nsfw: Result<Vec<f64>, String>,
    /// Tesseract's three passes on the samples, images per second per run.
    pub ocr: Result<Vec<f64>, String>,
}

fn sample(ctx: &Ctx, name: &str) -> Result<Vec<u8>, String> {
    let path = ctx.root.join("events/uploads").join(name);
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

pub async fn run(ctx: &Ctx, images: usize) -> ImageResult {
    let (nsfw, ocr) = offline_detectors(ctx).await;
    let mut result = ImageResult {
        images,
        runs: Vec::new(),
        failures: Vec::new(),
        nsfw,
        ocr,
    };
    if !ctx.binary("screen-image").exists() {
        result.failures.push(format!(
            "{} is missing: cargo build --release -p screen-image (make bench does)",
            ctx.binary("screen-image").display()
        ));
        return result;
    }
    let fake = FakeAws::start(
        Faults {
            latency: LATENCY,
            ..Faults::default()
        },
        23,
    )
    .await;
    let endpoints = Endpoints {
        s3: ctx.s3.url(),
        aws: fake.url(),
    };
    let env = aws_env(&endpoints, &ctx.work);
    for i in 0..ctx.runs {
        match stage_run(ctx, &env, i, images).await {
            Ok(r) => result.runs.push(r),
            Err(e) => {
                eprintln!("bench: screen-image failure: {e}");
                result.failures.push(e);
            }
        }
    }
    result
}

async fn stage_run(
    ctx: &Ctx,
    env: &[(String, String)],
    i: usize,
    images: usize,
) -> Result<StageRun, String> {
    let bucket = format!("images-{i}");
    let mut events = Vec::with_capacity(images);
    for n in 0..images {
        let name = SAMPLES[n % SAMPLES.len()];
        let key = format!("incoming/image/bench/{n}-{name}");
        let size = put_object(&ctx.work, &bucket, &key, &sample(ctx, name)?)?;
        events.push(s3_event(&bucket, &key, size));
    }
    let label = format!("screen-image-{i}");
    let r = launch::run(&Launch {
        label: label.clone(),
        program: ctx.binary("screen-image"),
        args: vec![],
        env: env.to_vec(),
        events,
        log_dir: ctx.logs.clone(),
        timeout: Duration::from_secs(600),
    })
    .await?;
    let _ = std::fs::remove_dir_all(ctx.work.join(&bucket));
    if let Some(bad) = r.responses.iter().find(|a| a.error) {
        return Err(format!(
            "{label}: function error: {}",
            String::from_utf8_lossy(&bad.body)
        ));
    }
    // From the first answer to the last: images − 1 whole invocations, start-up excluded.
    let (first, last) = match (r.responses.first(), r.responses.last()) {
        (Some(f), Some(l)) if r.responses.len() > 1 => (f.at, l.at),
        _ => return Err(format!("{label}: fewer than two answers")),
    };
    let secs = last.duration_since(first).as_secs_f64().max(1e-9);
    Ok(StageRun {
        images_per_s: (r.responses.len() - 1) as f64 / secs,
        rss_mib: r.peak_rss_kib as f64 / 1024.0,
        cpu_seconds: r.cpu.as_secs_f64(),
    })
}

/// The samples prepared as screen-image prepares them.
fn prepared(ctx: &Ctx) -> Result<Vec<moderation_core::model::Prepared>, String> {
    SAMPLES
        .iter()
        .map(|name| moderation_core::media::picture::prepare(&sample(ctx, name)?, "png"))
        .collect()
}

async fn offline_detectors(ctx: &Ctx) -> (Result<Vec<f64>, String>, Result<Vec<f64>, String>) {
    let pictures = match prepared(ctx) {
        Ok(p) => p,
        Err(e) => return (Err(e.clone()), Err(e)),
    };
    let nsfw = nsfw_speed(ctx, &pictures);
    let ocr = ocr_speed(ctx, &pictures).await;
    if let Ok(v) = &nsfw {
        eprintln!("bench:   open_nsfw {:.1} images/s", crate::stats::median(v));
    }
    if let Ok(v) = &ocr {
        eprintln!("bench:   Tesseract {:.2} images/s", crate::stats::median(v));
    }
    (nsfw, ocr)
}

#[cfg(not(feature = "nsfw"))]
fn nsfw_speed(
    _ctx: &Ctx,
    _pictures: &[moderation_core::model::Prepared],
) -> Result<Vec<f64>, String> {
    Err("not built (feature nsfw)".into())
}

#[cfg(feature = "nsfw")]
fn nsfw_speed(
    ctx: &Ctx,
    pictures: &[moderation_core::model::Prepared],
) -> Result<Vec<f64>, String> {
    let path: std::path::PathBuf = std::env::var_os("NSFW_MODEL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            ctx.root
                .join(moderation_core::stages::screen_image::DEFAULT_NSFW_MODEL)
        });
    let model = moderation_offline::image::nsfw::OpenNsfw::load(&path)
        .map_err(|e| format!("{e} (make models)"))?;
    let per_run = 30;
    (0..ctx.runs)
        .map(|_| {
            let t0 = Instant::now();
            for n in 0..per_run {
                model.score(&pictures[n % pictures.len()].pixels)?;
            }
            Ok(per_run as f64 / t0.elapsed().as_secs_f64())
        })
        .collect()
}

async fn ocr_speed(
    ctx: &Ctx,
    pictures: &[moderation_core::model::Prepared],
) -> Result<Vec<f64>, String> {
    use moderation_core::ports::{ImageInput, ImageTextReader};
    let reader = moderation_offline::TesseractText::default();
    let mut out = Vec::new();
    for _ in 0..ctx.runs {
        let t0 = Instant::now();
        for p in pictures {
            let input = ImageInput {
                prepared: p,
                bucket: "bench",
                key: "bench.png",
                version: None,
            };
            reader
                .lines(&input)
                .await
                .map_err(|e| format!("Tesseract: {e} (make deps-image)"))?;
        }
        out.push(pictures.len() as f64 / t0.elapsed().as_secs_f64());
    }
    Ok(out)
}
