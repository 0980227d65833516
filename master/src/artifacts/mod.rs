//! Files builds produce, kept with the build: streamed in by workers after
//! a step (`intake`, never through the scheduler actor), held in an object
//! store (`store`: a directory under the state dir by default), listed and
//! served with byte ranges by the API.

mod error;
mod intake;
mod path;
mod range;
mod s3;
mod store;
mod upload;

pub use error::ArtifactError;
pub use intake::Intake;
pub use path::{check_path, url_path};
pub use range::{parse_range, ByteRange};
pub use store::{ArtifactStore, Begin};
pub use upload::Upload;
