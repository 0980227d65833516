//! Builders' caches: zstd-compressed tar archives a cache step saves and a
//! later build's restore step fetches, kept per builder (and branch) in the
//! artifacts' object store. Workers reach them through the `FetchCache` and
//! `PutCache` calls with a capability the step was given (`token.rs`).

mod store;
mod token;

pub use store::{CacheRecord, CacheStore, CacheUpload};
pub use token::CacheKeys;
