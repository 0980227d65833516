//! End-to-end tests: real burst and burst-worker processes.

mod docker;
mod windows;
