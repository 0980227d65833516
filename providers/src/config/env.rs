//! One policy for the extra environment a pool gives its workers, whatever
//! the provider: portable names, and none of the launch contract's own.

use std::collections::BTreeMap;

use burst_common::launch_env;

use super::problem::{Path, Problems};

/// `[A-Za-z_][A-Za-z0-9_]*`: a portable environment variable name.
pub fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks an `env` map at `path`: a reserved name would be overridden by one
/// provider and break the launch of another, so all refuse it alike.
pub fn check_env(path: &Path, env: &BTreeMap<String, String>, out: &mut Problems) {
    for name in env.keys() {
        let key = path.key(name);
        if !is_env_name(name) {
            out.push(&key, format!("{name:?} must match [A-Za-z_][A-Za-z0-9_]*"));
        } else if launch_env::is_reserved(name) {
            out.push(&key, format!("{name} is set by burst for every worker"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(
            is_env_name("_A1")
                && is_env_name("ab")
                && !is_env_name("1A")
                && !is_env_name("")
                && !is_env_name("A-B")
        );
    }

    #[test]
    fn reserved_and_bad_names_are_refused() {
        let env: BTreeMap<String, String> = [("BURST_TOKEN", "x"), ("A-B", "y"), ("OK", "z")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut out = Problems::new();
        check_env(&Path::root().key("env"), &env, &mut out);
        let found = out.lines();
        assert_eq!(
            found,
            [
                "env.A-B: \"A-B\" must match [A-Za-z_][A-Za-z0-9_]*",
                "env.BURST_TOKEN: BURST_TOKEN is set by burst for every worker"
            ]
        );
    }
}
