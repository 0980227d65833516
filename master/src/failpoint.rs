//! Test-only crash points, compiled in only with the `failpoints` feature
//! (the e2e crate turns it on). `BURST_FAILPOINT=NAME:MARK` kills the master
//! with SIGKILL the first time it reaches point `NAME`, so a test can crash
//! it inside a window no timing could hit; the file `MARK` is created first,
//! so the restarted master (same environment) runs on.

/// The master's name for the point right after a step was sent.
pub const AFTER_DISPATCH: &str = "after_dispatch";

#[cfg(feature = "failpoints")]
pub fn crash_point(name: &str) {
    let Ok(spec) = std::env::var("BURST_FAILPOINT") else {
        return;
    };
    let Some((point, mark)) = spec.split_once(':') else {
        return;
    };
    if point != name || std::path::Path::new(mark).exists() {
        return;
    }
    if std::fs::write(mark, name).is_err() {
        return;
    }
    eprintln!("failpoint {name}: killing the master");
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn crash_point(_name: &str) {}
