//! Local steps under another user: who that is, whether this master (and so
//! its workers) may start processes as them, and a workers' root outside the
//! owner-only state dir that the user can traverse.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::unistd::{Uid, User};

use super::RunAs;
use crate::ProviderError;

/// Looks `name` up in the user database.
pub fn resolve(name: &str) -> Result<RunAs, String> {
    match User::from_name(name) {
        Ok(Some(user)) => Ok(RunAs {
            name: name.to_owned(),
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }),
        Ok(None) => Err(format!("no such user {name:?} on this machine")),
        Err(e) => Err(format!("failed to look up user {name:?}: {e}")),
    }
}

/// Only root can start a process as another user.
pub fn check_can_switch(user: &RunAs) -> Result<(), ProviderError> {
    let me = Uid::effective();
    if me.is_root() || me.as_raw() == user.uid {
        return Ok(());
    }
    Err(ProviderError::permanent(format!(
        "failed to run local steps as user {:?}: the master runs as uid {me}, and only root \
         can start processes as another user; start the master as root or remove `user` from \
         the pool's [pools.NAME.local] section",
        user.name
    )))
}

/// Creates the root of the workers' dirs outside the (owner-only) state dir,
/// so the workers' user can reach its own dir in it: owned by this master's
/// user, traversable but not listable by others. An existing path must be a
/// real directory of ours that nobody else can write.
pub fn prepare_work_root(root: &Path) -> Result<(), ProviderError> {
    let fail = |what: String| {
        ProviderError::permanent(format!(
            "failed to prepare the local workers' root {}: {what}",
            root.display()
        ))
    };
    match std::fs::DirBuilder::new().mode(0o711).create(root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(fail(e.to_string()).with_source(e)),
    }
    let meta = std::fs::symlink_metadata(root).map_err(|e| fail(e.to_string()))?;
    if !meta.is_dir() || meta.uid() != Uid::effective().as_raw() || meta.mode() & 0o022 != 0 {
        return Err(fail(
            "it exists but is not a directory of this user that only it can write".into(),
        ));
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o711))
        .map_err(|e| fail(e.to_string()))
}
