//! The built-in checkout step: fetch a build's revision into its workspace
//! with the git CLI (no git library: the worker stays small), through a
//! bare mirror of the repository kept under the work dir, so a reused
//! worker fetches only the objects it does not have yet.
//!
//! - Shallow by default (`--depth 1` of the exact revision), the whole
//!   history when asked; submodules when asked.
//! - The https token travels in git's environment as an `http.<url>.
//!   extraHeader` scoped to the repository's host (`GIT_CONFIG_*`), never
//!   in an argument (which `ps` shows), a file or a remote's config; every
//!   message quoting git is masked.
//! - A failure is the step's own error, naming the URL, the revision and
//!   git's message.
//! - Windows: git for Windows gets paths without the `\\?\` prefix and with
//!   forward slashes; `core.autocrlf` and `.gitattributes` are left to the
//!   machine's git config and the repository.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use burst_proto::{Checkout, OutputStream, RunStep, StepFinished};
use tokio::process::Command;
use tokio::time::Instant;

use crate::output::{Tail, TAIL_LIMIT};
use crate::step::{self, StepContext, StopSignal};

/// Where the mirrors live, inside the work dir (build keys are `build-…`,
/// so no build directory can be named like it).
const MIRRORS_DIR: &str = ".git-mirrors";
/// What replaces a secret in a message.
const MASK: &str = "***";

/// Runs the checkout `spec` as step `run`. `None` when the master stopped
/// wanting the step while it ran.
pub(crate) async fn run(
    run: &RunStep,
    spec: &Checkout,
    ctx: &StepContext,
    stop: &mut StopSignal,
) -> Option<StepFinished> {
    let mut finished = StepFinished {
        step_run_id: run.step_run_id.clone(),
        ..Default::default()
    };
    let token = (!spec.token_env.is_empty())
        .then(|| run.env.get(&spec.token_env))
        .flatten()
        .filter(|t| !t.is_empty())
        .cloned();
    let git = Git {
        run,
        ctx,
        env: git_env(&spec.url, token.as_deref()),
        secrets: secrets(token.as_deref()),
        deadline: step::deadline(run),
    };
    match git.checkout(spec, stop, &mut finished).await {
        Ok(()) => finished.exit_code = Some(0),
        Err(Failed::Lost) => return None,
        Err(Failed::Stopped) => {}
        Err(Failed::Error(why)) => {
            let message = git.mask(&format!(
                "checkout of {} at {} failed: {why}",
                spec.url,
                shown_revision(&spec.revision)
            ));
            git.say(OutputStream::Stderr, &message).await;
            finished.error = message;
        }
    }
    Some(finished)
}

/// Why a checkout did not complete.
enum Failed {
    /// The master no longer wants the step: report nothing.
    Lost,
    /// Timed out, cancelled or fenced: `finished` says which.
    Stopped,
    /// What went wrong, for the step's error (masked by the caller).
    Error(String),
}

struct Git<'a> {
    run: &'a RunStep,
    ctx: &'a StepContext,
    env: Vec<(String, String)>,
    secrets: Vec<String>,
    deadline: Option<Instant>,
}

impl Git<'_> {
    async fn checkout(
        &self,
        spec: &Checkout,
        stop: &mut StopSignal,
        finished: &mut StepFinished,
    ) -> Result<(), Failed> {
        if spec.url.is_empty() {
            return Err(Failed::Error(
                "no repository: the build has no BURST_REPO_URL (it was not started by a \
                 source) and the step sets no url"
                    .into(),
            ));
        }
        if !is_commit_id(&spec.revision) {
            return Err(Failed::Error(
                "no revision: the build's BURST_REVISION is missing or not a full commit id \
                 (it was not started by a source)"
                    .into(),
            ));
        }
        let dir = step::prepare_dir(self.run, self.ctx)
            .await
            .map_err(Failed::Error)?;
        let mirror = self
            .ctx
            .work_dir
            .join(MIRRORS_DIR)
            .join(mirror_name(&spec.url));
        let rev = spec.revision.as_str();
        let how = if spec.full_history {
            "the whole history"
        } else {
            "shallow"
        };
        self.say(
            OutputStream::Stdout,
            &format!(
                "burst checkout: {} at {rev} ({how}) into {}",
                self.mask(&spec.url),
                dir.display()
            ),
        )
        .await;

        // One fetch into a mirror at a time: git's lock files would make a
        // second one fail.
        let lock = mirror_lock(&mirror);
        let _held = lock.lock().await;
        self.update_mirror(spec, &mirror, stop, finished).await?;
        self.fill_workspace(spec, &mirror, &dir, stop, finished)
            .await?;
        if spec.submodules {
            let mut args = vec!["submodule", "update", "--init", "--recursive"];
            if !spec.full_history {
                args.push("--depth=1");
            }
            self.git(Some(&dir), &args, stop, finished).await?;
        }
        #[cfg(unix)]
        if let Some(user) = &self.ctx.step_user {
            give_tree(&dir, user).map_err(|e| {
                Failed::Error(format!(
                    "failed to give the checkout {} to {}: {e}",
                    dir.display(),
                    user.name
                ))
            })?;
        }
        self.say(
            OutputStream::Stdout,
            &format!("burst checkout: HEAD is {rev}"),
        )
        .await;
        Ok(())
    }

    /// Brings `rev` into the mirror, fetching only when it lacks it (or
    /// its whole history, when that is asked and the mirror is shallow).
    async fn update_mirror(
        &self,
        spec: &Checkout,
        mirror: &Path,
        stop: &mut StopSignal,
        finished: &mut StepFinished,
    ) -> Result<(), Failed> {
        let rev = spec.revision.as_str();
        if !mirror.join("HEAD").exists() {
            tokio::fs::create_dir_all(mirror).await.map_err(|e| {
                Failed::Error(format!(
                    "failed to create the mirror {}: {e}",
                    mirror.display()
                ))
            })?;
            self.git(
                None,
                &["init", "--bare", "-q", &git_path(mirror)],
                stop,
                finished,
            )
            .await?;
        }
        clear_stale_locks(mirror);
        let commit = format!("{rev}^{{commit}}");
        let has = self.quiet(mirror, &["cat-file", "-e", &commit]).await;
        let shallow = mirror.join("shallow").exists();
        if has && !(spec.full_history && shallow) {
            self.say(
                OutputStream::Stdout,
                "burst checkout: the mirror has the revision already: nothing fetched",
            )
            .await;
            return Ok(());
        }
        let before = self.object_count(mirror).await;
        let refspec = format!("+{rev}:refs/burst/{rev}");
        let mut args = vec!["fetch", "--no-tags", "--no-write-fetch-head"];
        match (spec.full_history, shallow) {
            (false, _) => args.push("--depth=1"),
            (true, true) => args.push("--unshallow"),
            (true, false) => {}
        }
        args.extend(["--", spec.url.as_str(), refspec.as_str()]);
        let mirror_dir = mirror.to_path_buf();
        self.git(Some(&mirror_dir), &args, stop, finished).await?;
        if let (Some(before), Some(after)) = (before, self.object_count(mirror).await) {
            self.say(
                OutputStream::Stdout,
                &format!(
                    "burst checkout: the mirror received {} new objects",
                    after.saturating_sub(before)
                ),
            )
            .await;
        }
        Ok(())
    }

    /// `dir` as a repository whose `origin` is the real URL (so relative
    /// submodule URLs resolve), its objects fetched from the mirror, `rev`
    /// checked out detached.
    async fn fill_workspace(
        &self,
        spec: &Checkout,
        mirror: &Path,
        dir: &Path,
        stop: &mut StopSignal,
        finished: &mut StepFinished,
    ) -> Result<(), Failed> {
        let rev = spec.revision.as_str();
        let d = Some(dir);
        if !dir.join(".git").exists() {
            self.git(d, &["init", "-q"], stop, finished).await?;
        }
        self.git(
            d,
            &["config", "remote.origin.url", spec.url.as_str()],
            stop,
            finished,
        )
        .await?;
        let mirror = git_path(mirror);
        let refspec = format!("+{rev}:refs/remotes/origin/burst-checkout");
        let mut args = vec!["fetch", "-q", "--no-tags", "--no-write-fetch-head"];
        let shallow = dir.join(".git").join("shallow").exists();
        match (spec.full_history, shallow) {
            (false, _) => args.push("--depth=1"),
            (true, true) => args.push("--unshallow"),
            (true, false) => {}
        }
        args.extend(["--", mirror.as_str(), refspec.as_str()]);
        self.git(d, &args, stop, finished).await?;
        self.git(
            d,
            &[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "-q",
                "--force",
                "--detach",
                rev,
            ],
            stop,
            finished,
        )
        .await
    }

    /// Runs `git ARGS` (in `dir`) as part of the step: its output goes to
    /// the step's log, a non-zero exit is an error quoting its stderr.
    async fn git(
        &self,
        dir: Option<&Path>,
        args: &[&str],
        stop: &mut StopSignal,
        finished: &mut StepFinished,
    ) -> Result<(), Failed> {
        let mut cmd = self.command(dir, args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let tail: Tail = Arc::default();
        let shown = format!("git {}", args.first().copied().unwrap_or_default());
        let ended = step::supervise(
            &mut cmd,
            self.run,
            self.ctx,
            stop,
            self.deadline,
            finished,
            Some(tail.clone()),
        )
        .await
        .map_err(|e| Failed::Error(format!("failed to run git (is it installed?): {e}")))?;
        let status = match ended {
            None => return Err(Failed::Lost),
            Some(_) if finished.timed_out || finished.cancelled || finished.lease_expired => {
                return Err(Failed::Stopped)
            }
            Some(Ok(status)) => status,
            Some(Err(e)) => return Err(Failed::Error(format!("failed to wait for {shown}: {e}"))),
        };
        if status.success() {
            return Ok(());
        }
        let text = tail.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let message = String::from_utf8_lossy(&text);
        let message: String = message.trim().chars().take(TAIL_LIMIT).collect();
        Err(Failed::Error(format!(
            "{shown} failed ({status}): {}",
            if message.is_empty() {
                "git printed nothing"
            } else {
                &message
            }
        )))
    }

    /// Runs a git command that is not part of the step's log; true if it
    /// succeeded.
    async fn quiet(&self, dir: &Path, args: &[&str]) -> bool {
        let mut cmd = self.command(Some(dir), args);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        matches!(cmd.status().await, Ok(s) if s.success())
    }

    /// Loose plus packed objects of a repository (`git count-objects -v`).
    async fn object_count(&self, dir: &Path) -> Option<u64> {
        let mut cmd = self.command(Some(dir), &["count-objects", "-v"]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        let out = cmd.output().await.ok()?;
        out.status.success().then_some(())?;
        count_objects(&String::from_utf8_lossy(&out.stdout))
    }

    fn command(&self, dir: Option<&Path>, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        if let Some(dir) = dir {
            cmd.arg("-C").arg(git_path(dir));
        }
        cmd.args(args)
            .env_clear()
            .envs(crate::step_env::base())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// A line of the worker's own in the step's log.
    async fn say(&self, stream: OutputStream, line: &str) {
        let mut data = line.as_bytes().to_vec();
        data.push(b'\n');
        self.ctx
            .journal
            .append(&self.run.step_run_id, stream as i32, data)
            .await;
    }

    fn mask(&self, text: &str) -> String {
        mask(text, &self.secrets)
    }
}

/// What git runs with besides the step's base environment: no prompt for
/// anything (a missing credential fails at once), ssh in batch mode, and
/// the token as a basic-auth header for `url`'s scheme and host only (a
/// submodule elsewhere never sees it).
fn git_env(url: &str, token: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        ("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()),
        (
            "GIT_SSH_COMMAND".to_owned(),
            "ssh -o BatchMode=yes".to_owned(),
        ),
        // Git's own default, stated: never print an Authorization header.
        ("GIT_TRACE_REDACT".to_owned(), "1".to_owned()),
    ];
    if let (Some(token), Some(base)) = (token, url_base(url)) {
        env.extend([
            ("GIT_CONFIG_COUNT".to_owned(), "1".to_owned()),
            (
                "GIT_CONFIG_KEY_0".to_owned(),
                format!("http.{base}.extraHeader"),
            ),
            (
                "GIT_CONFIG_VALUE_0".to_owned(),
                format!("Authorization: Basic {}", basic(token)),
            ),
        ]);
    }
    env
}

fn basic(token: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"))
}

/// What a message must never show: the token and its basic-auth form.
fn secrets(token: Option<&str>) -> Vec<String> {
    token
        .map(|t| vec![t.to_owned(), basic(t)])
        .unwrap_or_default()
}

fn mask(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(s.as_str(), MASK);
    }
    text
}

/// `https://host:port/` of an http(s) URL, which `http.<url>.*` config
/// matches; `None` for other schemes (no header to send).
fn url_base(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .filter(|h| !h.is_empty())?;
    // Credentials in the URL are refused by the master; never copy them.
    let host = host.rsplit('@').next()?;
    Some(format!("{scheme}://{host}/"))
}

fn is_commit_id(rev: &str) -> bool {
    matches!(rev.len(), 40 | 64) && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

fn shown_revision(rev: &str) -> String {
    if rev.is_empty() {
        "(no revision)".into()
    } else {
        rev.chars().take(80).collect()
    }
}

/// A mirror's directory name: the URL's readable part (letters, digits,
/// `.`, `-`, `_`; the rest `_`) plus a hash of the whole URL, so two URLs
/// never share a mirror.
fn mirror_name(url: &str) -> String {
    let readable: String = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    format!("{}-{:016x}.git", readable.trim_matches('_'), fnv1a(url))
}

/// FNV-1a, 64 bits: stable across runs and platforms (std's hasher is
/// not), and enough to tell a worker's few repositories apart.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The async lock of one mirror, shared by the steps of this worker.
fn mirror_lock(mirror: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    locks.entry(mirror.to_path_buf()).or_default().clone()
}

/// Lock files a killed fetch left behind. Only this worker uses its
/// mirror, and only under the mirror's lock, so any lock found is stale.
fn clear_stale_locks(mirror: &Path) {
    for name in [
        "shallow.lock",
        "packed-refs.lock",
        "config.lock",
        "HEAD.lock",
    ] {
        let _ = std::fs::remove_file(mirror.join(name));
    }
    if let Ok(entries) = std::fs::read_dir(mirror.join("refs").join("burst")) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with(".lock") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// `count` plus `in-pack` of `git count-objects -v`.
fn count_objects(text: &str) -> Option<u64> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
    };
    Some(field("count:")? + field("in-pack:")?)
}

/// A path as git takes it on this platform.
fn git_path(path: &Path) -> String {
    let text = path.display().to_string();
    if cfg!(windows) {
        windows_git_path(&text)
    } else {
        text
    }
}

/// A Windows path for git for Windows: no `\\?\` verbatim prefix (which
/// canonicalized paths carry and git cannot read; `\\?\UNC\host\share`
/// becomes `//host/share`), forward slashes.
fn windows_git_path(path: &str) -> String {
    let plain = if let Some(unc) = path.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{unc}")
    } else {
        path.strip_prefix(r"\\?\").unwrap_or(path).to_owned()
    };
    plain.replace('\\', "/")
}

/// Gives the checkout to the step user (git ran as the worker, which owns
/// the mirror the step user cannot read).
#[cfg(unix)]
fn give_tree(dir: &Path, user: &crate::step_user::StepUser) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(user.uid), Some(user.gid))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            give_tree(&entry.path(), user)?;
        } else {
            std::os::unix::fs::lchown(entry.path(), Some(user.uid), Some(user.gid))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_a_header_for_the_repositorys_host_only() {
        let env = git_env("https://git.example.com:8443/acme/app.git", Some("s3cr3t"));
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("GIT_CONFIG_KEY_0"),
            Some("http.https://git.example.com:8443/.extraHeader")
        );
        assert_eq!(
            get("GIT_CONFIG_VALUE_0"),
            Some(format!("Authorization: Basic {}", basic("s3cr3t")).as_str())
        );
        assert_eq!(get("GIT_TERMINAL_PROMPT"), Some("0"));
        // No token, or a scheme that takes no header: nothing configured.
        assert!(git_env("https://h/x", None)
            .iter()
            .all(|(k, _)| !k.starts_with("GIT_CONFIG")));
        assert!(git_env("git://h/x", Some("t"))
            .iter()
            .all(|(k, _)| !k.starts_with("GIT_CONFIG")));
        assert_eq!(url_base("https://u@h/x").as_deref(), Some("https://h/"));
    }

    #[test]
    fn messages_mask_the_token_and_its_basic_form() {
        let s = secrets(Some("tok-123"));
        let shown = mask(&format!("a tok-123 b {}", basic("tok-123")), &s);
        assert_eq!(shown, "a *** b ***");
        assert_eq!(mask("nothing", &secrets(None)), "nothing");
    }

    #[test]
    fn mirror_names_are_plain_and_distinct() {
        let a = mirror_name("https://github.com/acme/app.git");
        let b = mirror_name("https://github.com/acme/app");
        assert!(a.starts_with("github.com_acme_app.git-"), "{a}");
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
        assert_eq!(a, mirror_name("https://github.com/acme/app.git"));
        let odd = mirror_name("file:///C:/x/../y z");
        assert!(!odd.contains(['/', '\\', ':', ' ']), "{odd}");
    }

    #[test]
    fn windows_paths_lose_the_verbatim_prefix() {
        assert_eq!(
            windows_git_path(r"\\?\C:\burst\work\.git-mirrors\a.git"),
            "C:/burst/work/.git-mirrors/a.git"
        );
        assert_eq!(windows_git_path(r"C:\w\build-1"), "C:/w/build-1");
        assert_eq!(windows_git_path(r"\\?\UNC\srv\share\w"), "//srv/share/w");
    }

    #[test]
    fn object_counts_add_loose_and_packed() {
        let text = "count: 3\nsize: 12\nin-pack: 52\npacks: 1\nsize-pack: 9\n";
        assert_eq!(count_objects(text), Some(55));
        assert_eq!(count_objects("garbage"), None);
    }

    #[test]
    fn revisions_must_be_full_commit_ids() {
        assert!(is_commit_id(&"a".repeat(40)));
        assert!(is_commit_id(&"0".repeat(64)));
        assert!(!is_commit_id("HEAD"));
        assert!(!is_commit_id(&"g".repeat(40)));
        assert!(!is_commit_id(""));
    }
}
