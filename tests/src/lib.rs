//! End-to-end helpers.

pub mod docker_support;
