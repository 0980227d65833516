//! A step's artifacts: the files of the build's directory that match the
//! step's globs, checked to stay inside it, and hashed. The journal queues
//! them after the step's output; the session streams them from disk.

use std::io::Read;
use std::path::{Path, PathBuf};

use burst_proto::{ArtifactWhen, RunStep, StepFinished};
use sha2::{Digest, Sha256};

/// Most files one step may upload: a glob gone wide (`**`) fails clearly
/// instead of walking a whole `node_modules` into the master.
pub const MAX_FILES: usize = 10_000;

/// One file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArtifactFile {
    /// Relative to the build's directory, `/`-separated.
    pub(crate) rel: String,
    /// Where it is read from (a symlink's target, inside the build).
    pub(crate) abs: PathBuf,
    pub(crate) size: u64,
    /// Lowercase hex.
    pub(crate) sha256: String,
}

/// Whether a step that ended as `finished` uploads its artifacts. A step
/// that was cancelled, lost or never started uploads nothing.
pub(crate) fn wanted(run: &RunStep, finished: &StepFinished) -> bool {
    if run.artifacts.is_empty() || finished.cancelled || finished.lease_expired {
        return false;
    }
    let succeeded =
        finished.exit_code == Some(0) && finished.error.is_empty() && !finished.timed_out;
    match run.artifacts_when() {
        ArtifactWhen::OnSuccess => succeeded,
        ArtifactWhen::OnFailure => !succeeded,
        ArtifactWhen::Always => true,
    }
}

/// What [`collect`] found, with a line for the step's log per pattern that
/// matched nothing.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) files: Vec<ArtifactFile>,
    pub(crate) unmatched: Vec<String>,
}

/// Finds, checks and hashes the files under `root` that match `patterns`.
/// Refuses (with the message the step fails with) a pattern that is not
/// relative, a matching symlink that points out of `root`, and a total over
/// `limit` bytes (0: none).
pub(crate) fn collect(root: &Path, patterns: &[String], limit: u64) -> Result<Collected, String> {
    let compiled = patterns
        .iter()
        .map(|p| compile(p).map(|g| (p, g)))
        .collect::<Result<Vec<_>, _>>()?;
    let canonical_root = root
        .canonicalize()
        .map_err(|e| format!("artifacts: failed to resolve {}: {e}", root.display()))?;
    let mut found = Vec::new();
    walk(root, "", &mut found)
        .map_err(|e| format!("artifacts: failed to list {}: {e}", root.display()))?;
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let mut collected = Collected::default();
    let mut matched = vec![false; compiled.len()];
    for (rel, path, is_link) in found {
        let hits: Vec<usize> = compiled
            .iter()
            .enumerate()
            .filter(|(_, (_, g))| g.matches_with(&rel, options))
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            continue;
        }
        let abs = if is_link {
            let target = path
                .canonicalize()
                .map_err(|e| format!("artifacts: failed to resolve the symlink {rel}: {e}"))?;
            if !target.starts_with(&canonical_root) {
                return Err(format!(
                    "artifacts: refused {rel}: it is a symlink to {}, outside the build's directory",
                    target.display()
                ));
            }
            if !target.is_file() {
                continue;
            }
            target
        } else {
            path
        };
        for i in hits {
            matched[i] = true;
        }
        if collected.files.len() == MAX_FILES {
            return Err(format!(
                "artifacts: more than {MAX_FILES} files match; narrow the step's artifacts globs"
            ));
        }
        collected.files.push(ArtifactFile {
            rel,
            abs,
            size: 0,
            sha256: String::new(),
        });
    }
    collected.unmatched = compiled
        .iter()
        .zip(matched)
        .filter(|(_, m)| !m)
        .map(|((p, _), _)| format!("artifacts: no file matches {p}"))
        .collect();
    let mut total = 0u64;
    for file in &mut collected.files {
        (file.size, file.sha256) =
            hash(&file.abs).map_err(|e| format!("artifacts: failed to read {}: {e}", file.rel))?;
        total += file.size;
    }
    if limit > 0 && total > limit {
        return Err(format!(
            "artifacts: the step's {} files total {total} bytes, over the build's artifact limit of {limit} bytes ([artifacts] max_build_bytes); none were uploaded",
            collected.files.len()
        ));
    }
    Ok(collected)
}

/// A glob relative to the build's directory; `\` is taken as `/` so one
/// config serves Linux and Windows workers.
fn compile(pattern: &str) -> Result<glob::Pattern, String> {
    let p = pattern.replace('\\', "/");
    let absolute = p.starts_with('/') || p.as_bytes().get(1) == Some(&b':');
    if absolute || p.split('/').any(|part| part == "..") || p.is_empty() {
        return Err(format!(
            "artifacts: refused the pattern {pattern:?}: it must be relative to the build's directory, without '..'"
        ));
    }
    glob::Pattern::new(p.trim_start_matches("./"))
        .map_err(|e| format!("artifacts: bad pattern {pattern:?}: {e}"))
}

/// Every file and symlink under `dir` as (relative path, path, is a
/// symlink). Symlinks are not followed into directories.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf, bool)>) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            // Not UTF-8: no pattern (a config string) can name it.
            continue;
        };
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &rel, out)?;
        } else if kind.is_file() || kind.is_symlink() {
            out.push((rel, entry.path(), kind.is_symlink()));
        }
    }
    Ok(())
}

/// The file's size and sha256, in one read.
fn hash(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        std::fs::create_dir_all(p.join("target/release")).expect("mkdir");
        std::fs::create_dir_all(p.join("reports/unit/deep")).expect("mkdir");
        std::fs::write(p.join("target/release/app"), b"binary").expect("write");
        std::fs::write(p.join("reports/top.xml"), b"<a/>").expect("write");
        std::fs::write(p.join("reports/unit/deep/b.xml"), b"<b/>").expect("write");
        std::fs::write(p.join("reports/unit/skip.txt"), b"no").expect("write");
        dir
    }

    fn names(c: &Collected) -> Vec<&str> {
        c.files.iter().map(|f| f.rel.as_str()).collect()
    }

    #[test]
    fn globs_match_files_at_any_depth_with_their_hashes() {
        let dir = tree();
        let c = collect(
            dir.path(),
            &[
                "target/release/app".into(),
                "reports/**/*.xml".into(),
                "none/*".into(),
            ],
            0,
        )
        .expect("collect");
        assert_eq!(
            names(&c),
            [
                "reports/top.xml",
                "reports/unit/deep/b.xml",
                "target/release/app"
            ]
        );
        let app = &c.files[2];
        assert_eq!(app.size, 6);
        // sha256("binary")
        assert_eq!(
            app.sha256,
            "9a3a45d01531a20e89ac6ae10b0b0beb0492acd7216a368aa062d1a5fecaf9cd"
        );
        assert_eq!(c.unmatched, ["artifacts: no file matches none/*"]);
    }

    #[test]
    fn patterns_that_leave_the_build_are_refused() {
        let dir = tree();
        for bad in ["../x", "/etc/passwd", "a/../../b", "C:/x", "..\\x", ""] {
            let e = collect(dir.path(), &[bad.into()], 0).expect_err(bad);
            assert!(e.contains("refused the pattern"), "{bad}: {e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_the_build_is_refused_one_inside_is_read() {
        let dir = tree();
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), b"s").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("out.txt"))
            .expect("symlink");
        std::os::unix::fs::symlink("reports/top.xml", dir.path().join("in.xml")).expect("symlink");
        let e = collect(dir.path(), &["*.txt".into()], 0).expect_err("out");
        assert!(
            e.contains("refused out.txt") && e.contains("outside"),
            "{e}"
        );
        let c = collect(dir.path(), &["*.xml".into()], 0).expect("in");
        assert_eq!(names(&c), ["in.xml"]);
        assert_eq!(c.files[0].size, 4);
    }

    #[test]
    fn a_total_over_the_limit_fails_before_any_upload() {
        let dir = tree();
        let e = collect(dir.path(), &["**/*".into()], 10).expect_err("limit");
        assert!(
            e.contains("over the build's artifact limit of 10 bytes"),
            "{e}"
        );
        assert!(collect(dir.path(), &["**/*".into()], 1000).is_ok());
    }

    #[test]
    fn when_decides_by_the_outcome() {
        let run = |when: ArtifactWhen| RunStep {
            artifacts: vec!["x".into()],
            artifacts_when: when as i32,
            ..Default::default()
        };
        let ok = StepFinished {
            exit_code: Some(0),
            ..Default::default()
        };
        let failed = StepFinished {
            exit_code: Some(1),
            ..Default::default()
        };
        let cancelled = StepFinished {
            cancelled: true,
            ..Default::default()
        };
        assert!(wanted(&run(ArtifactWhen::OnSuccess), &ok));
        assert!(!wanted(&run(ArtifactWhen::OnSuccess), &failed));
        assert!(wanted(&run(ArtifactWhen::OnFailure), &failed));
        assert!(!wanted(&run(ArtifactWhen::OnFailure), &ok));
        assert!(wanted(&run(ArtifactWhen::Always), &failed));
        assert!(!wanted(&run(ArtifactWhen::Always), &cancelled));
        assert!(!wanted(&RunStep::default(), &ok));
    }
}
