//! A problem found in a provider's config section, with the key path it is
//! about. The master maps paths to file lines or environment variables.

use std::fmt;

use super::fields::Check;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A key path such as `docker.hosts[0].endpoint`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(Vec<Segment>);

impl Path {
    pub fn root() -> Self {
        Self::default()
    }

    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Segment::Key(key.to_owned()));
        Self(segs)
    }

    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Segment::Index(index));
        Self(segs)
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
            }
        }
        Ok(())
    }
}

/// What a problem's path is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The pool's table, `pools.NAME` (the usual case).
    Pool,
    /// The whole file, e.g. `master.grpc_listen` when a docker pool's
    /// containers cannot reach it.
    Root,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub scope: Scope,
    pub path: Path,
    pub message: String,
}

/// Collects every problem of a section, so a broken config is fixed in one
/// pass.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    /// A problem at `path` inside the pool.
    pub fn push(&mut self, path: &Path, message: impl Into<String>) {
        self.0.push(Problem {
            scope: Scope::Pool,
            path: path.clone(),
            message: message.into(),
        });
    }

    /// A problem at `path` from the top of the file.
    pub fn push_root(&mut self, path: &Path, message: impl Into<String>) {
        self.0.push(Problem {
            scope: Scope::Root,
            path: path.clone(),
            message: message.into(),
        });
    }

    pub fn push_problem(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    /// The field's own check (see [`Check`]).
    pub fn check(&mut self, path: &Path, value: &impl Check) {
        if let Some(message) = value.problem() {
            self.push(path, message);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }

    /// `path: message`, one a problem: what tests compare against.
    pub fn lines(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    }
}
