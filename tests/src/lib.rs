//! End-to-end helpers.

pub mod docker_support;
pub mod wine;
