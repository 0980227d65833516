//! Real git repositories for the trigger tests: a bare repository, a work
//! clone that commits and pushes to it, and `git daemon` serving the bare
//! one on loopback. A missing `git` fails, naming the setup script.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::Command;

use crate::cmd;

const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `git ARGS` in `dir` (as the tests' committer); its stdout.
pub async fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .args([
            "-c",
            "user.name=burst-test",
            "-c",
            "user.email=test@burst.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0");
    let out = cmd::run(c, GIT_TIMEOUT)
        .await
        .context("failed to run git (install it: scripts/setup/10-apt.sh)")?;
    if !out.success() {
        bail!("git {args:?} failed: {out:?}");
    }
    Ok(out.stdout.trim().to_owned())
}

/// A bare repository and a clone that pushes to it.
pub struct GitRepo {
    pub bare: PathBuf,
    work: PathBuf,
}

impl GitRepo {
    /// `root/repo.git` (bare) and `root/work`, with one commit on `main`.
    pub async fn new(root: &Path) -> anyhow::Result<GitRepo> {
        let bare = root.join("repo.git");
        let work = root.join("work");
        std::fs::create_dir_all(&bare)?;
        std::fs::create_dir_all(&work)?;
        git(&bare, &["init", "--bare", "-q"]).await?;
        git(&work, &["init", "-q"]).await?;
        git(
            &work,
            &["remote", "add", "origin", &bare.display().to_string()],
        )
        .await?;
        let repo = GitRepo { bare, work };
        repo.commit("main", "first").await?;
        Ok(repo)
    }

    /// `file:///…/repo.git`.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Commits a change to `branch` (created from the current head if
    /// new) and pushes it; returns the new revision.
    pub async fn commit(&self, branch: &str, what: &str) -> anyhow::Result<String> {
        self.commit_files(branch, &[(&format!("{what}.txt"), what)], what)
            .await
    }

    /// Commits `files` (path relative to the repository, content; parent
    /// directories are made) to `branch` and pushes it; returns the new
    /// revision.
    pub async fn commit_files(
        &self,
        branch: &str,
        files: &[(&str, &str)],
        message: &str,
    ) -> anyhow::Result<String> {
        git(&self.work, &["checkout", "-q", "-B", branch]).await?;
        for (path, content) in files {
            let path = self.work.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, content)?;
        }
        git(&self.work, &["add", "-A"]).await?;
        git(&self.work, &["commit", "-q", "-m", message]).await?;
        git(&self.work, &["push", "-q", "-f", "origin", branch]).await?;
        git(&self.work, &["rev-parse", "HEAD"]).await
    }

    /// Adds the repository at `url` as submodule `path` on `branch` and
    /// pushes; returns the new revision.
    pub async fn add_submodule(
        &self,
        branch: &str,
        url: &str,
        path: &str,
    ) -> anyhow::Result<String> {
        git(&self.work, &["checkout", "-q", "-B", branch]).await?;
        git(&self.work, &["submodule", "add", "-q", url, path]).await?;
        git(
            &self.work,
            &["commit", "-q", "-m", &format!("submodule {path}")],
        )
        .await?;
        git(&self.work, &["push", "-q", "-f", "origin", branch]).await?;
        git(&self.work, &["rev-parse", "HEAD"]).await
    }
}

/// `git daemon` serving `base` on a loopback port; killed on drop.
pub struct GitDaemon {
    child: tokio::process::Child,
    pub port: u16,
}

impl GitDaemon {
    pub async fn start(base: &Path) -> anyhow::Result<GitDaemon> {
        // A free port: bound, read, released; git daemon takes it next.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
                &base.display().to_string(),
            ])
            // Nothing of it may hold the test's output open after the test.
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("failed to start git daemon (install git: scripts/setup/10-apt.sh)")?;
        let daemon = GitDaemon { child, port };
        crate::wait::until(
            "git daemon to listen",
            Duration::from_secs(30),
            || async move {
                Ok(tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(|_| ()))
            },
        )
        .await?;
        Ok(daemon)
    }

    /// `git://127.0.0.1:PORT/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
