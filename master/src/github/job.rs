//! A `workflow_job`, as the webhook and the jobs endpoint both send it
//! (only the fields the manager uses), and the webhook's envelope.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Job {
    pub id: u64,
    #[serde(default)]
    pub run_id: u64,
    #[serde(default)]
    pub name: String,
    /// queued, in_progress, completed, waiting, …
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub runner_name: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub full_name: String,
}

/// The body of a `workflow_job` delivery.
#[derive(Debug, Clone, Deserialize)]
pub struct JobEvent {
    pub action: String,
    pub workflow_job: Job,
    pub repository: Repository,
}

impl JobEvent {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let event: Self =
            serde_json::from_slice(body).map_err(|e| format!("not a workflow_job payload: {e}"))?;
        if !crate::config::is_repo_name(&event.repository.full_name) {
            return Err(format!(
                "repository.full_name {:?} is not owner/name",
                event.repository.full_name
            ));
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_documented_payload_parses_and_junk_is_refused() {
        let body = serde_json::json!({
            "action": "queued",
            "workflow_job": {
                "id": 29679449, "run_id": 5433620, "run_attempt": 1,
                "status": "queued", "conclusion": null, "name": "build",
                "labels": ["self-hosted", "linux"], "runner_id": null, "runner_name": null,
                "html_url": "https://github.com/o/r/actions/runs/5433620/job/29679449",
                "steps": []
            },
            "repository": { "id": 1, "full_name": "octo-org/example-workflow", "private": true },
            "organization": { "login": "octo-org" },
            "sender": { "login": "octo-user" }
        });
        let e = JobEvent::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(e.action, "queued");
        assert_eq!(e.workflow_job.id, 29679449);
        assert_eq!(e.workflow_job.labels, ["self-hosted", "linux"]);
        assert_eq!(e.repository.full_name, "octo-org/example-workflow");
        assert!(JobEvent::parse(b"{}").is_err());
        assert!(JobEvent::parse(b"not json").is_err());
        let bad = body
            .to_string()
            .replace("octo-org/example-workflow", "../../etc");
        assert!(JobEvent::parse(bad.as_bytes()).is_err());
    }
}
