//! A builder's `caches`: what its fresh workers should not rebuild. Each
//! becomes a restore step (after the builder's leading checkout steps) and a
//! save step (after its last step); see docs/artifacts-and-caches.md.

use serde::Deserialize;

use super::locate::KeyPath;
use super::schema::Config;
use super::validate::Issue;
use burst_providers::config::CacheVolume;

use crate::model::{CacheSpec, Command, StepSpec};

/// Longest key, after its `{hash:…}` are replaced.
pub const MAX_KEY: usize = 200;
/// Most caches one builder may declare.
pub const MAX_CACHES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// `cargo-{hash:Cargo.lock}`: letters, digits, `.`, `_`, `-`, and
    /// `{hash:PATH}` (a file of the build's directory).
    pub key: String,
    /// Relative to the build's directory, or to the step's home (`~/…`).
    pub paths: Vec<String>,
    /// Prefixes tried, in order, when `key` itself is not saved: the newest
    /// key with the prefix is restored.
    #[serde(default)]
    pub restore_keys: Vec<String>,
    /// Keep this cache per branch (`BURST_BRANCH`) as well as per builder.
    #[serde(default)]
    pub per_branch: bool,
    /// `archive` (the default): saved and restored by steps; `volume`: a
    /// Docker named volume per pool and key, mounted into every container
    /// of the pools that serve the builder, nothing to transfer.
    #[serde(default)]
    pub kind: CacheKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheKind {
    #[default]
    Archive,
    Volume,
}

/// The Docker volume of cache `key` in `pool`.
pub fn volume_name(pool: &str, key: &str) -> String {
    format!("burst-cache.{pool}.{key}")
}

/// The volumes the workers of `pool` mount: every `kind = "volume"` cache of
/// every builder some cell of which `pool` serves.
pub fn cache_volumes(config: &Config, pool: &str) -> Vec<CacheVolume> {
    let mut out: Vec<CacheVolume> = Vec::new();
    for b in &config.builders {
        let served = super::labels::label_cells(b)
            .into_iter()
            .any(|(_, labels)| {
                labels.is_ok_and(|l| super::labels::pool_for_labels(config, &l) == Some(pool))
            });
        if !served {
            continue;
        }
        for c in b.caches.iter().filter(|c| c.kind == CacheKind::Volume) {
            let v = CacheVolume {
                name: volume_name(pool, &c.key),
                target: c.paths.first().cloned().unwrap_or_default(),
            };
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

impl CacheConfig {
    fn step(&self, save: bool) -> StepSpec {
        StepSpec {
            name: format!(
                "cache {}: {}",
                if save { "save" } else { "restore" },
                self.key
            ),
            command: Command::Cache(CacheSpec {
                save,
                key: self.key.clone(),
                restore_keys: self.restore_keys.clone(),
                paths: self.paths.clone(),
                per_branch: self.per_branch,
            }),
            command_windows: None,
            shell: None,
            env: Default::default(),
            working_dir: None,
            timeout: None,
            // A cache never fails its build.
            continue_on_failure: true,
            always_run: false,
            secrets: Vec::new(),
            artifacts: None,
            runner: None,
        }
    }
}

/// `steps` with each cache's restore step after the leading checkout steps
/// and its save step at the end (it runs only if every step before it did).
pub fn with_cache_steps(caches: &[CacheConfig], mut steps: Vec<StepSpec>) -> Vec<StepSpec> {
    if caches.is_empty() {
        return steps;
    }
    let at = steps
        .iter()
        .take_while(|s| matches!(s.command, Command::Checkout(_)))
        .count();
    // Volume caches are mounts, not steps.
    let archives = || caches.iter().filter(|c| c.kind == CacheKind::Archive);
    let restores: Vec<StepSpec> = archives().map(|c| c.step(false)).collect();
    steps.splice(at..at, restores);
    steps.extend(archives().map(|c| c.step(true)));
    steps
}

/// What is wrong with a key or restore key template.
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("a cache key must not be empty".into());
    }
    if key.len() > MAX_KEY {
        return Some(format!("a cache key must be at most {MAX_KEY} characters"));
    }
    let mut rest = key;
    while let Some(open) = rest.find('{') {
        if let Some(c) = rest[..open].chars().find(|c| !key_char(*c)) {
            return Some(format!("cache key {key:?} holds {c:?}: use letters, digits, '.', '_', '-' and {{hash:PATH}}"));
        }
        let Some(close) = rest[open..].find('}') else {
            return Some(format!("cache key {key:?} has an unclosed '{{'"));
        };
        let inner = &rest[open + 1..open + close];
        match inner.strip_prefix("hash:") {
            Some(path) if path_problem(path, false).is_none() => {}
            Some(path) => {
                return Some(format!(
                    "cache key {key:?}: {{hash:{path}}} must name a file of the build's directory"
                ))
            }
            None => {
                return Some(format!(
                    "cache key {key:?}: unknown placeholder {{{inner}}}; only {{hash:PATH}}"
                ))
            }
        }
        rest = &rest[open + close + 1..];
    }
    if let Some(c) = rest.chars().find(|c| !key_char(*c)) {
        return Some(format!(
            "cache key {key:?} holds {c:?}: use letters, digits, '.', '_', '-' and {{hash:PATH}}"
        ));
    }
    None
}

fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// A cache path: relative to the build's directory (or `~/` when `home`),
/// never absolute or holding `..`.
fn path_problem(path: &str, home: bool) -> Option<String> {
    let rel = if home {
        path.strip_prefix("~/").unwrap_or(path)
    } else {
        path
    };
    let rel = rel.replace('\\', "/");
    if rel.is_empty() || rel.starts_with('/') || rel.as_bytes().get(1) == Some(&b':') {
        return Some(format!(
            "cache path {path:?} must be relative to the build's directory, or start with ~/"
        ));
    }
    if rel.split('/').any(|p| p == "..") {
        return Some(format!("cache path {path:?} must not contain '..'"));
    }
    None
}

/// A volume cache: a static key, one absolute path (where it is mounted),
/// and only Docker pools serving its builder.
fn volume_problems(
    config: &Config,
    b: &super::schema::BuilderConfig,
    c: &CacheConfig,
    at: &KeyPath,
    push: &mut impl FnMut(KeyPath, String),
) {
    if c.key.contains('{') {
        push(
            at.key("key"),
            "a volume cache's key must be fixed: it names the volume".into(),
        );
    }
    if !c.restore_keys.is_empty() || c.per_branch {
        push(
            at.key("kind"),
            "a volume cache takes no restore_keys or per_branch".into(),
        );
    }
    match c.paths.as_slice() {
        [one] if one.starts_with('/') && !one.split('/').any(|p| p == "..") => {}
        _ => push(
            at.key("paths"),
            "a volume cache takes one absolute path: where containers mount the volume".into(),
        ),
    }
    let pools: std::collections::BTreeSet<&str> = super::labels::label_cells(b)
        .into_iter()
        .filter_map(|(_, l)| l.ok())
        .filter_map(|l| super::labels::pool_for_labels(config, &l))
        .collect();
    for pool in pools {
        let kind = config.pools.get(pool).map(|p| p.provider.kind().name());
        if kind != Some("docker") {
            push(
                at.key("kind"),
                format!("a volume cache needs Docker pools; pool {pool} serving builder {:?} is not one", b.name),
            );
        }
    }
}

pub(crate) fn check(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    for (i, b) in config.builders.iter().enumerate() {
        let path = KeyPath::root().key("builders").index(i).key("caches");
        if b.caches.len() > MAX_CACHES {
            issues.push(Issue {
                path: path.clone(),
                message: format!("at most {MAX_CACHES} caches per builder"),
            });
        }
        for (j, c) in b.caches.iter().enumerate() {
            let at = path.index(j);
            let mut push =
                |key: KeyPath, message: String| issues.push(Issue { path: key, message });
            if let Some(m) = key_problem(&c.key) {
                push(at.key("key"), m);
            }
            for (k, r) in c.restore_keys.iter().enumerate() {
                if let Some(m) = key_problem(r) {
                    push(at.key("restore_keys").index(k), m);
                }
            }
            if c.paths.is_empty() {
                push(at.key("paths"), "a cache needs at least one path".into());
            }
            if c.kind == CacheKind::Volume {
                volume_problems(config, b, c, &at, &mut push);
                continue;
            }
            for (k, p) in c.paths.iter().enumerate() {
                if let Some(m) = path_problem(p, true) {
                    push(at.key("paths").index(k), m);
                }
            }
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_take_plain_characters_and_hash_placeholders() {
        for ok in [
            "cargo-{hash:Cargo.lock}",
            "npm-{hash:web/package-lock.json}-v2",
            "plain.key_1",
        ] {
            assert_eq!(key_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "a b",
            "k/{hash:x}",
            "{hash:../x}",
            "{hash:/etc/passwd}",
            "{os}",
            "{hash:x",
        ] {
            assert!(key_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn restore_steps_follow_the_checkouts_and_save_steps_end_the_build() {
        let step = |name: &str, command: Command| StepSpec {
            name: name.into(),
            command,
            command_windows: None,
            shell: None,
            env: Default::default(),
            working_dir: None,
            timeout: None,
            continue_on_failure: false,
            always_run: false,
            secrets: Vec::new(),
            artifacts: None,
            runner: None,
        };
        let caches = [CacheConfig {
            key: "k".into(),
            paths: vec!["target".into()],
            restore_keys: vec![],
            per_branch: false,
            kind: CacheKind::Archive,
        }];
        let steps = with_cache_steps(
            &caches,
            vec![
                step("co", Command::Checkout(Default::default())),
                step("build", Command::Script("make".into())),
            ],
        );
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["co", "cache restore: k", "build", "cache save: k"]);
        assert!(steps[1].continue_on_failure && steps[3].continue_on_failure);
    }
}

#[cfg(test)]
mod volume_tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;

    fn load(caches: &str, provider: &str) -> Result<Config, String> {
        let section = if provider == "docker" {
            "\n[pools.p.docker]\nimage = \"burst-worker:latest\"\nmaster_url = \"http://172.17.0.1:8481\"\n"
        } else {
            ""
        };
        let text = format!(
            "[pools.p]\nprovider = \"{provider}\"\nlabels = [\"linux\"]\n{section}\n\
             [[builders]]\nname = \"b\"\nlabels = [\"linux\"]\ncaches = {caches}\n\n\
             [[builders.steps]]\nname = \"s\"\nrun = \"true\"\n"
        );
        super::super::load_str(&text, Path::new("burst.toml"), &BTreeMap::new())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_volume_cache_is_a_mount_of_the_docker_pools_that_serve_its_builder() {
        let config = load(
            r#"[{ key = "deps", kind = "volume", paths = ["/cache/deps"] }]"#,
            "docker",
        )
        .unwrap();
        assert_eq!(
            cache_volumes(&config, "p"),
            [CacheVolume {
                name: "burst-cache.p.deps".into(),
                target: "/cache/deps".into()
            }]
        );
        assert!(cache_volumes(&config, "other").is_empty());
        // No steps for a volume cache.
        let steps = with_cache_steps(&config.builders[0].caches, Vec::new());
        assert!(steps.is_empty());
    }

    #[test]
    fn volume_caches_need_docker_a_fixed_key_and_one_absolute_path() {
        let e = load(
            r#"[{ key = "deps", kind = "volume", paths = ["/c"] }]"#,
            "local",
        )
        .unwrap_err();
        assert!(
            e.contains("a volume cache needs Docker pools; pool p"),
            "{e}"
        );
        let e = load(
            r#"[{ key = "d-{hash:x}", kind = "volume", paths = ["/c"] }]"#,
            "docker",
        )
        .unwrap_err();
        assert!(
            e.contains("builders[0].caches[0].key") && e.contains("must be fixed"),
            "{e}"
        );
        let e = load(
            r#"[{ key = "d", kind = "volume", paths = ["rel"] }]"#,
            "docker",
        )
        .unwrap_err();
        assert!(e.contains("one absolute path"), "{e}");
        let e = load(
            r#"[{ key = "d", kind = "bogus", paths = ["/c"] }]"#,
            "docker",
        )
        .unwrap_err();
        assert!(e.contains("unknown variant"), "{e}");
    }
}
