//! Ports: the narrow interfaces stages need from the outside world, by concern. Adapters live
//! in `moderation-aws` (SDK) and `moderation-offline` (embedded defaults); tests use fakes.

mod audio;
mod image;
mod policy;
mod review;
mod store;
mod text;

pub use audio::*;
pub use image::*;
pub use policy::*;
pub use review::*;
pub use store::*;
pub use text::*;

/// Told how far a long stage has got (modctl's progress bar); the Lambdas pass none.
pub trait Progress: Send + Sync {
    /// `n` more messages of the upload screened (scored, from cache, or settled by rules).
    fn screened(&self, n: u64);
}
