//! A builder's declared parameters: which a submit may set, with which
//! values, and the defaults for those it leaves out.

use std::collections::BTreeMap;

use burst_common::env_policy;
use burst_providers::config::is_env_name;
use regex::Regex;

use super::error::SubmitError;
use super::schema::{BuilderConfig, ParamConfig};

/// Compiled patterns stay small: a config is trusted, but a pattern that
/// needs more than this is a mistake, and compiling it on every submit
/// would be slow.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `pattern` as a whole-value match. The pattern alone is parsed first, so
/// that an error quotes what the config says.
pub(crate) fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    let build = |p: &str| {
        regex::RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
    };
    build(pattern)?;
    build(&format!("^(?:{pattern})$"))
}

/// A regex error on one line (they come laid out over several).
pub(crate) fn one_line(e: &regex::Error) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The rule `value` breaks, if any (a pattern that does not compile is
/// reported by validation; here it refuses every value).
pub(crate) fn rule_broken(rules: &ParamConfig, value: &str) -> Option<String> {
    if let Some(allowed) = &rules.allowed {
        if !allowed.iter().any(|a| a == value) {
            return Some(format!("must be one of: {}", allowed.join(", ")));
        }
    }
    if let Some(pattern) = &rules.regex {
        if !compile(pattern).is_ok_and(|re| re.is_match(value)) {
            return Some(format!("must match the regex {pattern:?}"));
        }
    }
    None
}

/// The params a build of `b` gets: `given` checked against the builder's
/// declarations, plus the defaults of declared params not given. A param
/// named like a matrix axis counts as declared (the axis checks its value).
pub(crate) fn resolve(
    b: &BuilderConfig,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, SubmitError> {
    for (name, value) in given {
        if !is_env_name(name) {
            return Err(SubmitError::InvalidParam { name: name.clone() });
        }
        if let Some(reason) = env_policy::submit_refusal(name) {
            return Err(SubmitError::ForbiddenParam {
                name: name.clone(),
                reason,
            });
        }
        if b.matrix.contains_key(name) {
            continue;
        }
        let Some(rules) = b.params.get(name) else {
            return Err(SubmitError::UndeclaredParam {
                name: name.clone(),
                builder: b.name.clone(),
                declared: declared(b),
            });
        };
        if let Some(rule) = rule_broken(rules, value) {
            return Err(SubmitError::ParamNotAllowed {
                name: name.clone(),
                value: value.clone(),
                rule,
            });
        }
    }
    let mut params = given.clone();
    for (name, rules) in &b.params {
        if let Some(default) = &rules.default {
            params
                .entry(name.clone())
                .or_insert_with(|| default.clone());
        }
    }
    Ok(params)
}

/// Every name a submit of `b` may set: its params and its matrix axes.
fn declared(b: &BuilderConfig) -> Vec<String> {
    let mut names: Vec<String> = b.params.keys().chain(b.matrix.keys()).cloned().collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(text: &str) -> BuilderConfig {
        let text = format!("name = \"b\"\nsteps = [{{ name = \"s\", run = \"x\" }}]\n{text}");
        match toml::from_str(&text) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const DECLARED: &str = r#"
matrix = { os = ["linux"] }
[params]
REF = { default = "main", regex = "[a-z0-9._/-]+" }
MODE = { allowed = ["debug", "release"], description = "build mode" }
FREE = {}
"#;

    #[test]
    fn defaults_fill_in_and_given_values_win() {
        let b = builder(DECLARED);
        assert_eq!(resolve(&b, &given(&[])), Ok(given(&[("REF", "main")])));
        assert_eq!(
            resolve(
                &b,
                &given(&[("REF", "v1.2"), ("MODE", "debug"), ("os", "linux")])
            ),
            Ok(given(&[
                ("REF", "v1.2"),
                ("MODE", "debug"),
                ("os", "linux")
            ]))
        );
        assert_eq!(
            resolve(&b, &given(&[("FREE", "anything at all")])),
            Ok(given(&[("FREE", "anything at all"), ("REF", "main")]))
        );
    }

    #[test]
    fn undeclared_params_are_refused_by_name() {
        let b = builder(DECLARED);
        let err = resolve(&b, &given(&[("OTHER", "1")])).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "parameter \"OTHER\" is not declared by builder \"b\" \
                 (declared: FREE, MODE, REF, os)"
            )
        );
    }

    #[test]
    fn values_must_follow_the_rules() {
        let b = builder(DECLARED);
        let err = resolve(&b, &given(&[("MODE", "fast")])).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("parameter MODE=\"fast\" refused: must be one of: debug, release")
        );
        // The whole value must match, not just a part of it.
        let err = resolve(&b, &given(&[("REF", "main; rm -rf /")])).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "parameter REF=\"main; rm -rf /\" refused: must match the regex \"[a-z0-9._/-]+\""
            )
        );
    }

    #[test]
    fn dangerous_names_are_refused_even_when_declared() {
        let b = builder("params = { PATH = {}, BURST_TOKEN = {} }");
        for name in [
            "PATH",
            "Path",
            "BURST_TOKEN",
            "LD_PRELOAD",
            "GIT_CONFIG_COUNT",
        ] {
            match resolve(&b, &given(&[(name, "x")])) {
                Err(SubmitError::ForbiddenParam { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
