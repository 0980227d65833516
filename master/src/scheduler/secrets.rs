//! Secret values join a step's environment only in the `RunStep` sent to
//! its worker; builds carry the names.

use std::collections::BTreeMap;

use super::actor::Scheduler;
use crate::config::Secrets;
use crate::model::{now_millis, BuildId, BuildState, StepSpec};

/// Adds the values of the secrets `spec` asks for to `env`.
pub(super) fn add_secrets(env: &mut BTreeMap<String, String>, spec: &StepSpec, secrets: &Secrets) {
    for name in &spec.secrets {
        // Checked before the build started (`fail_without_secrets`).
        if let Some(value) = secrets.get(name) {
            env.insert(name.clone(), value.to_owned());
        }
    }
}

impl Scheduler {
    /// Fails a queued build that asks for a secret this master does not
    /// have (it was queued under a config that declared it); true if so.
    pub(super) async fn fail_without_secrets(&mut self, id: BuildId) -> bool {
        let secrets = &self.state.settings.secrets;
        let Some(build) = self.state.builds.get_mut(&id) else {
            return false;
        };
        let Some((step, name)) = build.steps.iter().find_map(|s| {
            s.secrets
                .iter()
                .find(|n| secrets.get(n).is_none())
                .map(|n| (s.name.clone(), n.clone()))
        }) else {
            return false;
        };
        let reason = format!(
            "step {step} needs secret {name}, which this master's [secrets] does not declare"
        );
        tracing::warn!(build = id, %reason, "build failed before it started");
        build.state = BuildState::Failed;
        build.reason = Some(reason);
        build.finished_at = Some(now_millis());
        self.persist_build(id);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Command;

    #[test]
    fn only_the_secrets_a_step_names_join_its_env() {
        let mut secrets = Secrets::default();
        secrets.insert("DEPLOY_KEY", "deploy-key-value");
        secrets.insert("NPM_TOKEN", "npm-token-value");
        let spec: StepSpec = serde_json::from_value(serde_json::json!({
            "name": "s", "command": { "script": "true" }, "secrets": ["NPM_TOKEN"],
        }))
        .unwrap();
        assert!(matches!(spec.command, Command::Script(_)));
        let mut env = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        add_secrets(&mut env, &spec, &secrets);
        assert_eq!(
            env,
            BTreeMap::from([
                ("A".to_owned(), "1".to_owned()),
                ("NPM_TOKEN".to_owned(), "npm-token-value".to_owned()),
            ])
        );
    }
}
