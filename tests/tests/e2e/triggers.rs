//! Builds that start from code: signed GitHub and GitLab webhooks, the
//! generic hook, git pollers over file:// and git daemon, and the commit
//! statuses reported to a fake GitHub API (retries, a SIGKILL in between).

use std::time::Duration;

use anyhow::Context;
use burst_e2e::fake_forge::{Answer, Call, FakeForge};
use burst_e2e::git_repo::{GitDaemon, GitRepo};
use burst_e2e::{wait, BuildId, Master, MasterBuilder};
use burst_master::triggers::github_signature;
use serde_json::{json, Value};

const HOOK_SECRET: &str = "hook-secret-for-tests";
const GITLAB_TOKEN: &str = "gitlab-token-for-tests";
const GENERIC_TOKEN: &str = "generic-token-for-tests";
const API_TOKEN: &str = "github-api-token-for-tests";

const GITHUB_PUSH: &str = include_str!("../../fixtures/github_push.json");
const GITHUB_PR: &str = include_str!("../../fixtures/github_pull_request.json");
const GITLAB_MR: &str = include_str!("../../fixtures/gitlab_merge_request.json");

const BUILD_WAIT: Duration = Duration::from_secs(60);

const BASE: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]

[secrets]
HOOK_SECRET = { env = "HOOK_SECRET" }
GITLAB_TOKEN = { env = "GITLAB_TOKEN" }
GENERIC_TOKEN = { env = "GENERIC_TOKEN" }
GITHUB_API_TOKEN = { env = "GITHUB_API_TOKEN" }

[[builders]]
name = "test"
labels = ["linux"]
params = { MODE = { allowed = ["debug", "release"], default = "debug" } }

[[builders.steps]]
name = "show"
run = 'echo "built $BURST_REPO $BURST_BRANCH $BURST_REVISION pr=${BURST_PR:-none} $BURST_EVENT $MODE"'
"#;

const HOOKS: &str = r#"
[[sources]]
name = "gh"
kind = "github"
secret = "HOOK_SECRET"
repo = "acme/app"

[[sources]]
name = "gl"
kind = "gitlab"
secret = "GITLAB_TOKEN"

[[sources]]
name = "deploy"
kind = "generic"
secret = "GENERIC_TOKEN"
builders = ["test"]

[[rules]]
source = "gh"
builders = ["test"]
branches = ["main"]
params = { MODE = "release" }

[[rules]]
source = "gl"
builders = ["test"]
events = ["pull_request"]
"#;

async fn master_with(sections: &str) -> anyhow::Result<Master> {
    MasterBuilder::config(&format!("{BASE}{sections}"))
        .env("HOOK_SECRET", HOOK_SECRET)
        .env("GITLAB_TOKEN", GITLAB_TOKEN)
        .env("GENERIC_TOKEN", GENERIC_TOKEN)
        .env("GITHUB_API_TOKEN", API_TOKEN)
        .start()
        .await
}

/// POSTs raw `body` with `headers`; (status, JSON answer).
async fn post(
    master: &Master,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> anyhow::Result<(u16, Value)> {
    let url = format!("{}{path}", master.url());
    let mut rb = reqwest::Client::new().post(&url).body(body);
    for (k, v) in headers {
        rb = rb.header(*k, v);
    }
    let resp = rb.send().await.with_context(|| format!("POST {url}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// A GitHub delivery of `event`, signed with `secret`.
async fn github(
    master: &Master,
    event: &str,
    delivery: &str,
    body: &Value,
    secret: &str,
) -> anyhow::Result<(u16, Value)> {
    let bytes = serde_json::to_vec(body)?;
    let headers = [
        ("x-github-event", event.to_owned()),
        ("x-github-delivery", delivery.to_owned()),
        ("x-hub-signature-256", github_signature(secret, &bytes)),
        ("content-type", "application/json".to_owned()),
    ];
    post(master, "/hooks/github", &headers, bytes).await
}

fn push_of(revision: &str) -> Value {
    let mut v: Value = serde_json::from_str(GITHUB_PUSH).unwrap_or_default();
    v["after"] = json!(revision);
    v
}

fn builds_of(answer: &Value) -> Vec<BuildId> {
    answer["builds"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

async fn all_builds(master: &Master) -> anyhow::Result<Vec<Value>> {
    master.api_get("/api/v1/builds?limit=1000").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_github_push_builds_its_revision_once() -> anyhow::Result<()> {
    let master = master_with(HOOKS).await?;
    let rev = "1111111111111111111111111111111111111111";
    let (status, answer) = github(&master, "push", "d-1", &push_of(rev), HOOK_SECRET).await?;
    assert_eq!(status, 202, "{answer}");
    let ids = builds_of(&answer);
    assert_eq!(ids.len(), 1, "{answer}");
    let build = master.finished_json(ids[0], BUILD_WAIT).await?;
    assert_eq!(build["state"], "succeeded", "{build:#}");
    let params = &build["params"];
    assert_eq!(params["BURST_REPO"], "acme/app");
    assert_eq!(params["BURST_BRANCH"], "main");
    assert_eq!(params["BURST_REVISION"], rev);
    assert_eq!(params["BURST_EVENT"], "push");
    assert_eq!(params["MODE"], "release");
    assert_eq!(build["submitted_by"], "source:gh");
    let log = master.log_text(ids[0]).await?;
    assert!(
        log.contains(&format!("built acme/app main {rev} pr=none push release")),
        "{log}"
    );

    // A redelivery of the same delivery starts nothing.
    let (status, answer) = github(&master, "push", "d-1", &push_of(rev), HOOK_SECRET).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "duplicate");
    assert_eq!(all_builds(&master).await?.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_badly_signed_and_oversized_hooks_are_refused_and_logged() -> anyhow::Result<()> {
    let master = master_with(HOOKS).await?;
    let body = serde_json::to_vec(&push_of(&"2".repeat(40)))?;
    let unsigned = [
        ("x-github-event", "push".to_owned()),
        ("x-github-delivery", "u-1".to_owned()),
    ];
    let (status, answer) = post(&master, "/hooks/github", &unsigned, body.clone()).await?;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = github(
        &master,
        "push",
        "u-2",
        &push_of(&"2".repeat(40)),
        "wrong-secret-value",
    )
    .await?;
    assert_eq!(status, 401, "{answer}");
    // A signature over other bytes than those sent.
    let mut headers = unsigned.to_vec();
    headers.push((
        "x-hub-signature-256",
        github_signature(HOOK_SECRET, b"other"),
    ));
    let (status, _) = post(&master, "/hooks/github", &headers, body).await?;
    assert_eq!(status, 401);
    // An API token is no way in either.
    let (status, _) = master
        .api_request(
            reqwest::Method::POST,
            "/hooks/github",
            Some(&master.admin_token()),
            &[("x-github-event", "push")],
            Some(&push_of(&"2".repeat(40))),
        )
        .await?;
    assert_eq!(status, 401);
    // GitLab and generic: a wrong or missing token.
    let mr: Value = serde_json::from_str(GITLAB_MR)?;
    let gl = [
        ("x-gitlab-event", "Merge Request Hook".to_owned()),
        ("x-gitlab-token", "not-the-token".to_owned()),
    ];
    let (status, _) = post(&master, "/hooks/gitlab", &gl, serde_json::to_vec(&mr)?).await?;
    assert_eq!(status, 401);
    let (status, _) = post(&master, "/hooks/generic/deploy", &[], b"{}".to_vec()).await?;
    assert_eq!(status, 401);
    let (status, _) = post(
        &master,
        "/hooks/generic/nope",
        &[("authorization", format!("Bearer {GENERIC_TOKEN}"))],
        b"{}".to_vec(),
    )
    .await?;
    assert_eq!(status, 401, "an unknown source looks like a wrong token");
    // Past the body limit: 413, before any signature is computed.
    let huge = vec![b' '; 6 * 1024 * 1024];
    let (status, _) = post(&master, "/hooks/github", &unsigned, huge).await?;
    assert_eq!(status, 413);

    // The read-only trigger views stay behind the token guard.
    let (status, _) = master
        .api_request(reqwest::Method::GET, "/api/v1/sources", None, &[], None)
        .await?;
    assert_eq!(status, 401);

    assert!(all_builds(&master).await?.is_empty());
    let log = master.log();
    assert!(
        log.contains("refused webhook: unsigned"),
        "{}",
        master.log_tail()
    );
    assert!(
        log.contains("matches no github source's secret"),
        "{}",
        master.log_tail()
    );
    assert!(log.contains("X-Gitlab-Token matches no gitlab source's secret"));
    assert!(!log.contains(HOOK_SECRET) && !log.contains(GITLAB_TOKEN));
    let metrics = master.metrics().await?;
    assert!(
        metrics.contains("burst_hook_refusals_total{kind=\"github\",reason=\"bad_signature\"} 2"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ignored_events_other_repos_and_branches_start_nothing() -> anyhow::Result<()> {
    let master = master_with(HOOKS).await?;
    let (status, answer) = github(
        &master,
        "issues",
        "i-1",
        &json!({"action": "opened"}),
        HOOK_SECRET,
    )
    .await?;
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("ignored")),
        "{answer}"
    );
    let mut other = push_of(&"3".repeat(40));
    other["repository"]["full_name"] = json!("evil/fork");
    let (status, answer) = github(&master, "push", "i-2", &other, HOOK_SECRET).await?;
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("ignored")),
        "{answer}"
    );
    let mut feature = push_of(&"3".repeat(40));
    feature["ref"] = json!("refs/heads/feature/x");
    let (status, answer) = github(&master, "push", "i-3", &feature, HOOK_SECRET).await?;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["rules"], json!([]), "{answer}");
    // A hostile branch name never reaches a build.
    let mut hostile = push_of(&"3".repeat(40));
    hostile["ref"] = json!("refs/heads/main$(id)");
    let (status, answer) = github(&master, "push", "i-4", &hostile, HOOK_SECRET).await?;
    assert_eq!(status, 422, "{answer}");
    assert!(all_builds(&master).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn github_pull_requests_and_gitlab_merge_requests_carry_their_number() -> anyhow::Result<()> {
    let rules = HOOKS.replace("branches = [\"main\"]\n", "");
    let master = master_with(&rules).await?;
    let pr: Value = serde_json::from_str(GITHUB_PR)?;
    let (status, answer) = github(&master, "pull_request", "p-1", &pr, HOOK_SECRET).await?;
    assert_eq!(status, 202, "{answer}");
    let id = builds_of(&answer)[0];
    let b = master.finished_json(id, BUILD_WAIT).await?;
    assert_eq!(b["params"]["BURST_PR"], "2");
    assert_eq!(b["params"]["BURST_BRANCH"], "changes");
    assert_eq!(b["params"]["BURST_EVENT"], "pull_request");
    assert_eq!(
        b["params"]["BURST_REVISION"],
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    );

    let mr: Value = serde_json::from_str(GITLAB_MR)?;
    let gl = [
        ("x-gitlab-event", "Merge Request Hook".to_owned()),
        ("x-gitlab-token", GITLAB_TOKEN.to_owned()),
        ("idempotency-key", "gl-1".to_owned()),
    ];
    let (status, answer) = post(&master, "/hooks/gitlab", &gl, serde_json::to_vec(&mr)?).await?;
    assert_eq!(status, 202, "{answer}");
    let id = builds_of(&answer)[0];
    let b = master.finished_json(id, BUILD_WAIT).await?;
    assert_eq!(b["state"], "succeeded");
    assert_eq!(b["params"]["BURST_REPO"], "gitlabhq/gitlab-test");
    assert_eq!(b["params"]["BURST_PR"], "1");
    let (status, _) = post(&master, "/hooks/gitlab", &gl, serde_json::to_vec(&mr)?).await?;
    assert_eq!(status, 200, "a GitLab retry with the same Idempotency-Key");
    assert_eq!(all_builds(&master).await?.len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generic_hook_starts_its_builders_with_declared_params() -> anyhow::Result<()> {
    let master = master_with(HOOKS).await?;
    let auth = [("authorization", format!("Bearer {GENERIC_TOKEN}"))];
    let body = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
    let (status, answer) = post(
        &master,
        "/hooks/generic/deploy",
        &auth,
        body(json!({"builder": "test", "params": {"MODE": "release"}})),
    )
    .await?;
    assert_eq!(status, 201, "{answer}");
    let b = master
        .finished_json(builds_of(&answer)[0], BUILD_WAIT)
        .await?;
    assert_eq!(b["state"], "succeeded");
    assert_eq!(b["params"]["MODE"], "release");
    // Params follow the submit rules: BURST_* may not be forged.
    let (status, answer) = post(
        &master,
        "/hooks/generic/deploy",
        &auth,
        body(json!({"builder": "test", "params": {"BURST_REVISION": "x"}})),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = post(
        &master,
        "/hooks/generic/deploy",
        &auth,
        body(json!({"builder": "other"})),
    )
    .await?;
    assert_eq!(status, 403);
    let (status, _) = post(
        &master,
        "/hooks/generic/deploy",
        &auth,
        b"not json".to_vec(),
    )
    .await?;
    assert_eq!(status, 400);
    assert_eq!(all_builds(&master).await?.len(), 1);
    Ok(())
}

fn poll_source(url: &str) -> String {
    format!(
        r#"
[[sources]]
name = "repo"
kind = "git-poll"
url = "{url}"
branches = ["main", "release/*"]
interval = "1s"

[[rules]]
source = "repo"
builders = ["test"]
"#
    )
}

/// Builds whose BURST_REVISION is `rev`.
async fn builds_of_revision(master: &Master, rev: &str) -> anyhow::Result<usize> {
    Ok(all_builds(master)
        .await?
        .iter()
        .filter(|b| b["params"]["BURST_REVISION"] == rev)
        .count())
}

/// Waits until the poller has polled `n` more times than now.
async fn polls_pass(master: &Master, n: u64) -> anyhow::Result<()> {
    let count = |text: String| {
        text.lines()
            .find(|l| l.starts_with("burst_source_polls_total{") && l.contains("outcome=\"ok\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    let start = count(master.metrics().await?);
    wait::until("the poller to poll again", BUILD_WAIT, || async {
        Ok((count(master.metrics().await?) >= start + n).then_some(()))
    })
    .await
}

async fn poller_builds_each_new_head_once(url: String, repo: &GitRepo) -> anyhow::Result<()> {
    let mut master = master_with(&poll_source(&url)).await?;
    // The first poll records the heads and builds nothing.
    polls_pass(&master, 2).await?;
    assert!(all_builds(&master).await?.is_empty());

    let rev = repo.commit("main", "second").await?;
    wait::until("a build of the new head", BUILD_WAIT, || async {
        Ok((builds_of_revision(&master, &rev).await? == 1).then_some(()))
    })
    .await?;
    let release = repo.commit("release/1", "on-release").await?;
    wait::until("a build of the new branch", BUILD_WAIT, || async {
        Ok((builds_of_revision(&master, &release).await? == 1).then_some(()))
    })
    .await?;
    // Not a watched branch.
    repo.commit("feature/x", "ignored").await?;
    polls_pass(&master, 2).await?;
    assert_eq!(all_builds(&master).await?.len(), 2);

    // A restart remembers the heads: nothing is built again.
    master.sigterm_and_wait(Duration::from_secs(30)).await?;
    master.restart().await?;
    polls_pass(&master, 2).await?;
    assert_eq!(all_builds(&master).await?.len(), 2);
    let third = repo.commit("main", "third").await?;
    wait::until("a build after the restart", BUILD_WAIT, || async {
        Ok((builds_of_revision(&master, &third).await? == 1).then_some(()))
    })
    .await?;
    polls_pass(&master, 2).await?;
    assert_eq!(all_builds(&master).await?.len(), 3);
    let sources: Vec<Value> = master.api_get("/api/v1/sources").await?;
    assert_eq!(sources[0]["poll"]["failures"], 0, "{sources:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_poller_over_file_urls_builds_each_new_head_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let repo = GitRepo::new(dir.path()).await?;
    poller_builds_each_new_head_once(repo.file_url(), &repo).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_poller_over_git_daemon_builds_each_new_head_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let repo = GitRepo::new(dir.path()).await?;
    let daemon = GitDaemon::start(dir.path()).await?;
    poller_builds_each_new_head_once(daemon.url("repo.git"), &repo).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_poll_backs_off_and_shows_in_the_api_and_metrics() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = format!("file://{}/nothing-here.git", dir.path().display());
    let master = master_with(&poll_source(&missing)).await?;
    let sources = wait::until_seen(
        "the poll failures to show",
        BUILD_WAIT,
        || master.api_get::<Vec<Value>>("/api/v1/sources"),
        |s| s[0]["poll"]["failures"].as_u64().is_some_and(|n| n >= 2),
    )
    .await?;
    let error = sources[0]["poll"]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("git ls-remote failed"), "{error}");
    // It backs off: after two failures in a row the wait is at least twice
    // the 1s interval (the backoff's floor for its second delay).
    let sources = wait::until_seen(
        "the backoff to show",
        BUILD_WAIT,
        || master.api_get::<Vec<Value>>("/api/v1/sources"),
        |s| s[0]["poll"]["failures"].as_u64() >= Some(2) && s[0]["poll"]["retry_in_ms"].is_u64(),
    )
    .await?;
    let poll = &sources[0]["poll"];
    let failures = poll["failures"].as_u64().unwrap_or(0);
    let retry_in = poll["retry_in_ms"].as_u64().unwrap_or(0);
    let floor = 1000 * (1u64 << (failures.min(10) - 1));
    assert!(retry_in >= floor.min(15 * 60 * 1000), "{poll:#}");
    assert!(
        poll["next_poll_at"].as_i64() > poll["last_poll_at"].as_i64(),
        "{poll:#}"
    );
    // And the sources page shows it.
    let page = master.ui_get("/sources").await?;
    assert!(page.contains("id=\"source-repo\""), "{page}");
    assert!(page.contains("git ls-remote failed"), "{page}");
    assert!(page.contains("class=\"failures\""), "{page}");
    let metrics = master.metrics().await?;
    assert!(
        metrics.contains("burst_source_polls_total{source=\"repo\",outcome=\"failed\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("burst_source_poll_failing{source=\"repo\"}"),
        "{metrics}"
    );
    assert!(master.log().contains("poll failed"));
    Ok(())
}

fn reporter(forge: &FakeForge) -> String {
    format!(
        r#"
[[reporters]]
name = "github"
kind = "github"
sources = ["gh"]
token = "GITHUB_API_TOKEN"
url = "{}/api/v3"
build_url = "https://ci.example.com"
"#,
        forge.url()
    )
}

/// The status states the fake received, in order.
fn states(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|c| c.body["state"].as_str().unwrap_or("?").to_owned())
        .collect()
}

async fn wait_states(
    forge: &FakeForge,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> anyhow::Result<Vec<Call>> {
    wait::until_seen(
        what,
        BUILD_WAIT,
        || async { Ok(forge.calls()) },
        |calls| done(&states(calls)),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn github_statuses_follow_the_build_through_retries() -> anyhow::Result<()> {
    let forge = FakeForge::start().await?;
    // The first try fails, the second is rate limited; the rest work.
    forge.script([Answer::status(502), Answer::rate_limited(1)]);
    let master = master_with(&format!("{HOOKS}{}", reporter(&forge))).await?;
    let rev = "4444444444444444444444444444444444444444";
    let (status, answer) = github(&master, "push", "r-1", &push_of(rev), HOOK_SECRET).await?;
    assert_eq!(status, 202, "{answer}");
    let id = builds_of(&answer)[0];
    master.finished_json(id, BUILD_WAIT).await?;
    let calls = wait_states(&forge, "a success status", |s| {
        s.last().is_some_and(|l| l == "success")
    })
    .await?;
    for c in &calls {
        assert_eq!(c.method, "POST");
        assert_eq!(c.path, format!("/api/v3/repos/acme/app/statuses/{rev}"));
        assert_eq!(
            c.header("authorization"),
            Some(format!("Bearer {API_TOKEN}").as_str())
        );
        assert_eq!(c.header("accept"), Some("application/vnd.github+json"));
        assert_eq!(c.body["context"], "burst/test");
        assert_eq!(
            c.body["target_url"],
            format!("https://ci.example.com/builds/{id}")
        );
    }
    // pending first (answered 502), success last (after the 403); never
    // a pending after a success: an older state still waiting is
    // superseded by the newer one, never sent after it.
    let s = states(&calls);
    assert_eq!(s[0], "pending", "{s:?}");
    assert_eq!(s.last().map(String::as_str), Some("success"), "{s:?}");
    let first_success = s.iter().position(|x| x == "success").unwrap_or(s.len());
    assert!(s[first_success..].iter().all(|x| x == "success"), "{s:?}");
    assert!(s[..first_success].iter().all(|x| x == "pending"), "{s:?}");
    let reports_path = format!("/api/v1/builds/{id}/reports");
    wait::until_seen(
        "the success report marked delivered",
        BUILD_WAIT,
        || master.api_get::<Vec<Value>>(&reports_path),
        |r| {
            r.iter()
                .any(|r| r["state"] == "succeeded" && !r["delivered_at"].is_null())
        },
    )
    .await?;
    let metrics = master.metrics().await?;
    assert!(
        metrics.contains("burst_report_deliveries_total{reporter=\"github\",result=\"retry\"} 2"),
        "{metrics}"
    );
    assert!(!master.log().contains(API_TOKEN));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_outbox_survives_a_master_sigkill() -> anyhow::Result<()> {
    let forge = FakeForge::start().await?;
    // GitHub is down while the build runs.
    forge.otherwise(Some(Answer::status(502)));
    let mut master = master_with(&format!("{HOOKS}{}", reporter(&forge))).await?;
    let rev = "5555555555555555555555555555555555555555";
    let (_, answer) = github(&master, "push", "k-1", &push_of(rev), HOOK_SECRET).await?;
    let id = builds_of(&answer)[0];
    let b = master.finished_json(id, BUILD_WAIT).await?;
    assert_eq!(b["state"], "succeeded");
    let reports_path = format!("/api/v1/builds/{id}/reports");
    wait::until_seen(
        "the success status to be queued",
        BUILD_WAIT,
        || master.api_get::<Vec<Value>>(&reports_path),
        |r| {
            r.iter()
                .any(|r| r["state"] == "succeeded" && r["attempts"].as_u64() >= Some(1))
        },
    )
    .await?;
    master.sigkill();
    forge.otherwise(None);
    let before = forge.calls().len();
    master.restart().await?;
    let calls = wait_states(&forge, "the success status after the restart", |s| {
        s.len() > before && s.last().is_some_and(|l| l == "success")
    })
    .await?;
    assert!(
        calls[before..].iter().all(|c| c.body["state"] == "success"),
        "{:?}",
        states(&calls)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gitlab_and_generic_reporters_send_their_own_shapes() -> anyhow::Result<()> {
    let gitlab = FakeForge::start().await?;
    let hook = FakeForge::start().await?;
    let reporters = format!(
        r#"
[[reporters]]
name = "gitlab"
kind = "gitlab"
sources = ["gl"]
token = "GITHUB_API_TOKEN"
url = "{}/api/v4"

[[reporters]]
name = "hook"
kind = "generic"
sources = ["gl"]
token = "GENERIC_TOKEN"
url = "{}/burst-events"
context = "ci"
"#,
        gitlab.url(),
        hook.url()
    );
    let master = master_with(&format!("{HOOKS}{reporters}")).await?;
    let mr: Value = serde_json::from_str(GITLAB_MR)?;
    let headers = [
        ("x-gitlab-event", "Merge Request Hook".to_owned()),
        ("x-gitlab-token", GITLAB_TOKEN.to_owned()),
    ];
    let (status, answer) =
        post(&master, "/hooks/gitlab", &headers, serde_json::to_vec(&mr)?).await?;
    assert_eq!(status, 202, "{answer}");
    let id = builds_of(&answer)[0];
    master.finished_json(id, BUILD_WAIT).await?;

    let sha = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    let calls = wait_states(&gitlab, "a GitLab success status", |s| {
        s.last().is_some_and(|l| l == "success")
    })
    .await?;
    let s = states(&calls);
    assert_eq!(s[0], "pending", "{s:?}");
    for c in &calls {
        assert_eq!(
            c.path,
            format!("/api/v4/projects/gitlabhq%2Fgitlab-test/statuses/{sha}")
        );
        assert_eq!(c.header("private-token"), Some(API_TOKEN));
        assert_eq!(c.body["name"], "burst/test");
        assert_eq!(c.body["ref"], "ms-viewport");
    }

    let calls = wait::until_seen(
        "the generic hook's final state",
        BUILD_WAIT,
        || async { Ok(hook.calls()) },
        |calls| calls.last().is_some_and(|c| c.body["state"] == "succeeded"),
    )
    .await?;
    assert_eq!(calls[0].body["state"], "queued");
    for c in &calls {
        assert_eq!(c.path, "/burst-events");
        assert_eq!(
            c.header("authorization"),
            Some(format!("Bearer {GENERIC_TOKEN}").as_str())
        );
        assert_eq!(c.body["build"], id);
        assert_eq!(c.body["context"], "ci/test");
        assert_eq!(c.body["source"]["BURST_PR"], "1");
        assert_eq!(c.body["source"]["BURST_REVISION"], sha);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_state_of_a_fast_build_is_reported_once_in_order() -> anyhow::Result<()> {
    let gh_forge = FakeForge::start().await?;
    let gitlab = FakeForge::start().await?;
    let hook = FakeForge::start().await?;
    // The build's one step takes no time: a reporter reading states now
    // and then would see queued, then succeeded, and skip running.
    let reporters = format!(
        r#"{}
[[reporters]]
name = "gitlab"
kind = "gitlab"
sources = ["gh"]
token = "GITHUB_API_TOKEN"
url = "{}/api/v4"

[[reporters]]
name = "hook"
kind = "generic"
sources = ["gh"]
url = "{}/events"
"#,
        reporter(&gh_forge),
        gitlab.url(),
        hook.url()
    );
    let master = master_with(&format!("{HOOKS}{reporters}")).await?;
    let rev = "6666666666666666666666666666666666666666";
    let (status, answer) = github(&master, "push", "o-1", &push_of(rev), HOOK_SECRET).await?;
    assert_eq!(status, 202, "{answer}");
    let id = builds_of(&answer)[0];
    let b = master.finished_json(id, BUILD_WAIT).await?;
    assert_eq!(b["state"], "succeeded", "{b:#}");
    let done = |want: usize| move |s: &[String]| s.len() >= want;
    let gl = wait_states(&gitlab, "three GitLab statuses", done(3)).await?;
    let gh = wait_states(&gh_forge, "three GitHub statuses", done(3)).await?;
    let events = wait_states(&hook, "three generic events", done(3)).await?;
    // Nothing more trickles in.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(states(&gitlab.calls()), ["pending", "running", "success"]);
    assert_eq!(states(&hook.calls()), ["queued", "running", "succeeded"]);
    // GitHub has no running state: pending twice, told apart by the
    // description.
    assert_eq!(states(&gh_forge.calls()), ["pending", "pending", "success"]);
    let descriptions: Vec<&str> = gh
        .iter()
        .map(|c| c.body["description"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(descriptions, ["queued", "running", "succeeded"]);
    assert_eq!(gl.len(), 3);
    assert_eq!(events.len(), 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_deliveries_show_on_the_build_page_and_in_metrics() -> anyhow::Result<()> {
    let forge = FakeForge::start().await?;
    // GitHub refuses every status (a 422 is not worth retrying).
    forge.otherwise(Some(Answer::status(422)));
    let master = master_with(&format!("{HOOKS}{}", reporter(&forge))).await?;
    let rev = "7777777777777777777777777777777777777777";
    let (_, answer) = github(&master, "push", "f-1", &push_of(rev), HOOK_SECRET).await?;
    let id = builds_of(&answer)[0];
    master.finished_json(id, BUILD_WAIT).await?;
    let reports_path = format!("/api/v1/builds/{id}/reports");
    wait::until_seen(
        "every report given up",
        BUILD_WAIT,
        || master.api_get::<Vec<Value>>(&reports_path),
        |r| r.len() == 3 && r.iter().all(|r| r["gave_up"] == true),
    )
    .await?;
    let page = master.ui_get(&format!("/builds/{id}")).await?;
    assert!(page.contains("id=\"reports\""), "{page}");
    assert!(page.contains("id=\"reports-failing\""), "{page}");
    for state in ["queued", "running", "succeeded"] {
        assert!(
            page.contains(&format!(
                "data-reporter=\"github\" data-state=\"{state}\" data-result=\"gave_up\""
            )),
            "{state}: {page}"
        );
    }
    assert!(page.contains("answered 422"), "{page}");
    let metrics = master.metrics().await?;
    assert!(
        metrics.contains("burst_report_deliveries_total{reporter=\"github\",result=\"gave_up\"} 3"),
        "{metrics}"
    );
    // A build that was never triggered has no reports section.
    let plain = master.submit("test", &[]).await?[0];
    master.finished_json(plain, BUILD_WAIT).await?;
    let page = master.ui_get(&format!("/builds/{plain}")).await?;
    assert!(!page.contains("id=\"reports\""), "{page}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_polled_push_is_filtered_by_the_paths_it_changed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let repo = GitRepo::new(dir.path()).await?;
    // As GitHub and GitLab do: the server lets clients leave blobs out.
    burst_e2e::git_repo::git(&repo.bare, &["config", "uploadpack.allowFilter", "true"]).await?;
    let daemon = GitDaemon::start(dir.path()).await?;
    let source = poll_source(&daemon.url("repo.git")).replace(
        "builders = [\"test\"]\n",
        "builders = [\"test\"]\npaths = [\"src/**\"]\n",
    );
    let master = master_with(&source).await?;
    polls_pass(&master, 2).await?;
    // Only docs change: the rule skips it.
    let docs = repo
        .commit_files("main", &[("docs/readme.md", "words\n")], "docs")
        .await?;
    polls_pass(&master, 3).await?;
    assert_eq!(builds_of_revision(&master, &docs).await?, 0);
    assert!(all_builds(&master).await?.is_empty());
    assert!(
        master.log().contains("change matches no rule"),
        "{}",
        master.log()
    );
    // Two commits at once, one under src/: one build of the newest.
    repo.commit_files("main", &[("docs/more.md", "more\n")], "more docs")
        .await?;
    let code = repo
        .commit_files("main", &[("src/lib.rs", "pub fn f() {}\n")], "code")
        .await?;
    wait::until("a build of the code change", BUILD_WAIT, || async {
        Ok((builds_of_revision(&master, &code).await? == 1).then_some(()))
    })
    .await?;
    polls_pass(&master, 2).await?;
    assert_eq!(all_builds(&master).await?.len(), 1);
    // The master keeps commits and trees only: no file contents.
    let trees = master.state_dir().join("poll-trees").join("repo.git");
    let blobs = burst_e2e::git_repo::git(
        &trees,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objecttype)",
        ],
    )
    .await?;
    assert!(!blobs.lines().any(|t| t == "blob"), "{blobs}");
    assert!(blobs.lines().any(|t| t == "tree"), "{blobs}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_pollers_token_is_a_header_never_an_argument_or_a_log_line() -> anyhow::Result<()> {
    // An https-like server that holds every answer back, so the test can
    // read git's command line while ls-remote waits, then refuses.
    let forge = FakeForge::start().await?;
    forge.otherwise(Some(Answer::status(401)));
    forge.hold(Duration::from_secs(2));
    let url = format!("{}/acme/app.git", forge.url());
    let source = poll_source(&url).replace(
        "interval = \"1s\"\n",
        "interval = \"1s\"\nsecret = \"GITHUB_API_TOKEN\"\n",
    );
    let master = master_with(&source).await?;
    wait::until("ls-remote to ask the server", BUILD_WAIT, || async {
        Ok((!forge.calls().is_empty()).then_some(()))
    })
    .await?;
    let shown = burst_e2e::procs::matching(&[API_TOKEN]);
    assert!(
        shown.is_empty(),
        "a command line shows the token: {shown:?}"
    );
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{API_TOKEN}"));
    let call = &forge.calls()[0];
    assert_eq!(
        call.header("authorization"),
        Some(format!("Basic {basic}").as_str()),
        "{call:?}"
    );
    let sources = wait::until_seen(
        "the refused poll to show",
        BUILD_WAIT,
        || master.api_get::<Vec<Value>>("/api/v1/sources"),
        |s| s[0]["poll"]["failures"].as_u64() >= Some(1),
    )
    .await?;
    let shown = format!("{sources:?}{}", master.log());
    assert!(
        !shown.contains(API_TOKEN) && !shown.contains(&basic),
        "{shown}"
    );
    Ok(())
}
