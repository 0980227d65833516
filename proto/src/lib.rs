//! burst's wire protocol: the messages a worker and the master exchange over
//! one bidirectional gRPC stream (see `proto/burst/v1/worker.proto`).

/// Bumped on any incompatible change to the protocol. The master refuses a
/// worker whose version differs.
/// Version 2: steps outlive a session under a step lease, output is resumed
/// from an offset, results are acknowledged.
pub const PROTOCOL_VERSION: u32 = 2;

/// Generated code for package `burst.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs, rust_2018_idioms)]
    tonic::include_proto!("burst.v1");
}

pub use v1::*;
