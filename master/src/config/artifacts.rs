//! `[artifacts]`: where builds' files are kept and how much one build may
//! keep, and each step's `artifacts` (its globs and `when`).

use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::locate::KeyPath;
use super::schema::Config;
use super::validate::Issue;
use crate::model::{ArtifactSpec, ArtifactWhen};

/// `[artifacts] max_build_bytes`'s default: a release binary and its test
/// reports fit; a stray `target/` does not.
pub const DEFAULT_MAX_BUILD_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArtifactsConfig {
    /// A directory of the master's host; default `<state_dir>/artifacts`.
    pub dir: Option<PathBuf>,
    /// Most bytes one build's artifacts may hold, all steps and attempts
    /// together (`"2GiB"`); `0` for no limit.
    pub max_build_bytes: bytesize::ByteSize,
    /// Most bytes one cache archive may hold (`0`: no limit); a bigger one
    /// is not saved, and its build says so.
    pub max_cache_bytes: bytesize::ByteSize,
    /// A cache archive neither saved nor restored for this long is removed
    /// by the janitor (`"30d"`, the default).
    pub cache_max_age: burst_providers::config::Positive,
    /// An S3-compatible bucket instead of `dir`.
    pub s3: Option<S3Config>,
}

/// `[artifacts.s3]`. Credentials come from the `AWS_*` environment
/// variables (or the instance's role), never from this file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// Default: `AWS_REGION`, else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// An S3-compatible endpoint (MinIO, Ceph, …); default AWS. `http://` is
    /// allowed only when written here.
    #[serde(default)]
    pub endpoint: Option<burst_providers::config::HttpUrl>,
}

impl Default for ArtifactsConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_build_bytes: bytesize::ByteSize::b(DEFAULT_MAX_BUILD_BYTES),
            max_cache_bytes: bytesize::ByteSize::b(DEFAULT_MAX_CACHE_BYTES),
            cache_max_age: burst_providers::config::Positive::secs(30 * 24 * 3600),
            s3: None,
        }
    }
}

impl ArtifactsConfig {
    pub fn dir(&self, state_dir: &Path) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| state_dir.join("artifacts"))
    }
}

/// `[artifacts] max_cache_bytes`'s default: a Rust `target/` or a
/// `node_modules` fits, a runaway glob does not.
pub const DEFAULT_MAX_CACHE_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// A step's `artifacts`: a list of globs, or `{ paths = [...], when = "…" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepArtifacts {
    pub spec: ArtifactSpec,
    /// Written as a table (its globs are under `paths`).
    pub table: bool,
}

impl<'de> Deserialize<'de> for StepArtifacts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StepArtifacts;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a list of globs, or a table { paths = [...], when = \"on_success\" | \"on_failure\" | \"always\" }",
                )
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<StepArtifacts, A::Error> {
                let paths = Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(StepArtifacts {
                    spec: ArtifactSpec {
                        paths,
                        when: ArtifactWhen::default(),
                    },
                    table: false,
                })
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<StepArtifacts, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Table {
                    paths: Vec<String>,
                    #[serde(default)]
                    when: ArtifactWhen,
                }
                let t = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(StepArtifacts {
                    spec: ArtifactSpec {
                        paths: t.paths,
                        when: t.when,
                    },
                    table: true,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// What is wrong with one of a step's globs (the worker refuses the same).
pub fn glob_problem(pattern: &str) -> Option<String> {
    let p = pattern.replace('\\', "/");
    if p.is_empty() {
        return Some("an artifact glob must not be empty".into());
    }
    if p.starts_with('/') || p.as_bytes().get(1) == Some(&b':') {
        return Some(format!(
            "artifact glob {pattern:?} must be relative to the build's directory"
        ));
    }
    if p.split('/').any(|part| part == "..") {
        return Some(format!(
            "artifact glob {pattern:?} must not contain '..': nothing outside the build's directory is uploaded"
        ));
    }
    glob::Pattern::new(&p)
        .err()
        .map(|e| format!("artifact glob {pattern:?} is not a glob: {e}"))
}

pub(crate) fn check(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    for (i, b) in config.builders.iter().enumerate() {
        for (j, s) in b.steps.iter().enumerate() {
            let Some(StepArtifacts { spec, table }) = &s.artifacts else {
                continue;
            };
            let path = KeyPath::root()
                .key("builders")
                .index(i)
                .key("steps")
                .index(j)
                .key("artifacts");
            if spec.paths.is_empty() {
                issues.push(Issue {
                    path: path.clone(),
                    message: "artifacts needs at least one glob".into(),
                });
            }
            let globs = if *table { path.key("paths") } else { path };
            for (k, p) in spec.paths.iter().enumerate() {
                if let Some(message) = glob_problem(p) {
                    issues.push(Issue {
                        path: globs.index(k),
                        message,
                    });
                }
            }
        }
    }
    issues
}
