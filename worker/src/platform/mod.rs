//! What differs between operating systems: building a shell command,
//! spawning a step as the root of its own process tree, killing that tree,
//! and reading an exit status. Each OS file exposes the same small API.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

// Compiled everywhere so its tests run on every CI host.
mod windows_args;
