//! The files a polled push touched, for rules' `paths`: `git diff
//! --name-only` between the old and the new head. `ls-remote` stays the
//! cheap check every poll makes; only a moved branch of a source some rule
//! filters by path costs a fetch, and only of commits and trees: a bare,
//! blob-less (`--filter=blob:none`) repository per source under
//! `<state_dir>/poll-trees/`. A diff of names needs no file contents, so
//! the master never holds the code, and a second fetch brings only the new
//! commits and trees. Whatever fails (a force push that dropped the old
//! head, a server without partial clone) gives `None`: paths unknown, the
//! change is never skipped for them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::ls_remote;

/// A fetch or diff that takes longer is given up (paths unknown).
const DEADLINE: Duration = Duration::from_secs(120);

pub(super) struct PathsRepo {
    dir: PathBuf,
    url: String,
    password: Option<String>,
}

impl PathsRepo {
    pub(super) fn new(state_dir: &Path, source: &str, url: &str, password: Option<String>) -> Self {
        Self {
            dir: state_dir.join("poll-trees").join(format!("{source}.git")),
            url: url.to_owned(),
            password,
        }
    }

    /// The paths changed from `old` to `new` (sorted), or why not.
    pub(super) async fn changed(&self, old: &str, new: &str) -> Result<Vec<String>, String> {
        self.prepare().await?;
        self.fetch(new).await?;
        if !self.has(old).await {
            // A restart with no tree repository yet, or a head pushed
            // over: ask for it too; a server that dropped it fails here.
            self.fetch(old).await?;
        }
        let out = self
            .git(&["diff", "--name-only", "--no-renames", "-z", old, new])
            .await?;
        let mut paths: Vec<String> = out
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        paths.sort();
        Ok(paths)
    }

    /// A bare repository whose `origin` is a promisor of blobs (so git
    /// never fetches one behind our back: the diff reads trees only).
    async fn prepare(&self) -> Result<(), String> {
        if self.dir.join("HEAD").exists() {
            return Ok(());
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| format!("failed to create {}: {e}", self.dir.display()))?;
        self.git(&["init", "--bare", "-q"]).await?;
        for (k, v) in [
            ("remote.origin.url", self.url.as_str()),
            ("remote.origin.promisor", "true"),
            ("remote.origin.partialclonefilter", "blob:none"),
            ("gc.auto", "0"),
        ] {
            self.git(&["config", k, v]).await?;
        }
        Ok(())
    }

    async fn fetch(&self, rev: &str) -> Result<(), String> {
        let refspec = format!("+{rev}:refs/burst/{rev}");
        self.git(&[
            "fetch",
            "-q",
            "--no-tags",
            "--filter=blob:none",
            "origin",
            &refspec,
        ])
        .await
        .map(|_| ())
    }

    async fn has(&self, rev: &str) -> bool {
        self.git(&["cat-file", "-e", &format!("{rev}^{{commit}}")])
            .await
            .is_ok()
    }

    async fn git(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.dir).args(args);
        ls_remote::quiet_env(&mut cmd, self.password.as_deref());
        let out = tokio::time::timeout(DEADLINE, cmd.output())
            .await
            .map_err(|_| format!("git {} took longer than {}s", args[0], DEADLINE.as_secs()))?
            .map_err(|e| format!("failed to run git: {e}"))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "git {} failed ({}): {}",
                args[0],
                out.status,
                text.trim().chars().take(500).collect::<String>()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
