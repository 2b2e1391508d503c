//! Text in an image by Tesseract OCR, run as a program (Debian `tesseract-ocr`): several passes
//! over enhanced copies of the picture, merged into one reading per line.

use std::io::{Cursor, Write};
use std::process::{Command, Stdio};

use async_trait::async_trait;
use image::DynamicImage;
use moderation_core::model::BoundingBox;
use moderation_core::ports::{ImageInput, ImageTextReader, TextLine, TextRead};
use moderation_core::{Error, Result as CoreResult};

/// One OCR pass taking longer than this is stopped (a 2× 8,000 px image takes a few seconds).
const OCR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Lines whose words Tesseract is less sure of than this (0–100) are noise: textures, edges.
const MIN_LINE_CONFIDENCE: f64 = 35.0;

/// Text in images by the `tesseract` program (`TESSERACT` overrides the path).
pub struct TesseractText {
    program: String,
}

impl Default for TesseractText {
    fn default() -> Self {
        TesseractText {
            program: std::env::var("TESSERACT")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "tesseract".into()),
        }
    }
}

impl TesseractText {
    pub fn with_program(program: impl Into<String>) -> Self {
        TesseractText {
            program: program.into(),
        }
    }

    /// One OCR pass over a PNG: lines with boxes as fractions of the image.
    fn pass(&self, png: &[u8], w: u32, h: u32) -> CoreResult<Vec<TextLine>> {
        let mut child = Command::new(&self.program)
            .args(["stdin", "stdout", "--psm", "3", "tsv"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::Config(format!(
                    "{} cannot be run ({e}): install Debian tesseract-ocr (`make deps-image`), \
                     or set TESSERACT to its path",
                    self.program
                ))
            })?;
        // Feed and drain the pipes on their own threads (a full pipe would stall either side),
        // and give up on a run that hangs.
        let mut stdin = child.stdin.take();
        let input = png.to_vec();
        let feeder =
            std::thread::spawn(move || stdin.take().map(|mut s| s.write_all(&input)).transpose());
        let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut buf);
                }
                buf
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let deadline = std::time::Instant::now() + OCR_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::Input(format!(
                        "{} took over {} s and was stopped",
                        self.program,
                        OCR_TIMEOUT.as_secs()
                    )));
                }
                Err(e) => {
                    return Err(Error::Io {
                        path: self.program.clone(),
                        source: e,
                    })
                }
            }
        };
        let fed = feeder.join();
        let out = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        if !status.success() || !matches!(fed, Ok(Ok(_))) {
            return Err(Error::Input(format!(
                "{} failed ({status}): {}",
                self.program,
                String::from_utf8_lossy(&err).trim()
            )));
        }
        Ok(parse_tsv(&String::from_utf8_lossy(&out), w, h))
    }
}

/// Tesseract's TSV (level 5 rows are words) grouped into lines.
fn parse_tsv(tsv: &str, w: u32, h: u32) -> Vec<TextLine> {
    struct Line {
        key: (u32, u32, u32, u32),
        words: Vec<String>,
        confs: Vec<f64>,
        x0: u32,
        y0: u32,
        x1: u32,
        y1: u32,
    }
    let mut lines: Vec<Line> = Vec::new();
    for row in tsv.lines().skip(1) {
        let f: Vec<&str> = row.split('\t').collect();
        if f.len() < 12 || f[0] != "5" {
            continue;
        }
        let n = |i: usize| f[i].trim().parse::<u32>().unwrap_or(0);
        let conf: f64 = f[10].trim().parse().unwrap_or(-1.0);
        // Specks read as `_`, `|` or `‘` carry no meaning and drag a line's confidence down.
        let word = f[11]
            .trim()
            .trim_matches(|c: char| !c.is_alphanumeric() && !"!?.,':@#".contains(c));
        if !word.chars().any(char::is_alphanumeric) || conf < 0.0 {
            continue;
        }
        let key = (n(1), n(2), n(3), n(4));
        let (x, y, ww, hh) = (n(6), n(7), n(8), n(9));
        match lines.iter_mut().find(|l| l.key == key) {
            Some(l) => {
                l.words.push(word.to_string());
                l.confs.push(conf);
                l.x0 = l.x0.min(x);
                l.y0 = l.y0.min(y);
                l.x1 = l.x1.max(x + ww);
                l.y1 = l.y1.max(y + hh);
            }
            None => lines.push(Line {
                key,
                words: vec![word.to_string()],
                confs: vec![conf],
                x0: x,
                y0: y,
                x1: x + ww,
                y1: y + hh,
            }),
        }
    }
    let (fw, fh) = (f64::from(w.max(1)), f64::from(h.max(1)));
    lines
        .into_iter()
        .map(|l| TextLine {
            confidence: l.confs.iter().sum::<f64>() / l.confs.len() as f64,
            text: l.words.join(" "),
            bounding_box: BoundingBox {
                left: f64::from(l.x0) / fw,
                top: f64::from(l.y0) / fh,
                width: f64::from(l.x1 - l.x0) / fw,
                height: f64::from(l.y1 - l.y0) / fh,
            },
        })
        .filter(|l| {
            l.confidence >= MIN_LINE_CONFIDENCE
                && l.text.chars().filter(|c| c.is_alphanumeric()).count() >= 2
        })
        .collect()
}

fn overlap(a: &BoundingBox, b: &BoundingBox) -> f64 {
    let ix = ((a.left + a.width).min(b.left + b.width) - a.left.max(b.left)).max(0.0);
    let iy = ((a.top + a.height).min(b.top + b.height) - a.top.max(b.top)).max(0.0);
    let inter = ix * iy;
    let union = a.width * a.height + b.width * b.height - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// The share of the shorter span that two spans have in common.
fn span_overlap(a0: f64, a_len: f64, b0: f64, b_len: f64) -> f64 {
    let common = ((a0 + a_len).min(b0 + b_len) - a0.max(b0)).max(0.0);
    let shorter = a_len.min(b_len);
    if shorter <= 0.0 {
        0.0
    } else {
        common / shorter
    }
}

/// Whether two readings are of one line of text: boxes that overlap by area, or (on a tall
/// screenshot, where each line is a thin strip and passes box it a little apart) that share
/// most of the shorter one's height and of the narrower one's width.
fn same_line(a: &BoundingBox, b: &BoundingBox) -> bool {
    overlap(a, b) > 0.3
        || (span_overlap(a.top, a.height, b.top, b.height) >= 0.5
            && span_overlap(a.left, a.width, b.left, b.width) >= 0.5)
}

/// Lines from several passes: where two passes read the same line, the surer reading wins.
fn merge(passes: Vec<Vec<TextLine>>) -> Vec<TextLine> {
    let mut out: Vec<TextLine> = Vec::new();
    for line in passes.into_iter().flatten() {
        match out
            .iter_mut()
            .find(|o| same_line(&o.bounding_box, &line.bounding_box))
        {
            Some(o) if line.confidence > o.confidence => *o = line,
            Some(_) => {}
            None => out.push(line),
        }
    }
    // Reading order: top to bottom, then left to right.
    out.sort_by(|a, b| {
        (a.bounding_box.top, a.bounding_box.left)
            .partial_cmp(&(b.bounding_box.top, b.bounding_box.left))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    out
}

/// The images Tesseract reads best from: grey, text at least ~20 px high (small images are
/// doubled), in both polarities (white meme captions read better inverted).
fn ocr_inputs(img: &DynamicImage) -> CoreResult<(Vec<Vec<u8>>, u32, u32)> {
    let mut grey = img.grayscale();
    if grey.width().max(grey.height()) <= 1_600 {
        grey = grey.resize(
            grey.width() * 2,
            grey.height() * 2,
            image::imageops::FilterType::Triangle,
        );
    }
    let mut inverted = grey.clone();
    inverted.invert();
    // Meme captions are white letters with a black outline over a photo: the bright pixels
    // alone, as dark ink on white, read best.
    let mut bright = grey.to_luma8();
    for p in bright.pixels_mut() {
        p.0[0] = if p.0[0] >= 200 { 0 } else { 255 };
    }
    let (w, h) = (grey.width(), grey.height());
    let mut out = Vec::new();
    for img in [grey, inverted, DynamicImage::ImageLuma8(bright)] {
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| Error::Input(format!("encoding the image for OCR failed: {e}")))?;
        out.push(png);
    }
    Ok((out, w, h))
}

#[async_trait]
impl ImageTextReader for TesseractText {
    fn name(&self) -> &str {
        "Tesseract OCR"
    }

    async fn lines(&self, image: &ImageInput<'_>) -> CoreResult<TextRead> {
        let pixels = image.prepared.pixels.clone();
        let program = self.program.clone();
        tokio::task::spawn_blocking(move || {
            let reader = TesseractText::with_program(program);
            let (pngs, w, h) = ocr_inputs(&pixels)?;
            let mut passes = Vec::new();
            for png in pngs {
                passes.push(reader.pass(&png, w, h)?);
            }
            Ok(TextRead {
                lines: merge(passes),
                incomplete: None,
            })
        })
        .await
        .map_err(|e| Error::Input(format!("the OCR task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t400\t200\t-1\t
4\t1\t1\t1\t1\t0\t10\t10\t200\t20\t-1\t
5\t1\t1\t1\t1\t1\t10\t10\t50\t20\t91.5\tyou
5\t1\t1\t1\t1\t2\t70\t12\t140\t18\t88.5\tloser
5\t1\t1\t1\t2\t1\t10\t60\t30\t20\t20.0\t~%
5\t1\t2\t1\t1\t1\t10\t150\t100\t20\t80.0\tgg wp";

    #[test]
    fn words_are_grouped_into_lines_with_boxes_and_noise_is_dropped() {
        let lines = parse_tsv(TSV, 400, 200);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].text, "you loser");
        assert!((lines[0].confidence - 90.0).abs() < 1e-9);
        let b = lines[0].bounding_box;
        assert!((b.left - 0.025).abs() < 1e-9 && (b.top - 0.05).abs() < 1e-9);
        assert!((b.width - 0.5).abs() < 1e-9 && (b.height - 0.1).abs() < 1e-9);
        assert_eq!(lines[1].text, "gg wp");
    }

    #[test]
    fn the_surer_of_two_readings_of_one_place_wins() {
        let at = |text: &str, confidence: f64, top: f64| TextLine {
            text: text.into(),
            confidence,
            bounding_box: BoundingBox {
                left: 0.1,
                top,
                width: 0.8,
                height: 0.1,
            },
        };
        let merged = merge(vec![
            vec![
                at("GO KILE YOURSELF", 70.0, 0.8),
                at("WHEN YOU LOSE", 90.0, 0.05),
            ],
            vec![at("GO KILL YOURSELF", 93.0, 0.81)],
        ]);
        let texts: Vec<&str> = merged.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["WHEN YOU LOSE", "GO KILL YOURSELF"]);
    }

    #[test]
    fn passes_over_a_tall_screenshot_read_each_line_once() {
        // 100 chat lines down a 400 × 8,000 px screenshot: each a strip 0.25 % of the height.
        // The second pass boxes every line 8 px lower and only its words, not the name.
        let line = |i: usize, dy: f64, left: f64, width: f64, confidence: f64| TextLine {
            text: format!("line {i}"),
            confidence,
            bounding_box: BoundingBox {
                left,
                top: (i as f64 * 80.0 + dy) / 8_000.0,
                width,
                height: 20.0 / 8_000.0,
            },
        };
        let first: Vec<TextLine> = (0..100).map(|i| line(i, 0.0, 0.05, 0.9, 80.0)).collect();
        let second: Vec<TextLine> = (0..100).map(|i| line(i, 8.0, 0.4, 0.5, 85.0)).collect();
        let merged = merge(vec![first, second]);
        assert_eq!(merged.len(), 100);
        // Lines 80 px apart are never taken for one.
        assert!(!same_line(
            &line(0, 0.0, 0.05, 0.9, 80.0).bounding_box,
            &line(1, 0.0, 0.05, 0.9, 80.0).bounding_box
        ));
    }

    #[tokio::test]
    async fn a_missing_program_is_a_clear_error() {
        let reader = TesseractText::with_program("/nonexistent/tesseract");
        let prepared = moderation_core::media::picture::prepare(
            &{
                let mut out = Vec::new();
                DynamicImage::new_rgb8(100, 100)
                    .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
                    .expect("png");
                out
            },
            "png",
        )
        .expect("prepared");
        let input = ImageInput {
            prepared: &prepared,
            bucket: "b",
            key: "k.png",
            version: None,
        };
        let e = reader.lines(&input).await.expect_err("no program");
        assert!(e.to_string().contains("tesseract-ocr"), "{e}");
    }
}
