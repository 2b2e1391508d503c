//! Decoding a recording to what Whisper listens to: 16 kHz `f32` samples in [-1, 1].
//!
//! WAV (PCM 8 to 32-bit integer, 32-bit float, G.711 μ-law and A-law, any sample rate and
//! channel count, streamed headers) is decoded in `wav`, FLAC, Ogg Vorbis and MP3 with
//! `symphonia`; `mixdown` turns the channels into the mid signal and, where it carries sound
//! the mid does not (speech cancelled by an inverted channel), the side signal, resampled a
//! block at a time with `rubato`'s FFT resampler, which filters out what lies above the new
//! Nyquist frequency instead of aliasing it into the speech band. A recording over
//! [`MAX_SECONDS`] is refused before it fills memory. Anything else is refused with an error
//! that says what was wrong.

mod compressed;
mod mixdown;
mod wav;

pub use mixdown::{merge_channels, Decoded, MAX_SECONDS};

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::error::Error;

/// The sample rate Whisper expects.
pub const SAMPLE_RATE: u32 = 16_000;

/// Sample rates accepted in input files. Bounds the resampler's FFT sizes, which a corrupt
/// header claiming billions of samples per second would otherwise blow up.
pub const MIN_INPUT_RATE: u32 = 1_000;
pub const MAX_INPUT_RATE: u32 = 768_000;

/// The formats [`decode_mono_16k`] understands, by file extension.
pub const SUPPORTED_FORMATS: &[&str] = &["wav", "flac", "ogg", "mp3"];

fn unusable(format: &str, reason: impl Into<String>) -> Error {
    Error::AudioFormat {
        format: format.to_string(),
        reason: reason.into(),
    }
}

fn undecodable<E: std::error::Error + Send + Sync + 'static>(
    format: &str,
) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error::AudioDecode {
        format: format.to_string(),
        source: Box::new(e),
    }
}

/// The format the content announces by its magic bytes, if any.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.get(..4) == Some(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        Some("wav")
    } else if bytes.starts_with(b"fLaC") {
        Some("flac")
    } else if bytes.starts_with(b"OggS") {
        Some("ogg")
    } else if bytes.starts_with(b"ID3") || matches!(bytes, [0xFF, b, ..] if b & 0xE0 == 0xE0) {
        Some("mp3")
    } else {
        None
    }
}

/// Decode an encoded recording (`extension` as in the object key, e.g. `wav`, any case) into
/// 16 kHz mid and side signals. The content's magic bytes win over the extension.
pub fn decode_16k(bytes: &[u8], extension: &str) -> Result<Decoded, Error> {
    let ext = extension.trim_start_matches('.').to_ascii_lowercase();
    let named = match ext.as_str() {
        "wav" | "wave" => Some("wav"),
        "flac" => Some("flac"),
        "ogg" | "oga" => Some("ogg"),
        "mp3" => Some("mp3"),
        _ => None,
    };
    match sniff(bytes).or(named) {
        Some("wav") => wav::decode(bytes, MAX_SECONDS),
        Some(format) => compressed::decode(bytes, format, MAX_SECONDS),
        None => Err(unusable(
            &ext,
            format!(
                "unsupported audio format {ext:?} (supported: {})",
                SUPPORTED_FORMATS.join(", ")
            ),
        )),
    }
}

/// The mid signal alone: the channels averaged, at 16 kHz.
pub fn decode_mono_16k(bytes: &[u8], extension: &str) -> Result<Vec<f32>, Error> {
    decode_16k(bytes, extension).map(|d| d.mid)
}

/// Resample mono audio from `from` Hz to `to` Hz (band-limited, delay-compensated: the output
/// is aligned with the input and `len × to / from` samples long, rounded up).
pub fn resample(input: &[f32], from: u32, to: u32) -> Result<Vec<f32>, Error> {
    if from == to || input.is_empty() {
        return Ok(input.to_vec());
    }
    const FMT: &str = "pcm";
    let (from_hz, to_hz) = (from as usize, to as usize);
    let mut resampler =
        Fft::<f32>::new(from_hz, to_hz, 1024, 1, FixedSync::Input).map_err(undecodable(FMT))?;
    let adapter = InterleavedSlice::new(input, 1, input.len()).map_err(undecodable(FMT))?;
    let out = resampler
        .process_all(&adapter, input.len(), None)
        .map_err(undecodable(FMT))?;
    Ok(out.take_data())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// A WAV file in memory: `frames[i]` holds one sample per channel.
    pub(crate) fn wav_bytes(spec: hound::WavSpec, frames: &[Vec<f32>]) -> Vec<u8> {
        let mut cursor = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cursor, spec).expect("writer");
        for frame in frames {
            for &s in frame {
                match spec.sample_format {
                    hound::SampleFormat::Float => w.write_sample(s).expect("write"),
                    hound::SampleFormat::Int => {
                        let max = f64::from(1u32 << (spec.bits_per_sample - 1)) - 1.0;
                        w.write_sample((f64::from(s) * max).round() as i32)
                            .expect("write")
                    }
                }
            }
        }
        w.finalize().expect("finalize");
        cursor.into_inner()
    }

    fn sine(rate: u32, hz: f32, seconds: f32, amplitude: f32) -> Vec<f32> {
        let n = (rate as f32 * seconds) as usize;
        (0..n)
            .map(|i| amplitude * (std::f32::consts::TAU * hz * i as f32 / rate as f32).sin())
            .collect()
    }

    /// Frequency from upward zero crossings over the middle of the signal (edges skipped).
    fn frequency(samples: &[f32], rate: u32) -> f32 {
        let mid = &samples[samples.len() / 10..samples.len() * 9 / 10];
        let ups = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        ups as f32 * rate as f32 / mid.len() as f32
    }

    fn rms(samples: &[f32]) -> f32 {
        (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
    }

    #[test]
    fn stereo_8khz_int16_becomes_16khz_mono_with_the_same_pitch() {
        let tone = sine(8_000, 440.0, 1.0, 0.5);
        let frames: Vec<Vec<f32>> = tone.iter().map(|&s| vec![s, s]).collect();
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let pcm = decode_mono_16k(&wav_bytes(spec, &frames), "WAV").expect("decodes");
        assert!(
            (pcm.len() as i64 - 16_000).abs() <= 2,
            "{} samples for 1 s",
            pcm.len()
        );
        let f = frequency(&pcm, SAMPLE_RATE);
        assert!((f - 440.0).abs() < 3.0, "{f} Hz");
        // Amplitude kept: a 0.5 sine has RMS 0.354.
        let r = rms(&pcm[1_000..15_000]);
        assert!((r - 0.3536).abs() < 0.01, "rms {r}");
        // Aligned: the resampler's delay is compensated, so the sine starts rising at 0.
        let first_peak = pcm.iter().take(40).cloned().fold(f32::MIN, f32::max);
        assert!(
            first_peak > 0.3,
            "start of the tone is missing: {first_peak}"
        );
    }

    #[test]
    fn float_44k1_and_24bit_48k_resample_and_antialias() {
        for (rate, bits, format) in [
            (44_100, 32, hound::SampleFormat::Float),
            (48_000, 24, hound::SampleFormat::Int),
        ] {
            // 1 kHz survives; 7.9 kHz is just under the new Nyquist; 12 kHz must be filtered
            // out, not folded back to 4 kHz.
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: rate,
                bits_per_sample: bits,
                sample_format: format,
            };
            let one_k = sine(rate, 1_000.0, 0.5, 0.5);
            let frames: Vec<Vec<f32>> = one_k.iter().map(|&s| vec![s]).collect();
            let pcm = decode_mono_16k(&wav_bytes(spec, &frames), "wav").expect("decodes");
            assert!((pcm.len() as i64 - 8_000).abs() <= 2, "{}", pcm.len());
            assert!((frequency(&pcm, SAMPLE_RATE) - 1_000.0).abs() < 5.0);

            let high = sine(rate, 12_000.0, 0.5, 0.5);
            let frames: Vec<Vec<f32>> = high.iter().map(|&s| vec![s]).collect();
            let pcm = decode_mono_16k(&wav_bytes(spec, &frames), "wav").expect("decodes");
            let r = rms(&pcm[800..7_200]);
            assert!(r < 0.01, "{rate} Hz: 12 kHz aliased with rms {r}");
        }
    }

    #[test]
    fn channels_are_averaged_and_16khz_passes_through() {
        let spec = hound::WavSpec {
            channels: 3,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let frames = vec![vec![0.5, -0.5, 0.25]; 100];
        let pcm = decode_mono_16k(&wav_bytes(spec, &frames), "wav").expect("decodes");
        assert_eq!(pcm.len(), 100);
        assert!(
            pcm.iter().all(|&s| (s - 0.25 / 3.0).abs() < 1e-3),
            "{:?}",
            &pcm[..3]
        );
    }

    #[test]
    fn a_truncated_data_chunk_keeps_what_is_there() {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let bytes = wav_bytes(spec, &vec![vec![0.1]; 1_000]);
        let cut = &bytes[..bytes.len() - 501];
        let pcm = decode_mono_16k(cut, "wav").expect("decodes the first part");
        assert_eq!(pcm.len(), 749);
    }

    /// A FLAC file with verbatim (uncompressed) subframes: the simplest valid encoding.
    /// `frames[i]` holds one 16-bit sample per channel.
    fn flac_bytes(rate: u32, frames: &[Vec<i16>]) -> Vec<u8> {
        fn crc8(data: &[u8]) -> u8 {
            data.iter().fold(0u8, |mut crc, &b| {
                crc ^= b;
                for _ in 0..8 {
                    crc = if crc & 0x80 != 0 {
                        (crc << 1) ^ 0x07
                    } else {
                        crc << 1
                    };
                }
                crc
            })
        }
        fn crc16(data: &[u8]) -> u16 {
            data.iter().fold(0u16, |mut crc, &b| {
                crc ^= u16::from(b) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 {
                        (crc << 1) ^ 0x8005
                    } else {
                        crc << 1
                    };
                }
                crc
            })
        }
        const BLOCK: usize = 1_024;
        let channels = frames.first().map_or(1, Vec::len);
        let mut out = b"fLaC".to_vec();
        // STREAMINFO, the last metadata block.
        out.extend([0x80, 0, 0, 34]);
        out.extend((BLOCK as u16).to_be_bytes()); // min block size
        out.extend((BLOCK as u16).to_be_bytes()); // max block size
        out.extend([0; 6]); // frame sizes unknown
                            // 20 bits rate, 3 bits channels - 1, 5 bits bits-per-sample - 1, 36 bits total samples.
        let packed: u64 = (u64::from(rate) << 44)
            | (((channels - 1) as u64) << 41)
            | (15u64 << 36)
            | frames.len() as u64;
        out.extend(packed.to_be_bytes());
        out.extend([0; 16]); // MD5 unknown
        for (number, block) in frames.chunks(BLOCK).enumerate() {
            let number = u8::try_from(number).expect("fewer than 128 frames");
            assert!(number < 128);
            let mut frame = vec![0xFF, 0xF8]; // sync, fixed block size
                                              // Block size: 16-bit (size - 1) follows; sample rate from STREAMINFO.
            frame.push(0x70);
            // Independent channels, 16-bit samples.
            frame.push((((channels - 1) as u8) << 4) | 0x08);
            frame.push(number);
            frame.extend(((block.len() - 1) as u16).to_be_bytes());
            frame.push(crc8(&frame));
            for ch in 0..channels {
                frame.push(0x02); // verbatim subframe, no wasted bits
                for f in block {
                    frame.extend(f[ch].to_be_bytes());
                }
            }
            frame.extend(crc16(&frame).to_be_bytes());
            out.extend(frame);
        }
        out
    }

    #[test]
    fn flac_is_decoded_resampled_and_downmixed() {
        let tone = sine(44_100, 440.0, 1.0, 0.5);
        let frames: Vec<Vec<i16>> = tone
            .iter()
            .map(|&s| {
                let v = (s * 32_767.0) as i16;
                vec![v, v]
            })
            .collect();
        let bytes = flac_bytes(44_100, &frames);
        let pcm = decode_mono_16k(&bytes, "flac").expect("decodes");
        assert!((pcm.len() as i64 - 16_000).abs() <= 2, "{}", pcm.len());
        assert!((frequency(&pcm, SAMPLE_RATE) - 440.0).abs() < 3.0);
        assert!((rms(&pcm[1_000..15_000]) - 0.3536).abs() < 0.01);
        // Recognised by content under another name.
        assert_eq!(
            decode_mono_16k(&bytes, "bin").expect("sniffed").len(),
            pcm.len()
        );

        // Corruption: a damaged frame is skipped, garbage is an error, every prefix is safe.
        let mut damaged = bytes.clone();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0xFF;
        let _ = decode_mono_16k(&damaged, "flac");
        let err = decode_mono_16k(b"fLaC garbage that is not FLAC", "flac").expect_err("garbage");
        assert!(err.to_string().contains("flac"), "{err}");
        for cut in (0..bytes.len()).step_by(997) {
            let _ = decode_mono_16k(&bytes[..cut], "flac");
        }
    }

    #[test]
    fn undecodable_input_is_an_error_naming_the_problem() {
        let err = decode_mono_16k(b"", "wav").expect_err("empty");
        assert!(err.to_string().contains("empty"), "{err}");

        let err = decode_mono_16k(b"definitely not a RIFF header", "wav").expect_err("garbage");
        assert!(matches!(err, Error::AudioDecode { .. }), "{err}");
        assert!(std::error::Error::source(&err).is_some());

        let err = decode_mono_16k(b"\0\0\0\x18ftypmp42", "mp4").expect_err("format");
        assert!(
            err.to_string().contains("unsupported audio format \"mp4\""),
            "{err}"
        );

        // A WAV file under another extension is still decoded.
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 8,
            sample_format: hound::SampleFormat::Int,
        };
        let bytes = wav_bytes(spec, &[vec![0.5], vec![-0.5]]);
        assert_eq!(decode_mono_16k(&bytes, "bin").expect("sniffed").len(), 2);

        // A consistent header with a sample rate out of range.
        let fast = hound::WavSpec {
            sample_rate: 1_000_000,
            ..spec
        };
        let err = decode_mono_16k(&wav_bytes(fast, &[vec![0.0]]), "wav").expect_err("rate");
        assert!(err.to_string().contains("sample rate 1000000 Hz"), "{err}");

        // Headers that contradict themselves.
        for (at, value) in [(22, 0u32), (24, 4_000_000_000)] {
            let mut bad = bytes.clone();
            let width = if at == 22 { 2 } else { 4 };
            bad[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
            let err = decode_mono_16k(&bad, "wav").expect_err("bad header");
            assert!(matches!(err, Error::AudioDecode { .. }), "{err}");
        }

        // Every prefix of a valid file fails cleanly or decodes; none panics.
        for cut in 0..bytes.len() {
            let _ = decode_mono_16k(&bytes[..cut], "wav");
        }
    }
}
