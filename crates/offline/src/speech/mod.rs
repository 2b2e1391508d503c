//! Speech: decoding recordings ([`audio`]), Whisper speech-to-text ([`whisper`]) and the
//! converter of its CTranslate2 weights ([`ct2`]), all with feature `whisper`; the offline
//! transcription jobs ([`transcription`]) and spoken test clips ([`samples`]).

#[cfg(feature = "whisper")]
pub mod audio;
#[cfg(feature = "whisper")]
pub mod ct2;
pub mod samples;
pub mod transcription;
#[cfg(feature = "whisper")]
pub mod whisper;
