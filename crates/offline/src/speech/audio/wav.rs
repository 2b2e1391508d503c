//! WAV files. PCM (8 to 32-bit) and 32-bit float go through `hound`; G.711 μ-law and A-law
//! (telephony and some voice-chat exports) are decoded here; a header written by a stream (a
//! data size of 0 or 0xFFFFFFFF, as a recorder piping its output leaves) is read to the end of
//! the file. Any other format is refused by name. Frames go straight into a [`Mixdown`].

use std::io::{Cursor, Read};

use super::mixdown::{too_long, Decoded, Mixdown};
use super::{undecodable, unusable, Error, MAX_INPUT_RATE, MIN_INPUT_RATE};

const FMT: &str = "wav";
const PCM: u16 = 1;
const FLOAT: u16 = 3;
const ALAW: u16 = 6;
const MULAW: u16 = 7;
const EXTENSIBLE: u16 = 0xFFFE;

/// What the RIFF chunks say, read without trusting them further than the bytes go.
struct Layout {
    tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    block_align: u16,
    data_start: usize,
    /// The data's length: as declared, or to the end of the file for a streamed header.
    data_len: usize,
    declared: u32,
    /// Where the data chunk's size field is.
    size_at: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The `fmt ` and `data` chunks of a RIFF/WAVE file; `None` when they cannot be found (then
/// `hound` says what is wrong).
fn layout(b: &[u8]) -> Option<Layout> {
    if b.get(..4)? != b"RIFF" || b.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut pos = 12usize;
    let mut fmt: Option<(u16, u16, u32, u16, u16)> = None;
    while pos.checked_add(8)? <= b.len() {
        let id = &b[pos..pos + 4];
        let size = u32_at(b, pos + 4)?;
        let start = pos + 8;
        if id == b"fmt " {
            let mut tag = u16_at(b, start)?;
            if tag == EXTENSIBLE {
                // The sub-format GUID starts with the real tag.
                tag = u16_at(b, start + 24)?;
            }
            fmt = Some((
                tag,
                u16_at(b, start + 2)?,
                u32_at(b, start + 4)?,
                u16_at(b, start + 14)?,
                u16_at(b, start + 12)?,
            ));
        } else if id == b"data" {
            let (tag, channels, rate, bits, block_align) = fmt?;
            let available = b.len() - start;
            let data_len = match size {
                0 | u32::MAX => available,
                n => (n as usize).min(available),
            };
            return Some(Layout {
                tag,
                channels,
                rate,
                bits,
                block_align,
                data_start: start,
                data_len,
                declared: size,
                size_at: pos + 4,
            });
        }
        let padded = usize::try_from(size).ok()?.checked_add(size as usize & 1)?;
        pos = start.checked_add(padded)?;
    }
    None
}

fn tag_name(tag: u16) -> &'static str {
    match tag {
        0x0002 => "Microsoft ADPCM",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0040 => "G.721 ADPCM",
        0x0050 => "MPEG audio",
        0x0055 => "MPEG Layer 3",
        _ => "an unknown codec",
    }
}

/// Decode a WAV file to 16 kHz, refusing more than `max_seconds`.
pub(super) fn decode(bytes: &[u8], max_seconds: u64) -> Result<Decoded, Error> {
    if bytes.is_empty() {
        return Err(unusable(FMT, "the file is empty"));
    }
    let Some(l) = layout(bytes) else {
        return from_hound(hound_reader(bytes)?, max_seconds, None);
    };
    let frames = l.data_len / usize::from(l.block_align.max(1));
    let seconds = frames as f64 / f64::from(l.rate.max(1));
    match l.tag {
        ALAW | MULAW => g711(bytes, &l, max_seconds),
        PCM | FLOAT if matches!(l.declared, 0 | u32::MAX) => {
            // A streamed header: hound is given the real length.
            let mut head = bytes[..l.data_start].to_vec();
            let whole = (frames * usize::from(l.block_align)) as u32;
            head[l.size_at..l.size_at + 4].copy_from_slice(&whole.to_le_bytes());
            let riff = (head.len() as u32 - 8).saturating_add(whole);
            head[4..8].copy_from_slice(&riff.to_le_bytes());
            let data = &bytes[l.data_start..l.data_start + whole as usize];
            let reader =
                hound::WavReader::new(Cursor::new(head).chain(data)).map_err(undecodable(FMT))?;
            from_hound(reader, max_seconds, Some(seconds))
        }
        PCM | FLOAT => from_hound(hound_reader(bytes)?, max_seconds, Some(seconds)),
        tag => Err(unusable(
            FMT,
            format!(
                "WAV format tag 0x{tag:04X} ({}) is not supported (supported: PCM, IEEE \
                 float, μ-law, A-law)",
                tag_name(tag)
            ),
        )),
    }
}

fn hound_reader(bytes: &[u8]) -> Result<hound::WavReader<Cursor<&[u8]>>, Error> {
    hound::WavReader::new(Cursor::new(bytes)).map_err(undecodable(FMT))
}

fn check_rate(rate: u32) -> Result<(), Error> {
    if (MIN_INPUT_RATE..=MAX_INPUT_RATE).contains(&rate) {
        return Ok(());
    }
    Err(unusable(
        FMT,
        format!("sample rate {rate} Hz is outside {MIN_INPUT_RATE}..={MAX_INPUT_RATE} Hz"),
    ))
}

/// PCM and float samples through hound. `seconds`: the length the bytes hold, when known.
fn from_hound<R: Read>(
    mut reader: hound::WavReader<R>,
    max_seconds: u64,
    seconds: Option<f64>,
) -> Result<Decoded, Error> {
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    if channels == 0 {
        return Err(unusable(FMT, "the header declares 0 channels"));
    }
    check_rate(spec.sample_rate)?;
    let seconds =
        seconds.unwrap_or_else(|| f64::from(reader.duration()) / f64::from(spec.sample_rate));
    if seconds > max_seconds as f64 {
        return Err(too_long(FMT, Some(seconds), max_seconds));
    }
    let mut mix = Mixdown::new(FMT, spec.sample_rate, channels, max_seconds);
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => feed(
            reader
                .samples::<f32>()
                .map(|s| s.map(|v| if v.is_finite() { v } else { 0.0 })),
            channels,
            &mut mix,
        )?,
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / f64::from(1u32 << (bits - 1));
            feed(
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| (f64::from(v) * scale) as f32)),
                channels,
                &mut mix,
            )?
        }
        (format, bits) => {
            return Err(unusable(
                FMT,
                format!("{bits}-bit {format:?} samples are not supported"),
            ))
        }
    }
    mix.finish()
}

/// Samples into frames into the mix, up to the end of the data or a truncation.
fn feed(
    samples: impl Iterator<Item = hound::Result<f32>>,
    channels: usize,
    mix: &mut Mixdown,
) -> Result<(), Error> {
    let mut frame = Vec::with_capacity(channels);
    let mut read = 0u64;
    for s in samples {
        match s {
            Ok(v) => {
                read += 1;
                frame.push(v);
                if frame.len() == channels {
                    mix.push(&frame)?;
                    frame.clear();
                }
            }
            // Reading from memory fails only where the bytes end.
            Err(hound::Error::IoError(e)) => {
                tracing::warn!(
                    samples = read,
                    error = %e,
                    "WAV data ends before the length in its header; using what is there"
                );
                break;
            }
            Err(e) => return Err(undecodable(FMT)(e)),
        }
    }
    Ok(())
}

/// G.711 μ-law: one byte a sample, to [-1, 1].
pub(super) fn mulaw(code: u8) -> f32 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let magnitude = ((i32::from(u & 0x0F) << 3) + 0x84) << exponent;
    let v = magnitude - 0x84;
    (if u & 0x80 != 0 { -v } else { v }) as f32 / 32_768.0
}

/// G.711 A-law: one byte a sample, to [-1, 1].
pub(super) fn alaw(code: u8) -> f32 {
    let a = code ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i32::from(a & 0x0F);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as f32 / 32_768.0
}

fn g711(bytes: &[u8], l: &Layout, max_seconds: u64) -> Result<Decoded, Error> {
    let name = if l.tag == MULAW { "μ-law" } else { "A-law" };
    let channels = usize::from(l.channels);
    if channels == 0 {
        return Err(unusable(FMT, "the header declares 0 channels"));
    }
    if l.bits != 8 {
        return Err(unusable(
            FMT,
            format!(
                "{name} with {} bits a sample is not supported (G.711 is 8)",
                l.bits
            ),
        ));
    }
    check_rate(l.rate)?;
    let data = &bytes[l.data_start..l.data_start + l.data_len];
    let seconds = (data.len() / channels) as f64 / f64::from(l.rate);
    if seconds > max_seconds as f64 {
        return Err(too_long(FMT, Some(seconds), max_seconds));
    }
    let decode = if l.tag == MULAW { mulaw } else { alaw };
    let mut mix = Mixdown::new(FMT, l.rate, channels, max_seconds);
    let mut frame = vec![0f32; channels];
    for codes in data.chunks_exact(channels) {
        for (s, c) in frame.iter_mut().zip(codes) {
            *s = decode(*c);
        }
        mix.push(&frame)?;
    }
    mix.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RIFF/WAVE file: a 16-byte `fmt ` chunk and a data chunk declaring `declared` bytes.
    fn riff(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8], declared: u32) -> Vec<u8> {
        let align = channels * bits.div_ceil(8);
        let mut b = b"RIFF".to_vec();
        b.extend((36 + data.len() as u32).to_le_bytes());
        b.extend(b"WAVEfmt ");
        b.extend(16u32.to_le_bytes());
        b.extend(tag.to_le_bytes());
        b.extend(channels.to_le_bytes());
        b.extend(rate.to_le_bytes());
        b.extend((rate * u32::from(align)).to_le_bytes());
        b.extend(align.to_le_bytes());
        b.extend(bits.to_le_bytes());
        b.extend(b"data");
        b.extend(declared.to_le_bytes());
        b.extend(data);
        b
    }

    fn tone(rate: u32, n: usize) -> impl Iterator<Item = f32> {
        (0..n).map(move |i| 0.5 * (std::f32::consts::TAU * 440.0 * i as f32 / rate as f32).sin())
    }

    fn nearest(decode: fn(u8) -> f32, v: f32) -> u8 {
        (0..=255u8)
            .min_by(|a, b| (decode(*a) - v).abs().total_cmp(&(decode(*b) - v).abs()))
            .unwrap_or(0)
    }

    fn rms(s: &[f32]) -> f32 {
        (s.iter().map(|v| v * v).sum::<f32>() / s.len() as f32).sqrt()
    }

    #[test]
    fn g711_codes_decode_to_their_levels() {
        assert_eq!(mulaw(0xFF), 0.0);
        assert!((mulaw(0x80) - 32_124.0 / 32_768.0).abs() < 1e-6);
        assert!((mulaw(0x00) + 32_124.0 / 32_768.0).abs() < 1e-6);
        assert!((alaw(0xAA) - 32_256.0 / 32_768.0).abs() < 1e-6);
        assert!((alaw(0x2A) + 32_256.0 / 32_768.0).abs() < 1e-6);
        assert!((alaw(0xD5) - 8.0 / 32_768.0).abs() < 1e-6);
    }

    #[test]
    fn mulaw_and_alaw_files_decode_to_the_tone() {
        for (tag, law) in [(MULAW, mulaw as fn(u8) -> f32), (ALAW, alaw)] {
            let data: Vec<u8> = tone(8_000, 8_000).map(|v| nearest(law, v)).collect();
            let bytes = riff(tag, 1, 8_000, 8, &data, data.len() as u32);
            let d = decode(&bytes, 3_600).expect("decodes");
            assert!((d.mid.len() as i64 - 16_000).abs() <= 2, "{}", d.mid.len());
            assert!((rms(&d.mid[1_000..15_000]) - 0.3536).abs() < 0.01);
        }
    }

    #[test]
    fn a_streamed_header_is_read_to_the_end_of_the_file() {
        let data: Vec<u8> = tone(16_000, 1_600)
            .flat_map(|v| ((v * 32_767.0) as i16).to_le_bytes())
            .collect();
        for declared in [0, u32::MAX] {
            let mut bytes = riff(PCM, 1, 16_000, 16, &data, declared);
            bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
            let d = decode(&bytes, 3_600).expect("decodes");
            assert_eq!(d.mid.len(), 1_600, "declared {declared:#x}");
        }
    }

    #[test]
    fn other_codecs_and_long_recordings_are_refused_by_name() {
        let err = decode(&riff(0x0002, 1, 8_000, 4, &[0; 64], 64), 3_600).expect_err("adpcm");
        assert!(
            err.to_string().contains("0x0002 (Microsoft ADPCM)"),
            "{err}"
        );
        let err = decode(&riff(MULAW, 1, 8_000, 16, &[0; 64], 64), 3_600).expect_err("bits");
        assert!(err.to_string().contains("μ-law with 16 bits"), "{err}");
        // 130 s of 1 kHz μ-law against a 2-minute limit: refused from the header.
        let long = riff(MULAW, 1, 1_000, 8, &vec![0xFF; 130_000], 130_000);
        let err = decode(&long, 120).expect_err("too long");
        assert!(err.to_string().contains("2.2 min long"), "{err}");
        let pcm: Vec<u8> = vec![0; 260_000];
        let err = decode(&riff(PCM, 1, 1_000, 16, &pcm, 260_000), 120).expect_err("too long");
        assert!(err.to_string().contains("2.2 min long"), "{err}");
    }
}
