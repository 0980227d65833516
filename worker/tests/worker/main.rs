//! burst-worker against a fake master: handshake, steps, killing process
//! trees, backpressure, reconnecting and exit codes. Unix only (the steps
//! need `sh` and `sleep`).
#![cfg(unix)]

mod backpressure;
mod exit_codes;
mod handshake;
mod kill;
mod reconnect;
mod steps;
mod support;
