//! The worker's directories: the work dir and one directory per build in it,
//! owner-only, and a build's directory removed when the master says the build
//! is over (pools that keep workspaces never say so).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::step::step_dir;
use crate::step_user::StepUser;

/// Creates the work dir (and its parents) and makes it owner-only: other
/// users on the machine have no business in builds' files. With a step
/// user it is traversable (not listable), so that user reaches its builds.
pub(crate) async fn prepare_work_dir(dir: &Path, step_user: Option<&StepUser>) -> Result<()> {
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("failed to create work dir {}", dir.display()))?;
    let mode = if step_user.is_some() { 0o711 } else { 0o700 };
    set_mode(dir, mode)
        .await
        .with_context(|| format!("failed to make work dir {} owner-only", dir.display()))
}

/// Creates `<work_dir>/<build_key>` owner-only (the step user's, if any) if
/// it does not exist yet.
pub(crate) async fn create_build_dir(
    build_dir: &Path,
    step_user: Option<&StepUser>,
) -> std::io::Result<()> {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = tokio::fs::DirBuilder::new();
    #[cfg(unix)]
    builder.mode(0o700);
    match builder.create(build_dir).await {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        other => other?,
    }
    match step_user {
        Some(user) => crate::step_user::give(build_dir, build_dir, user),
        None => Ok(()),
    }
}

/// Removes a finished build's directory, in the background: a big tree must
/// not hold up the session.
pub(crate) fn remove_build(work_dir: &Path, build_key: &str) {
    let dir: PathBuf = match step_dir(work_dir, build_key, "") {
        Ok(dir) => dir,
        Err(e) => {
            tracing::warn!("ignoring BuildEnded: {e}");
            return;
        }
    };
    let build_key = build_key.to_owned();
    tokio::spawn(async move {
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => tracing::info!(build = %build_key, "removed the build's directory"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                build = %build_key,
                "failed to remove the build's directory {}: {e}",
                dir.display()
            ),
        }
    });
}

#[cfg(unix)]
async fn set_mode(dir: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).await
}

#[cfg(not(unix))]
async fn set_mode(_dir: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}
