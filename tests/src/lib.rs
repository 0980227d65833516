//! End-to-end helpers.
pub mod sshd;
