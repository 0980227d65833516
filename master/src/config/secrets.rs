//! `[secrets]`: values the master reads at start, from files or from its own
//! environment, and hands only to the steps that ask for them by name.
//!
//! Values live in memory only: never in the database (builds record the
//! names), never in API answers, never in logs (`logs::Mask` replaces them
//! with `***`). `Secrets`' Debug shows names only, and no error message
//! here quotes a value.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use burst_common::env_policy;
use burst_providers::config::is_env_name;
use serde::Deserialize;

use super::locate::KeyPath;
use super::schema::Config;
use super::validate::Issue;

/// Shorter values are refused: masking them would garble every log that
/// happens to contain those bytes, and they are too weak to be secret.
pub const MIN_SECRET_LEN: usize = 8;
/// Longer values are refused: each open step log holds back this many bytes.
pub const MAX_SECRET_LEN: usize = 64 * 1024;

/// Where one secret's value comes from: `{ file = "/run/keys/deploy" }` or
/// `{ env = "NPM_TOKEN" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// An absolute path; trailing newlines (`\n`, `\r\n`) are trimmed.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// A variable of the master's own environment.
    #[serde(default)]
    pub env: Option<String>,
}

/// One value. Private, so it can only be read through `Secrets`.
#[derive(Clone, PartialEq, Eq)]
struct SecretValue(String);

/// The secrets' values by name.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(BTreeMap<String, SecretValue>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    /// For configs built in code; loading fills this from `[secrets]`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), SecretValue(value.into()));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.0.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(|v| v.0.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether `name` is the name of a declared secret, as Windows compares
/// variable names (case-insensitively).
pub(crate) fn secret_named<'c>(config: &'c Config, name: &str) -> Option<&'c str> {
    config
        .secrets
        .keys()
        .find(|s| s.eq_ignore_ascii_case(name))
        .map(String::as_str)
}

/// The checks that need no file: names, sources, which steps ask for what,
/// and that nothing else (a param, an axis, a step's env) sets a secret's name.
pub(crate) fn check(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut push = |path: KeyPath, message: String| issues.push(Issue { path, message });
    let root = KeyPath::root().key("secrets");
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, source) in &config.secrets {
        let path = root.key(name);
        if let Some(why) = name_problem(name) {
            push(path.clone(), why);
        } else if let Some(other) = seen.insert(name.to_ascii_uppercase(), name) {
            push(
                path.clone(),
                format!("{name:?} differs from secret {other:?} only in case"),
            );
        }
        if let Some(why) = source_problem(source) {
            let at = match source.file {
                Some(_) => path.key("file"),
                None => path.clone(),
            };
            push(at, why);
        }
    }
    let declared = || {
        let names: Vec<&str> = config.secrets.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none are declared".to_owned()
        } else {
            format!("declared: {}", names.join(", "))
        }
    };
    let is_secret = |name: &str| secret_named(config, name);
    for (i, b) in config.builders.iter().enumerate() {
        let bpath = KeyPath::root().key("builders").index(i);
        for name in b.params.keys() {
            if let Some(secret) = is_secret(name) {
                push(
                    bpath.key("params").key(name),
                    format!("param {name:?} would set secret {secret:?}; a param may not"),
                );
            }
        }
        for axis in b.matrix.keys() {
            if let Some(secret) = is_secret(axis) {
                push(
                    bpath.key("matrix").key(axis),
                    format!("axis {axis:?} would set secret {secret:?}; an axis may not"),
                );
            }
        }
        for (j, step) in b.steps.iter().enumerate() {
            let spath = bpath.key("steps").index(j);
            for key in step.env.keys() {
                if let Some(secret) = is_secret(key) {
                    push(
                        spath.key("env").key(key),
                        format!(
                            "{key} is secret {secret:?}; a step's env may not set it \
                             (ask for it with secrets = [{secret:?}])"
                        ),
                    );
                }
            }
            let mut asked = BTreeSet::new();
            for (k, name) in step.secrets.iter().enumerate() {
                let at = spath.key("secrets").index(k);
                if !config.secrets.contains_key(name) {
                    push(
                        at,
                        format!(
                            "step {:?} asks for unknown secret {name:?} ({})",
                            step.name,
                            declared()
                        ),
                    );
                } else if !asked.insert(name) {
                    push(
                        at,
                        format!("step {:?} asks for secret {name:?} twice", step.name),
                    );
                }
            }
        }
    }
    issues
}

fn name_problem(name: &str) -> Option<String> {
    if !is_env_name(name) {
        return Some(format!(
            "secret name {name:?} must match [A-Za-z_][A-Za-z0-9_]*"
        ));
    }
    // A secret becomes an environment variable, so it obeys the same policy
    // as a submitted param: nothing that changes how programs run.
    env_policy::submit_refusal(name).map(|why| format!("{name:?} cannot be a secret: {why}"))
}

fn source_problem(source: &SecretConfig) -> Option<String> {
    match (&source.file, &source.env) {
        (Some(_), Some(_)) => Some("set one of file or env, not both".into()),
        (None, None) => Some("needs file = \"/path\" or env = \"VARIABLE\"".into()),
        (Some(file), None) if !file.is_absolute() => {
            Some(format!("must be an absolute path (got {})", file.display()))
        }
        (None, Some(var)) if var.is_empty() || var.contains(['=', '\0']) => {
            Some(format!("{var:?} is not an environment variable name"))
        }
        _ => None,
    }
}

/// Reads every secret whose declaration passed `check`. A problem names
/// the file or variable and what is wrong, never the value.
pub(crate) fn read(
    config: &Config,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> (Secrets, Vec<Issue>) {
    let mut secrets = Secrets::default();
    let mut issues = Vec::new();
    let root = KeyPath::root().key("secrets");
    for (name, source) in &config.secrets {
        if name_problem(name).is_some() || source_problem(source).is_some() {
            continue;
        }
        let (path, value) = match (&source.file, &source.env) {
            (Some(file), _) => (root.key(name).key("file"), read_file(file)),
            (None, Some(var)) => (root.key(name).key("env"), read_env(var, env)),
            (None, None) => continue,
        };
        match value.and_then(checked) {
            Ok(value) => secrets.insert(name.clone(), value),
            Err(message) => issues.push(Issue { path, message }),
        }
    }
    (secrets, issues)
}

fn read_file(file: &std::path::Path) -> Result<String, String> {
    let shown = file.display();
    let bytes =
        std::fs::read(file).map_err(|e| format!("failed to read secret file {shown}: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("secret file {shown} is not UTF-8"))?;
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(format!("secret file {shown} is empty"));
    }
    Ok(trimmed.to_owned())
}

fn read_env(var: &str, env: &dyn Fn(&str) -> Option<OsString>) -> Result<String, String> {
    let value = env(var).ok_or_else(|| format!("environment variable {var} is not set"))?;
    let value = value
        .into_string()
        .map_err(|_| format!("environment variable {var} is not UTF-8"))?;
    if value.is_empty() {
        return Err(format!("environment variable {var} is empty"));
    }
    Ok(value)
}

fn checked(value: String) -> Result<String, String> {
    if value.contains('\0') {
        return Err("the value contains a NUL byte, which no environment can carry".into());
    }
    if value.len() < MIN_SECRET_LEN {
        return Err(format!(
            "the value is {} bytes; a secret needs at least {MIN_SECRET_LEN} \
             (a shorter one would be masked all over the logs)",
            value.len()
        ));
    }
    if value.len() > MAX_SECRET_LEN {
        return Err(format!(
            "the value is {} bytes; a secret may have at most {MAX_SECRET_LEN}",
            value.len()
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_not_values() {
        let mut s = Secrets::default();
        s.insert("DEPLOY_KEY", "do-not-show-me");
        let shown = format!("{s:?}");
        assert!(
            shown.contains("DEPLOY_KEY") && !shown.contains("do-not-show-me"),
            "{shown}"
        );
        assert_eq!(s.get("DEPLOY_KEY"), Some("do-not-show-me"));
    }

    #[test]
    fn values_are_checked_without_being_quoted() {
        for bad in ["q9z", "with\0nul-byte"] {
            let e = checked(bad.to_owned()).unwrap_err();
            assert!(!e.contains(bad), "{e}");
        }
        assert!(checked("x".repeat(MAX_SECRET_LEN + 1)).is_err());
        assert_eq!(checked("12345678".into()).unwrap(), "12345678");
    }
}
