//! What goes wrong while loading a config or expanding a submit.

use std::fmt;
use std::path::PathBuf;

/// Where an offending setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of a config file; `line` is 1-based, `None` when the key is not
    /// written in the file (a default, or a missing section).
    File { path: PathBuf, line: Option<usize> },
    /// An environment override such as `BURST__POOLS__LOCAL__MAX_WORKERS`.
    Env { var: String },
}

/// One thing wrong with a config: where, which key, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `None` when the config was built in code rather than loaded.
    pub origin: Option<Origin>,
    /// Dotted key path such as `pools.local.max_workers` or
    /// `builders[0].steps[1].run`; empty when no key applies (a syntax error).
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(Origin::File {
                path,
                line: Some(line),
            }) => write!(f, "{}:{line}: ", path.display())?,
            Some(Origin::File { path, line: None }) => write!(f, "{}: ", path.display())?,
            Some(Origin::Env { var }) => write!(f, "environment variable {var}: ")?,
            None => {}
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found, not just the first; displayed one per line.
    #[error("{}", lines(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems of an invalid config; empty for a read error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(problems) => problems,
            ConfigError::Read { .. } => &[],
        }
    }
}

fn lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why a submit was refused. Shown to API clients as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("unknown builder {builder:?}; known builders: {}", list_or_none(known))]
    UnknownBuilder { builder: String, known: Vec<String> },
    #[error("invalid parameter name {name:?}: must match [A-Za-z_][A-Za-z0-9_]*")]
    InvalidParam { name: String },
    /// A name that changes how programs run, or burst's own (see
    /// `burst_common::env_policy`).
    #[error("parameter {name:?} refused: {reason}")]
    ForbiddenParam { name: String, reason: String },
    #[error(
        "parameter {name:?} is not declared by builder {builder:?} (declared: {})",
        list_or_none(declared)
    )]
    UndeclaredParam {
        name: String,
        builder: String,
        declared: Vec<String>,
    },
    #[error("parameter {name}={value:?} refused: {rule}")]
    ParamNotAllowed {
        name: String,
        value: String,
        rule: String,
    },
    #[error("parameter {axis}={value:?} is not a value of matrix axis {axis:?} (values: {})", values.join(", "))]
    NotAnAxisValue {
        axis: String,
        value: String,
        values: Vec<String>,
    },
    /// Refused at once rather than queued forever: no pool could ever run it.
    #[error("no pool serves labels [{}]; pools: {}", labels.join(", "), pool_list(pools))]
    Unservable {
        labels: Vec<String>,
        /// Every pool and its labels, in name order.
        pools: Vec<(String, Vec<String>)>,
    },
    /// The builder's definition cannot be expanded (a config that skipped
    /// validation).
    #[error("builder {builder:?} is misconfigured: {reason}")]
    Misconfigured { builder: String, reason: String },
}

impl SubmitError {
    /// Whether the submit itself is malformed (a bad parameter), as opposed
    /// to naming something the config cannot serve.
    pub fn is_bad_param(&self) -> bool {
        matches!(
            self,
            SubmitError::InvalidParam { .. }
                | SubmitError::ForbiddenParam { .. }
                | SubmitError::UndeclaredParam { .. }
                | SubmitError::ParamNotAllowed { .. }
        )
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

fn pool_list(pools: &[(String, Vec<String>)]) -> String {
    if pools.is_empty() {
        return "(none)".to_owned();
    }
    pools
        .iter()
        .map(|(name, labels)| format!("{name} [{}]", labels.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}
