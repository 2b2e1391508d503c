//! Image uploads: what the bytes really are, whether they are safe to decode, and an image the
//! services accept. Rekognition takes PNG or JPEG, 80–10,000 px a side, ≤ 5 MB inline (≤ 15 MB by
//! S3 reference); Bedrock Converse ≤ 3.75 MB and ≤ 8,000 px. GIF (first frame) and WebP become
//! PNG; EXIF rotation is applied; tiny images are upscaled and huge ones scaled down. Every
//! change is listed so the report can say what was checked.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::model::{Format, Prepared};

/// File extensions of images the chain moderates.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "gif", "webp"];

/// Rekognition refuses smaller sides.
pub const MIN_SIDE: u32 = 80;
/// Converse's limit (Rekognition's is 10,000): one prepared image serves both.
pub const MAX_SIDE: u32 = 8_000;
/// Declared sizes past this are refused before decoding (decompression bombs): 64 megapixels
/// is a 256 MB RGBA buffer, which with its scaled copy fits the function's 1 GB. A 48 MP phone
/// photo passes.
pub const MAX_PIXELS: u64 = 64_000_000;
/// What a prepared image may weigh: Rekognition's inline limit is 5 MB, Converse's 3.75 MB.
pub const MAX_PREPARED_BYTES: usize = 3_750_000;
/// Decoder allocations past this are refused.
const MAX_DECODE_ALLOC: u64 = 512 * 1024 * 1024;
/// What one decoded picture may take: [`MAX_PIXELS`] at 8-bit RGBA. A deeper picture of the
/// same size (16-bit RGBA is 8 bytes a pixel) is refused before decoding, since with the
/// copies scaling and encoding make it would not fit the function's memory.
pub const DECODE_BUDGET: u64 = MAX_PIXELS * 4;

/// What the bytes are, by their signature; an error names what they look like instead.
pub fn sniff(bytes: &[u8]) -> Result<Format, String> {
    let head = &bytes[..bytes.len().min(512)];
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Ok(Format::Gif);
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Ok(Format::Webp);
    }
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let what = if text.contains("<svg") {
        "an SVG drawing (vector images are not accepted: upload PNG or JPEG)"
    } else if text.contains("<html") || text.contains("<!doctype") {
        "an HTML page"
    } else if head.starts_with(b"%PDF") {
        "a PDF document"
    } else if head.starts_with(b"BM") {
        "a BMP image (upload PNG or JPEG)"
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        "a TIFF image (upload PNG or JPEG)"
    } else if head.len() >= 12 && &head[4..8] == b"ftyp" {
        "an HEIC/AVIF or video file (upload PNG or JPEG)"
    } else {
        "not an image in any format we accept (PNG, JPEG, GIF, WebP)"
    };
    Err(format!("the bytes are {what}"))
}

/// Whether the image has more than one frame. Frames are counted without decoding them all:
/// the GIF decoder stops at the second, APNG and WebP say so in their headers.
fn is_animated(bytes: &[u8], format: Format) -> bool {
    let cursor = || Cursor::new(bytes);
    match format {
        Format::Gif => image::codecs::gif::GifDecoder::new(cursor())
            .map(|d| image::AnimationDecoder::into_frames(d).take(2).count() > 1)
            .unwrap_or(false),
        Format::Png => image::codecs::png::PngDecoder::new(cursor())
            .and_then(|d| d.is_apng())
            .unwrap_or(false),
        Format::Webp => image::codecs::webp::WebPDecoder::new(cursor())
            .map(|d| d.has_animation())
            .unwrap_or(false),
        Format::Jpeg => false,
    }
}

/// The named type must be what the bytes are: .jpg vs .jpeg both name JPEG; a PNG called .jpg
/// is a mislabelled file. An extension naming no format we know says nothing.
fn check_named(format: Format, extension: &str) -> Result<(), String> {
    match Format::from_extension(extension) {
        Some(named) if named != format => Err(format!(
            "the file is named .{extension} but its bytes are {}",
            format.as_str().to_uppercase()
        )),
        _ => Ok(()),
    }
}

/// A reader of `bytes` as `format`, its allocations capped.
fn bounded_reader(bytes: &[u8], format: Format) -> ImageReader<Cursor<&[u8]>> {
    let mut r = ImageReader::with_format(Cursor::new(bytes), format.codec());
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    r.limits(limits);
    r
}

/// Declared sizes that are refused before decoding: past [`MAX_PIXELS`] (a decompression
/// bomb), or empty.
fn check_declared(w: u32, h: u32) -> Result<(), String> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > MAX_PIXELS {
        return Err(format!(
            "the image declares {w}×{h} pixels ({:.1} megapixels), over the {} megapixel limit \
             (a decompression bomb, or a photo to scale down before upload)",
            pixels as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        ));
    }
    if w == 0 || h == 0 {
        return Err(format!("the image declares {w}×{h} pixels"));
    }
    Ok(())
}

/// A picture whose decoded size would be past [`DECODE_BUDGET`] is refused before decoding.
fn check_decode_budget(w: u32, h: u32, color: image::ColorType) -> Result<(), String> {
    let needed = u64::from(w) * u64::from(h) * u64::from(color.bytes_per_pixel());
    if needed > DECODE_BUDGET {
        return Err(format!(
            "the image is {w}×{h} in {color:?} ({} bytes a pixel): decoding it takes {} MB, \
             over the {} MB budget for one picture (save it with 8 bits a channel, or smaller)",
            color.bytes_per_pixel(),
            needed / 1_000_000,
            DECODE_BUDGET / 1_000_000
        ));
    }
    Ok(())
}

/// The declared size, checked; then the first frame decoded, with its EXIF orientation.
fn decode(bytes: &[u8], format: Format) -> Result<(u32, u32, DynamicImage, Orientation), String> {
    let (w, h) = bounded_reader(bytes, format)
        .into_dimensions()
        .map_err(|e| format!("the {} header cannot be read: {e}", format.as_str()))?;
    check_declared(w, h)?;
    let mut decoder = bounded_reader(bytes, format)
        .into_decoder()
        .map_err(|e| format!("the {} cannot be decoded: {e}", format.as_str()))?;
    check_decode_budget(w, h, decoder.color_type())?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(decoder).map_err(|e| {
        format!(
            "the {} cannot be decoded (truncated or corrupt?): {e}",
            format.as_str()
        )
    })?;
    Ok((w, h, img, orientation))
}

/// What preparing a picture of `format` says before any pixel changes: only the first frame
/// of an animation is checked, GIF and WebP become PNG.
fn conversion_notes(format: Format, animated: bool) -> Vec<String> {
    let mut changes = Vec::new();
    if animated {
        changes.push(
            "animated: only the first frame was checked; a person should look at the rest".into(),
        );
    }
    match format {
        Format::Gif => changes.push("GIF: the first frame, as PNG".to_string()),
        Format::Webp => changes.push("WebP converted to PNG".to_string()),
        _ => {}
    }
    changes
}

/// The picture turned as its EXIF orientation says.
fn turn_upright(img: &mut DynamicImage, orientation: Orientation, changes: &mut Vec<String>) {
    if orientation != Orientation::NoTransforms {
        img.apply_orientation(orientation);
        changes.push(format!(
            "rotated as its EXIF orientation says ({orientation:?})"
        ));
    }
}

/// The size a picture with a side under [`MIN_SIDE`] is upscaled to, keeping its shape
/// within [`MAX_SIDE`]; `None` when both sides are long enough.
fn upscaled_size(w: u32, h: u32) -> Option<(u32, u32)> {
    if w.min(h) >= MIN_SIDE {
        return None;
    }
    let scale = f64::from(MIN_SIDE) / f64::from(w.min(h));
    Some((
        ((f64::from(w) * scale).ceil() as u32).clamp(MIN_SIDE, MAX_SIDE),
        ((f64::from(h) * scale).ceil() as u32).clamp(MIN_SIDE, MAX_SIDE),
    ))
}

/// The picture within the sides the services read: a huge one scaled down, a tiny one up.
fn fit_sides(img: &mut DynamicImage, changes: &mut Vec<String>) {
    let (iw, ih) = (img.width(), img.height());
    if iw.max(ih) > MAX_SIDE {
        // `thumbnail` scales in one pass; `resize` would first build a float copy of the whole
        // width at the new height (over 1 GB for a 10,000 px image).
        *img = img.thumbnail(MAX_SIDE, MAX_SIDE);
        changes.push(format!(
            "scaled down from {iw}×{ih} to {}×{} (at most {MAX_SIDE} px a side)",
            img.width(),
            img.height()
        ));
    }
    let (iw, ih) = (img.width(), img.height());
    if let Some((nw, nh)) = upscaled_size(iw, ih) {
        *img = img.resize_exact(nw, nh, image::imageops::FilterType::Nearest);
        changes.push(format!(
            "upscaled from {iw}×{ih} to {nw}×{nh} (Rekognition reads at least {MIN_SIDE} px a side)"
        ));
    }
}

/// Whether the upload itself can be sent: nothing changed, one frame, a type the services
/// take, and light enough.
fn is_passthrough(changes: &[String], animated: bool, format: Format, len: usize) -> bool {
    changes.is_empty()
        && !animated
        && matches!(format, Format::Png | Format::Jpeg)
        && len <= MAX_PREPARED_BYTES
}

/// Check and prepare an upload. `extension` is the key's; the bytes must be what it says.
pub fn prepare(bytes: &[u8], extension: &str) -> Result<Prepared, String> {
    let format = sniff(bytes)?;
    check_named(format, extension)?;
    let (w, h, mut img, orientation) = decode(bytes, format)?;
    let animated = is_animated(bytes, format);
    let mut changes = conversion_notes(format, animated);
    turn_upright(&mut img, orientation, &mut changes);
    if format == Format::Jpeg && jpeg_components(bytes) == Some(4) {
        // Decoded to RGB already; the bytes themselves are CMYK, which not every reader takes.
        changes.push("CMYK JPEG converted to RGB".to_string());
    }
    fit_sides(&mut img, &mut changes);
    let passthrough = is_passthrough(&changes, animated, format, bytes.len());
    let (out_format, out) = if passthrough {
        (format, bytes.to_vec())
    } else {
        encode_within(&mut img, format, &mut changes)?
    };
    Ok(Prepared {
        original_format: format,
        original_width: w,
        original_height: h,
        format: out_format,
        width: img.width(),
        height: img.height(),
        bytes: out,
        pixels: img,
        unchanged: passthrough,
        changes,
        animated,
    })
}

/// The number of colour components in a JPEG's frame header (4 for CMYK and YCCK), read from
/// the markers without decoding; `None` when no frame header is found.
fn jpeg_components(bytes: &[u8]) -> Option<u8> {
    let mut i = 2; // past SOI
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        match marker {
            0xFF => i += 1, // fill byte
            0x01 | 0xD0..=0xD8 => i += 2,
            // SOF0–SOF15, except DHT (C4), JPG (C8) and DAC (CC): length, precision, height,
            // width, then the component count.
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                return bytes.get(i + 9).copied()
            }
            0xDA => return None, // scan data before any frame header
            _ => i += 2 + usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]])),
        }
    }
    None
}

/// PNG (JPEG for photos, or when PNG is too heavy), scaled down until it fits
/// [`MAX_PREPARED_BYTES`].
fn encode_within(
    img: &mut DynamicImage,
    source: Format,
    changes: &mut Vec<String>,
) -> Result<(Format, Vec<u8>), String> {
    let encode = |img: &DynamicImage, f: Format| -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        match f {
            Format::Jpeg => {
                let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
                let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88);
                rgb.write_with_encoder(enc)
            }
            _ => img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png),
        }
        .map_err(|e| format!("re-encoding as {} failed: {e}", f.as_str()))?;
        Ok(out)
    };
    let mut format = if source == Format::Jpeg {
        Format::Jpeg
    } else {
        Format::Png
    };
    let mut out = encode(img, format)?;
    if out.len() > MAX_PREPARED_BYTES && format == Format::Png {
        format = Format::Jpeg;
        out = encode(img, format)?;
        changes.push("re-encoded as JPEG to fit the services' size limits".into());
    }
    while out.len() > MAX_PREPARED_BYTES {
        let (w, h) = (img.width(), img.height());
        let scale = (MAX_PREPARED_BYTES as f64 / out.len() as f64).sqrt() * 0.9;
        let (nw, nh) = (
            ((f64::from(w) * scale) as u32).max(MIN_SIDE),
            ((f64::from(h) * scale) as u32).max(MIN_SIDE),
        );
        if (nw, nh) == (w, h) {
            return Err(format!(
                "the image cannot be brought under {MAX_PREPARED_BYTES} bytes"
            ));
        }
        *img = img.thumbnail(nw, nh);
        out = encode(img, format)?;
        changes.push(format!(
            "scaled down from {w}×{h} to {}×{} to fit {:.2} MB",
            img.width(),
            img.height(),
            MAX_PREPARED_BYTES as f64 / 1e6
        ));
    }
    Ok((format, out))
}

/// A plain grey PNG of `w` × `h`, for tests and fixtures.
pub fn blank_png<W: std::io::Write + std::io::Seek>(w: u32, h: u32, out: &mut W) {
    // Encoding a small in-memory image cannot fail; a failure leaves `out` short, which the
    // caller's decode then reports.
    let _ = DynamicImage::new_rgb8(w, h).write_to(out, image::ImageFormat::Png);
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .expect("encode");
        out
    }

    fn encoded(img: DynamicImage, f: image::ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), f).expect("encode");
        out
    }

    #[test]
    fn a_png_of_a_fair_size_passes_unchanged() {
        let bytes = png(320, 200);
        let p = prepare(&bytes, "png").expect("prepared");
        assert!(p.unchanged);
        assert_eq!((p.width, p.height, p.format), (320, 200, Format::Png));
        assert_eq!(p.bytes, bytes);
        assert!(p.changes.is_empty());
    }

    #[test]
    fn gif_and_webp_become_png_and_tiny_images_are_upscaled() {
        let rgba =
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(100, 90, Rgba([200, 10, 10, 255])));
        let gif = encoded(rgba.clone(), image::ImageFormat::Gif);
        let p = prepare(&gif, "gif").expect("gif");
        assert_eq!(p.format, Format::Png);
        assert!(!p.unchanged);
        assert!(p.changes[0].contains("first frame"), "{:?}", p.changes);
        assert_eq!(sniff(&p.bytes), Ok(Format::Png));

        let one = png(1, 1);
        let p = prepare(&one, "png").expect("1x1");
        assert_eq!((p.width, p.height), (80, 80));
        assert!(p.changes.iter().any(|c| c.contains("upscaled from 1×1")));
        let p = prepare(&png(40, 200), "png").expect("40 px wide");
        assert_eq!((p.width, p.height), (80, 400));
    }

    #[test]
    fn an_animated_gif_is_checked_on_its_first_frame_and_says_so() {
        use image::{codecs::gif::GifEncoder, Delay, Frame};
        let mut out = Vec::new();
        {
            let mut enc = GifEncoder::new(&mut out);
            for shade in [10u8, 240] {
                let frame = Frame::from_parts(
                    RgbaImage::from_pixel(100, 100, Rgba([shade, shade, shade, 255])),
                    0,
                    0,
                    Delay::from_numer_denom_ms(100, 1),
                );
                enc.encode_frame(frame).expect("frame");
            }
        }
        let p = prepare(&out, "gif").expect("prepared");
        assert!(p.animated);
        assert!(
            p.changes[0].contains("only the first frame"),
            "{:?}",
            p.changes
        );
        let still = encoded(
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(100, 100, Rgba([1, 2, 3, 255]))),
            image::ImageFormat::Gif,
        );
        assert!(!prepare(&still, "gif").expect("still").animated);
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events/images")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn a_cmyk_jpeg_is_sent_as_rgb() {
        let cmyk = fixture("cmyk-photo.jpg");
        assert_eq!(jpeg_components(&cmyk), Some(4));
        let p = prepare(&cmyk, "jpg").expect("prepared");
        assert!(
            p.changes.iter().any(|c| c.contains("CMYK")),
            "{:?}",
            p.changes
        );
        assert!(!p.unchanged);
        assert_eq!(p.format, Format::Jpeg);
        assert_eq!(jpeg_components(&p.bytes), Some(3));
        assert_eq!((p.width, p.height), (160, 120));
        // An RGB JPEG passes unchanged.
        let rgb = encoded(
            DynamicImage::ImageRgb8(RgbImage::from_pixel(120, 90, Rgb([9, 99, 199]))),
            image::ImageFormat::Jpeg,
        );
        assert_eq!(jpeg_components(&rgb), Some(3));
        assert!(prepare(&rgb, "jpeg").expect("prepared").unchanged);
        // Marker soup never panics.
        for junk in [
            &[0xFF, 0xD8][..],
            &[0xFF, 0xD8, 0xFF],
            &[0xFF, 0xD8, 0xFF, 0xC0, 0xFF],
        ] {
            assert_eq!(jpeg_components(junk), None);
        }
    }

    #[test]
    fn a_photo_stored_sideways_is_turned_upright() {
        // Stored 200×100 with EXIF orientation 6: shown (and checked) 100×200.
        let p = prepare(&fixture("exif-rotated.jpg"), "jpg").expect("prepared");
        assert_eq!((p.original_width, p.original_height), (200, 100));
        assert_eq!((p.width, p.height), (100, 200));
        assert!(
            p.changes.iter().any(|c| c.contains("EXIF")),
            "{:?}",
            p.changes
        );
        // The red bar stored along the top now runs down the right-hand side.
        let rgb = p.pixels.to_rgb8();
        assert!(rgb.get_pixel(95, 100)[0] > 150 && rgb.get_pixel(95, 100)[1] < 100);
        assert!(rgb.get_pixel(5, 100)[1] > 200);
    }

    #[test]
    fn a_truncated_jpeg_is_refused_or_read_never_a_panic() {
        let full = encoded(
            DynamicImage::ImageRgb8(RgbImage::from_fn(300, 300, |x, y| {
                Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
            })),
            image::ImageFormat::Jpeg,
        );
        for cut in [full.len() / 2, 40, 3] {
            match prepare(&full[..cut], "jpg") {
                Ok(p) => assert_eq!(p.original_width, 300),
                Err(e) => assert!(e.to_lowercase().contains("jpeg"), "{cut}: {e}"),
            }
        }
    }

    #[test]
    fn a_20_mb_photo_is_scaled_down_to_what_the_services_take() {
        // Noise does not compress: 2,900 × 2,400 at quality 100 is a 20 MB-class JPEG.
        let mut seed = 0x2545_f491_u32;
        let noisy = RgbImage::from_fn(2900, 2400, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let [a, b, c, _] = seed.to_le_bytes();
            Rgb([a, b, c])
        });
        let mut big = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut big, 100)
            .encode_image(&noisy)
            .expect("encode");
        assert!(big.len() > 15_000_000, "{} bytes", big.len());
        let p = prepare(&big, "jpg").expect("prepared");
        assert!(p.bytes.len() <= MAX_PREPARED_BYTES, "{}", p.bytes.len());
        assert_eq!(p.format, Format::Jpeg);
        assert!(
            p.changes.iter().any(|c| c.contains("to fit")),
            "{:?}",
            p.changes
        );
        assert!(p.width < 2900 && p.width >= MIN_SIDE);
    }

    #[test]
    fn hostile_and_mislabelled_files_name_their_problem() {
        let cases: Vec<(Vec<u8>, &str, &str)> = vec![
            (Vec::new(), "png", "empty"),
            (
                b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
                "png",
                "SVG",
            ),
            (
                b"\x89PNG\r\n\x1a\n\x00\x00garbage-after-the-signature".to_vec(),
                "png",
                "png",
            ),
            (png(300, 200)[..400].to_vec(), "png", "png"),
            (png(300, 200), "jpg", "named .jpg but its bytes are PNG"),
            (b"%PDF-1.7 ...".to_vec(), "png", "PDF"),
        ];
        for (bytes, ext, want) in cases {
            let e = prepare(&bytes, ext).expect_err(want);
            assert!(e.contains(want), "{want}: {e}");
        }
    }

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

    #[test]
    fn a_decompression_bomb_is_refused_before_decoding() {
        // A valid PNG header declaring 50,000 × 50,000 pixels, and no pixel data.
        let mut bytes = png(2, 2);
        bytes[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&50_000u32.to_be_bytes());
        // The IHDR chunk's CRC covers its type and data (bytes 12..29).
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = prepare(&bytes, "png").expect_err("bomb");
        assert!(e.contains("50000×50000"), "{e}");
        assert!(e.contains("megapixel limit"), "{e}");
    }

    #[test]
    fn a_deep_picture_over_the_memory_budget_is_refused_before_decoding() {
        // A valid 16-bit RGBA PNG header declaring 8,000 × 8,000 (64 MP, within the pixel
        // cap, but 512 MB decoded), and no pixel data.
        let mut bytes = png(2, 2);
        bytes[16..20].copy_from_slice(&8_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&8_000u32.to_be_bytes());
        bytes[24] = 16; // bit depth
        bytes[25] = 6; // RGBA
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = prepare(&bytes, "png").expect_err("over the budget");
        assert!(e.contains("8000×8000") && e.contains("512 MB"), "{e}");
        assert!(e.contains("256 MB budget"), "{e}");
    }

    #[test]
    fn declared_sizes_and_names_are_checked_before_decoding() {
        assert!(check_named(Format::Jpeg, "jpeg").is_ok());
        assert!(
            check_named(Format::Png, "bin").is_ok(),
            "an unknown name says nothing"
        );
        let e = check_named(Format::Gif, "png").expect_err("mislabelled");
        assert_eq!(e, "the file is named .png but its bytes are GIF");
        assert!(
            check_declared(8_000, 8_000).is_ok(),
            "64 MP is the limit itself"
        );
        assert!(check_declared(8_001, 8_000).is_err());
        assert_eq!(
            check_declared(0, 10).expect_err("empty"),
            "the image declares 0×10 pixels"
        );
        assert!(check_decode_budget(8_000, 8_000, image::ColorType::Rgba8).is_ok());
        assert!(check_decode_budget(8_000, 8_000, image::ColorType::Rgba16).is_err());
    }

    #[test]
    fn tiny_sides_are_upscaled_keeping_the_shape_within_the_limits() {
        assert_eq!(upscaled_size(80, 80), None);
        assert_eq!(upscaled_size(1, 1), Some((80, 80)));
        assert_eq!(upscaled_size(40, 200), Some((80, 400)));
        assert_eq!(upscaled_size(10, 7_000), Some((80, MAX_SIDE)), "clamped");
        assert!(is_passthrough(&[], false, Format::Jpeg, 1_000));
        assert!(!is_passthrough(&[], false, Format::Webp, 1_000));
        assert!(!is_passthrough(&[], true, Format::Png, 1_000));
        assert!(!is_passthrough(
            &[],
            false,
            Format::Png,
            MAX_PREPARED_BYTES + 1
        ));
        assert_eq!(
            conversion_notes(Format::Gif, true),
            vec![
                "animated: only the first frame was checked; a person should look at the rest"
                    .to_string(),
                "GIF: the first frame, as PNG".to_string()
            ]
        );
        assert!(conversion_notes(Format::Png, false).is_empty());
    }

    #[test]
    fn heavy_images_are_scaled_to_fit_the_services() {
        // Noise does not compress: a 1,400 × 1,400 PNG of it is ~5.9 MB.
        let mut seed = 7u32;
        let img = RgbImage::from_fn(1_400, 1_400, |_, _| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let b = seed.to_le_bytes();
            Rgb([b[1], b[2], b[3]])
        });
        let bytes = encoded(DynamicImage::ImageRgb8(img), image::ImageFormat::Png);
        assert!(bytes.len() > MAX_PREPARED_BYTES);
        let p = prepare(&bytes, "png").expect("prepared");
        assert!(p.bytes.len() <= MAX_PREPARED_BYTES, "{}", p.bytes.len());
        assert!(!p.unchanged);
        assert!(!p.changes.is_empty());
    }
}
