//! What each reporter kind sends for a build state: URL, headers and JSON
//! body. Pure, so every mapping is unit-tested.

use serde_json::json;

use crate::config::{ReporterConfig, ReporterKind};
use crate::model::{Build, BuildState};
use crate::triggers::{BRANCH, EVENT, PR, REPO, REVISION};

/// One HTTP request to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub url: String,
    /// (name, value); the token's header is among them.
    pub headers: Vec<(&'static str, String)>,
    pub body: serde_json::Value,
}

/// The status context: `{prefix}/{builder}`, and the matrix cell when the
/// builder has one (`burst/test (os=linux)`), so each cell has its own
/// check.
pub fn context(prefix: &str, build: &Build) -> String {
    let mut c = format!("{prefix}/{}", build.builder);
    if !build.cell.is_empty() {
        let cell: Vec<String> = build.cell.iter().map(|(k, v)| format!("{k}={v}")).collect();
        c.push_str(&format!(" ({})", cell.join(", ")));
    }
    c
}

fn description(state: BuildState) -> &'static str {
    match state {
        BuildState::Queued => "queued",
        BuildState::Running => "running",
        BuildState::Succeeded => "succeeded",
        BuildState::Failed => "failed",
        BuildState::TimedOut => "timed out",
        BuildState::Cancelled => "cancelled",
        BuildState::WorkerLost => "its worker was lost",
    }
}

/// GitHub's commit status states.
fn github_state(state: BuildState) -> &'static str {
    match state {
        BuildState::Queued | BuildState::Running => "pending",
        BuildState::Succeeded => "success",
        BuildState::Failed | BuildState::TimedOut => "failure",
        BuildState::Cancelled | BuildState::WorkerLost => "error",
    }
}

/// GitLab's commit status states.
fn gitlab_state(state: BuildState) -> &'static str {
    match state {
        BuildState::Queued => "pending",
        BuildState::Running => "running",
        BuildState::Succeeded => "success",
        BuildState::Failed | BuildState::TimedOut | BuildState::WorkerLost => "failed",
        BuildState::Cancelled => "canceled",
    }
}

/// The request reporting that `build` reached `state`, or why none can be
/// made (a build without a revision cannot have a commit status).
pub(super) fn request(
    r: &ReporterConfig,
    token: Option<&str>,
    build: &Build,
    state: BuildState,
    build_url: &str,
) -> Result<Outgoing, String> {
    let target_url = format!("{}/builds/{}", build_url.trim_end_matches('/'), build.id);
    let param = |name: &str| {
        build.params.get(name).cloned().ok_or_else(|| {
            format!(
                "build {} has no {name}, so no commit to report on",
                build.id
            )
        })
    };
    let mut headers = vec![("user-agent", "burst".to_owned())];
    match r.kind {
        ReporterKind::Github => {
            let (repo, sha) = (param(REPO)?, param(REVISION)?);
            headers.push(("accept", "application/vnd.github+json".into()));
            headers.push(("x-github-api-version", "2022-11-28".into()));
            if let Some(t) = token {
                headers.push(("authorization", format!("Bearer {t}")));
            }
            Ok(Outgoing {
                url: format!("{}/repos/{repo}/statuses/{sha}", r.api_url()),
                headers,
                body: json!({
                    "state": github_state(state),
                    "target_url": target_url,
                    "description": description(state),
                    "context": context(r.context_prefix(), build),
                }),
            })
        }
        ReporterKind::Gitlab => {
            let (repo, sha) = (param(REPO)?, param(REVISION)?);
            if let Some(t) = token {
                headers.push(("private-token", t.to_owned()));
            }
            // GitLab takes a project's path, URL-encoded, where it takes its id.
            let project = repo.replace('/', "%2F");
            let mut body = json!({
                "state": gitlab_state(state),
                "target_url": target_url,
                "description": description(state),
                "name": context(r.context_prefix(), build),
            });
            if let Some(branch) = build.params.get(BRANCH) {
                body["ref"] = json!(branch);
            }
            Ok(Outgoing {
                url: format!("{}/projects/{project}/statuses/{sha}", r.api_url()),
                headers,
                body,
            })
        }
        ReporterKind::Generic => {
            if let Some(t) = token {
                headers.push(("authorization", format!("Bearer {t}")));
            }
            let source: serde_json::Map<String, serde_json::Value> =
                [REPO, BRANCH, REVISION, PR, EVENT]
                    .iter()
                    .filter_map(|k| build.params.get(*k).map(|v| (k.to_string(), json!(v))))
                    .collect();
            Ok(Outgoing {
                url: r.api_url(),
                headers,
                body: json!({
                    "build": build.id,
                    "builder": build.builder,
                    "cell": build.cell,
                    "state": state.as_str(),
                    "url": target_url,
                    "context": context(r.context_prefix(), build),
                    "source": source,
                }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burst_providers::config::HttpUrl;

    fn build() -> Build {
        crate::model::NewBuild {
            submit_id: "s".into(),
            builder: "test".into(),
            cell: [("os".to_owned(), "linux".to_owned())].into(),
            params: [
                (REPO.to_owned(), "acme/app".to_owned()),
                (REVISION.to_owned(), "a".repeat(40)),
                (BRANCH.to_owned(), "main".to_owned()),
            ]
            .into(),
            labels: vec![],
            steps: vec![],
            retries: 0,
            submitted_by: None,
        }
        .into_build(7, 0)
    }

    fn reporter(kind: ReporterKind) -> ReporterConfig {
        ReporterConfig {
            name: "r".into(),
            kind,
            sources: vec!["gh".into()],
            token: Some("T".into()),
            url: (kind == ReporterKind::Generic).then(|| HttpUrl::new("http://hook.example/x")),
            build_url: None,
            context: None,
        }
    }

    #[test]
    fn github_statuses_map_every_state() {
        let r = reporter(ReporterKind::Github);
        let b = build();
        let out = request(&r, Some("tok"), &b, BuildState::Queued, "http://ci:8480").unwrap();
        assert_eq!(
            out.url,
            format!(
                "https://api.github.com/repos/acme/app/statuses/{}",
                "a".repeat(40)
            )
        );
        assert!(out
            .headers
            .contains(&("authorization", "Bearer tok".into())));
        assert_eq!(out.body["state"], "pending");
        assert_eq!(out.body["target_url"], "http://ci:8480/builds/7");
        assert_eq!(out.body["context"], "burst/test (os=linux)");
        for (state, want) in [
            (BuildState::Running, "pending"),
            (BuildState::Succeeded, "success"),
            (BuildState::Failed, "failure"),
            (BuildState::TimedOut, "failure"),
            (BuildState::Cancelled, "error"),
            (BuildState::WorkerLost, "error"),
        ] {
            let out = request(&r, Some("tok"), &b, state, "http://ci").unwrap();
            assert_eq!(out.body["state"], want, "{state:?}");
        }
    }

    #[test]
    fn gitlab_statuses_use_the_project_path_and_private_token() {
        let r = reporter(ReporterKind::Gitlab);
        let out = request(&r, Some("tok"), &build(), BuildState::Running, "http://ci").unwrap();
        assert_eq!(
            out.url,
            format!(
                "https://gitlab.com/api/v4/projects/acme%2Fapp/statuses/{}",
                "a".repeat(40)
            )
        );
        assert!(out.headers.contains(&("private-token", "tok".into())));
        assert_eq!(out.body["state"], "running");
        assert_eq!(out.body["name"], "burst/test (os=linux)");
        assert_eq!(out.body["ref"], "main");
        let out = request(&r, None, &build(), BuildState::Cancelled, "http://ci").unwrap();
        assert_eq!(out.body["state"], "canceled");
    }

    #[test]
    fn a_build_without_a_revision_has_no_status() {
        let mut b = build();
        b.params.clear();
        let err = request(
            &reporter(ReporterKind::Github),
            None,
            &b,
            BuildState::Queued,
            "x",
        );
        assert!(err.unwrap_err().contains("BURST_REPO"));
        // The generic reporter reports it anyway.
        let out = request(
            &reporter(ReporterKind::Generic),
            None,
            &b,
            BuildState::Queued,
            "x",
        );
        assert_eq!(out.unwrap().body["state"], "queued");
    }
}
