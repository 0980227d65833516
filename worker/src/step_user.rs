//! Steps under another user than the worker's (Unix, the worker as root):
//! steps then cannot read the worker's memory, environment or launch token,
//! nor reach what is blocked for that user (EC2: the metadata service).
//! std drops the supplementary groups when root changes a child's uid.

use std::path::Path;

use anyhow::{bail, Result};

/// A resolved step user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Looks `name` up, and checks this process may start processes as it.
#[cfg(unix)]
pub fn resolve(name: &str) -> Result<StepUser> {
    use nix::unistd::{Uid, User};
    let user = match User::from_name(name) {
        Ok(Some(user)) => user,
        Ok(None) => bail!("failed to find step user {name:?} on this machine"),
        Err(e) => bail!("failed to look up step user {name:?}: {e}"),
    };
    let me = Uid::effective();
    if !me.is_root() && me != user.uid {
        bail!("failed to run steps as {name:?}: only a worker running as root can (this one runs as uid {me})");
    }
    Ok(StepUser {
        name: name.to_owned(),
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

#[cfg(not(unix))]
pub fn resolve(name: &str) -> Result<StepUser> {
    bail!("failed to run steps as {name:?}: a step user needs a Unix worker")
}

/// Starts the step as `user`.
#[cfg(unix)]
pub(crate) fn apply(cmd: &mut tokio::process::Command, user: &StepUser) {
    cmd.uid(user.uid).gid(user.gid);
}

#[cfg(not(unix))]
pub(crate) fn apply(_cmd: &mut tokio::process::Command, _user: &StepUser) {}

/// Gives `dir` and every directory between `build_dir` and it to `user`, so
/// the step can write where it runs.
#[cfg(unix)]
pub(crate) fn give(build_dir: &Path, dir: &Path, user: &StepUser) -> std::io::Result<()> {
    for path in dir.ancestors().take_while(|p| p.starts_with(build_dir)) {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))?;
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn give(_build_dir: &Path, _dir: &Path, _user: &StepUser) -> std::io::Result<()> {
    Ok(())
}
