//! Pictures and speech as the services take them: image preparation (what the bytes are, safe
//! decoding, a copy Rekognition and Bedrock accept) and Transcribe's transcript format.

pub mod picture;
pub mod transcript;
