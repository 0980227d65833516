//! End-to-end helpers.

pub mod wine;
