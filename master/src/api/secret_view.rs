//! Builds as the API shows them: no secret value, whatever the store holds.
//!
//! Builds carry only secret names, and config refuses env and params named
//! like a secret, so nothing here should ever match. It still runs on every
//! build the API returns: a database written before `[secrets]` existed may
//! hold a value under a step's `env`, and any text a worker sent may quote one.

use crate::config::Config;
use crate::logs::{Mask, MASKED};
use crate::model::{Build, BuildSummary, Command};

/// Replaces the values of variables named like a secret, and every
/// occurrence of a secret's value, with `***`.
pub fn mask_build(build: &mut Build, config: &Config, mask: &Mask) {
    let masked = String::from_utf8_lossy(MASKED).into_owned();
    let is_secret = |name: &str| config.secrets.keys().any(|s| s.eq_ignore_ascii_case(name));
    let text = |s: &mut String| *s = mask.mask_str(s);
    for map in [&mut build.params, &mut build.cell] {
        for (name, value) in map.iter_mut() {
            if is_secret(name) {
                value.clone_from(&masked);
            } else {
                text(value);
            }
        }
    }
    for step in &mut build.steps {
        for (name, value) in &mut step.env {
            if is_secret(name) {
                value.clone_from(&masked);
            } else {
                text(value);
            }
        }
        for command in std::iter::once(&mut step.command).chain(step.command_windows.as_mut()) {
            match command {
                Command::Script(s) => text(s),
                Command::Argv(args) => args.iter_mut().for_each(text),
                Command::Checkout(c) => c.url.iter_mut().for_each(text),
                // Config text, no secrets: keys and paths.
                Command::Cache(_) => {}
            }
        }
    }
    build.reason.as_mut().map(text);
    for attempt in &mut build.attempts {
        attempt.reason.as_mut().map(text);
        for step in &mut attempt.steps {
            step.error.as_mut().map(text);
        }
    }
}

/// [`mask_build`] for the fields a summary keeps: its cell and reason.
pub fn mask_summary(summary: &mut BuildSummary, config: &Config, mask: &Mask) {
    let masked = String::from_utf8_lossy(MASKED).into_owned();
    for (name, value) in summary.cell.iter_mut() {
        if config.secrets.keys().any(|s| s.eq_ignore_ascii_case(name)) {
            value.clone_from(&masked);
        } else {
            *value = mask.mask_str(value);
        }
    }
    if let Some(reason) = summary.reason.as_mut() {
        *reason = mask.mask_str(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_of_secrets_are_masked() {
        let mut config: Config =
            toml::from_str("[secrets]\nDEPLOY_KEY = { env = \"X\" }\n").unwrap();
        config.secret_values.insert("DEPLOY_KEY", "k3y-value-42");
        let mask = Mask::new(config.secret_values.values()).unwrap();
        // Built from JSON, as the store reads builds back.
        let mut build: Build = serde_json::from_value(serde_json::json!({
            "id": 1, "submit_id": "s", "builder": "b", "cell": {},
            "params": { "DEPLOY_KEY": "from-a-param" },
            "labels": [], "state": "failed", "retries": 0, "created_at": 0,
            "reason": "step deploy failed: bad key k3y-value-42",
            "steps": [{
                "name": "deploy",
                "command": { "script": "deploy --key k3y-value-42" },
                "command_windows": { "argv": ["x", "k3y-value-42"] },
                "env": { "deploy_key": "old-value-from-an-old-db", "URL": "https://u:k3y-value-42@h" },
                "secrets": ["DEPLOY_KEY"],
            }],
            "attempts": [{
                "number": 1, "worker_id": "w", "pool": "p", "state": "failed",
                "reason": "k3y-value-42", "started_at": 0,
                "steps": [{ "index": 0, "name": "deploy", "state": "failed",
                            "error": "spawn k3y-value-42", "log_bytes": 0 }],
            }],
        }))
        .unwrap();
        mask_build(&mut build, &config, &mask);
        let json = serde_json::to_string(&build).unwrap();
        for leaked in ["k3y-value-42", "old-value-from-an-old-db", "from-a-param"] {
            assert!(!json.contains(leaked), "{leaked} in {json}");
        }
        assert_eq!(build.steps[0].env["deploy_key"], "***");
        assert_eq!(build.steps[0].env["URL"], "https://u:***@h");
        assert_eq!(build.steps[0].secrets, ["DEPLOY_KEY"]);
        assert!(json.contains(r#""secrets":["DEPLOY_KEY"]"#), "{json}");
    }
}
