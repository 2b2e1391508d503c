//! FLAC, Ogg Vorbis and MP3, decoded with symphonia and mixed down a buffer at a time.

use std::io::Cursor;

use symphonia::core::audio::GenericAudioBufferRef;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;

use super::mixdown::{Decoded, Mixdown};
use super::{undecodable, unusable, Error, MAX_INPUT_RATE, MIN_INPUT_RATE};

/// Decode FLAC, Ogg Vorbis or MP3 with symphonia to mono samples at the file's own rate.
/// Packets that fail to decode (corruption) are skipped, as players do; a stream in which none
/// decodes is an error.
pub(super) fn decode(
    bytes: &[u8],
    format: &'static str,
    max_seconds: u64,
) -> Result<Decoded, Error> {
    if bytes.is_empty() {
        return Err(unusable(format, "the file is empty"));
    }
    let mut reader = open(bytes, format)?;
    let (track_id, mut decoder) = audio_track(reader.as_ref(), format)?;
    let mut stream = StreamMix::new(format, max_seconds);
    while let Some(packet) = next_packet(reader.as_mut(), format)? {
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => stream.push(&buf)?,
            Err(SymError::DecodeError(_) | SymError::IoError(_)) => stream.skipped += 1,
            Err(e) => return Err(undecodable(format)(e)),
        }
    }
    stream.finish()
}

/// The container, probed with the format as a hint.
fn open<'a>(bytes: &'a [u8], format: &'static str) -> Result<Box<dyn FormatReader + 'a>, Error> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    hint.with_extension(format);
    symphonia::default::get_probe()
        .probe(
            &hint,
            source,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(undecodable(format))
}

/// The default audio track's id, and a decoder for it.
fn audio_track(
    reader: &dyn FormatReader,
    format: &'static str,
) -> Result<(u32, Box<dyn AudioDecoder>), Error> {
    let track = reader
        .default_track(TrackType::Audio)
        .ok_or_else(|| unusable(format, "the file has no audio track"))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| unusable(format, "the audio track has no codec parameters"))?;
    let decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(undecodable(format))?;
    Ok((track.id, decoder))
}

/// The next packet, or `None` at the end: of the file, of a chained stream's first part, or
/// of a file cut short (what was decoded is kept).
fn next_packet(
    reader: &mut dyn FormatReader,
    format: &'static str,
) -> Result<Option<Packet>, Error> {
    match reader.next_packet() {
        Ok(packet) => Ok(packet),
        Err(SymError::ResetRequired) => Ok(None),
        Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(undecodable(format)(e)),
    }
}

/// A mixdown for a stream at `rate` Hz, refused outside the rates the resampler takes.
fn start_mixdown(
    format: &'static str,
    rate: u32,
    channels: usize,
    max_seconds: u64,
) -> Result<Mixdown, Error> {
    if !(MIN_INPUT_RATE..=MAX_INPUT_RATE).contains(&rate) {
        return Err(unusable(
            format,
            format!("sample rate {rate} Hz is outside {MIN_INPUT_RATE}..={MAX_INPUT_RATE} Hz"),
        ));
    }
    Ok(Mixdown::new(format, rate, channels, max_seconds))
}

/// The decoded buffers of one stream, mixed down as they come. The first buffer with sound
/// fixes the stream's rate and channels.
struct StreamMix {
    format: &'static str,
    max_seconds: u64,
    /// The stream's rate and its mixdown, once a buffer had sound.
    mix: Option<(u32, Mixdown)>,
    /// One buffer's samples, interleaved; kept to reuse its allocation.
    interleaved: Vec<f32>,
    /// Packets that failed to decode.
    skipped: usize,
}

impl StreamMix {
    fn new(format: &'static str, max_seconds: u64) -> Self {
        StreamMix {
            format,
            max_seconds,
            mix: None,
            interleaved: Vec::new(),
            skipped: 0,
        }
    }

    fn push(&mut self, buf: &GenericAudioBufferRef<'_>) -> Result<(), Error> {
        let channels = buf.num_planes();
        let rate = buf.spec().rate();
        if channels == 0 || buf.frames() == 0 {
            return Ok(());
        }
        if self.mix.is_none() {
            let mixdown = start_mixdown(self.format, rate, channels, self.max_seconds)?;
            self.mix = Some((rate, mixdown));
        }
        let Some((stream_rate, mixdown)) = self.mix.as_mut() else {
            return Ok(());
        };
        if *stream_rate != rate {
            return Err(unusable(
                self.format,
                "the sample rate changes within the stream",
            ));
        }
        self.interleaved.resize(buf.samples_interleaved(), 0.0);
        buf.copy_to_slice_interleaved(&mut self.interleaved);
        for frame in self.interleaved.chunks_exact(channels) {
            mixdown.push(frame)?;
        }
        Ok(())
    }

    fn finish(self) -> Result<Decoded, Error> {
        let (skipped, format) = (self.skipped, self.format);
        if skipped > 0 {
            tracing::warn!(
                skipped,
                format,
                "audio packets that failed to decode were skipped"
            );
        }
        match self.mix {
            Some((_, mixdown)) => mixdown.finish(),
            None => Err(unusable(format, "no audio could be decoded")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_mixed_only_at_rates_the_resampler_takes() {
        let err = start_mixdown("flac", 500, 1, 60)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("sample rate 500 Hz is outside 1000..=768000 Hz")),
            "{err:?}"
        );
        assert!(start_mixdown("flac", MAX_INPUT_RATE + 1, 2, 60).is_err());
        assert!(start_mixdown("flac", 44_100, 2, 60).is_ok());
    }

    #[test]
    fn a_stream_with_no_sound_decoded_is_an_error() {
        let mut nothing = StreamMix::new("ogg", 60);
        nothing.skipped = 3;
        let err = nothing.finish().err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("no audio could be decoded")),
            "{err:?}"
        );
    }

    #[test]
    fn an_empty_file_is_refused_before_probing() {
        let err = decode(&[], "mp3", 60).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("the file is empty")),
            "{err:?}"
        );
    }
}
