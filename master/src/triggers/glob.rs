//! Branch and path globs: `*` and `?` stay inside one `/`-separated
//! segment, `**` spans any number of them, `{a,b}` and `[ab]` as usual.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

/// Why `pattern` is not a glob, for config validation.
pub fn glob_problem(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("a glob must not be empty".into());
    }
    glob(pattern)
        .map(|_| ())
        .map_err(|e| format!("{pattern:?} is not a glob: {}", e.kind()))
}

/// A list of globs; empty matches everything.
#[derive(Debug, Clone)]
pub(super) struct Globs {
    set: Option<GlobSet>,
}

impl Globs {
    /// Validation has checked every pattern; one that still fails matches
    /// nothing rather than everything.
    pub(super) fn new(patterns: &[String]) -> Self {
        if patterns.is_empty() {
            return Self { set: None };
        }
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            if let Ok(g) = glob(p) {
                b.add(g);
            }
        }
        Self {
            set: Some(b.build().unwrap_or_else(|_| GlobSet::empty())),
        }
    }

    pub(super) fn matches(&self, s: &str) -> bool {
        self.set.as_ref().is_none_or(|set| set.is_match(s))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.set.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(p: &[&str]) -> Globs {
        Globs::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn star_stays_in_a_segment_and_double_star_crosses() {
        let g = globs(&["release/*", "main"]);
        assert!(g.matches("main"));
        assert!(g.matches("release/1.2"));
        assert!(!g.matches("release/1.2/hotfix"));
        assert!(!g.matches("mainline"));
        let g = globs(&["src/**", "*.md"]);
        assert!(g.matches("src/a/b/c.rs"));
        assert!(g.matches("README.md"));
        assert!(!g.matches("docs/README.md"));
        assert!(globs(&[]).matches("anything/at/all"));
    }

    #[test]
    fn bad_globs_are_named() {
        assert!(glob_problem("src/[").is_err());
        assert!(glob_problem("").is_err());
        assert!(glob_problem("feature/{a,b}").is_ok());
    }
}
