//! The built-in checkout step: a polled push builds, and the build's first
//! step fetches exactly that revision into the workspace, on a local
//! worker (over git daemon, shallow and full, with a submodule, through the
//! worker's mirror) and on a Docker worker (the image ships git); a
//! failure names the URL, the revision and git's message, and the token
//! is a header, never an argument.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use burst_e2e::docker_support::{require_docker_and_image, Cleanup, DockerPool};
use burst_e2e::fake_forge::{Answer, FakeForge};
use burst_e2e::git_repo::{git, GitDaemon, GitRepo};
use burst_e2e::{wait, BuildId, Master, MasterBuilder};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);
const TOKEN: &str = "checkout-token-for-tests-0451";

/// What the step after the checkout checks: HEAD is the build's revision,
/// the files are there, and how deep the history is.
const VERIFY: &str = r#"
cd src
test "$(git rev-parse HEAD)" = "$BURST_REVISION" || { echo "HEAD $(git rev-parse HEAD) is not $BURST_REVISION"; exit 1; }
echo "checked out $(git rev-parse HEAD) shallow=$(git rev-parse --is-shallow-repository) files=$(ls | wc -l)"
"#;

pub(crate) fn poll_source(url: &str, builder: &str) -> String {
    format!(
        r#"
[[sources]]
name = "repo"
kind = "git-poll"
url = "{url}"
branches = ["main"]
interval = "1s"

[[rules]]
source = "repo"
builders = ["{builder}"]
"#
    )
}

/// The build of revision `rev`, once there is one.
pub(crate) async fn build_of(master: &Master, rev: &str) -> anyhow::Result<BuildId> {
    wait::until("a build of the pushed revision", WAIT, || async {
        let builds: Vec<Value> = master.api_get("/api/v1/builds?limit=100").await?;
        Ok(builds
            .iter()
            .find(|b| b["params"]["BURST_REVISION"] == rev)
            .and_then(|b| b["id"].as_i64()))
    })
    .await
}

/// Waits for the first poll, which only records the heads.
pub(crate) async fn first_poll(master: &Master) -> anyhow::Result<()> {
    wait::until_seen(
        "the first poll",
        WAIT,
        || master.api_get::<Vec<Value>>("/api/v1/sources"),
        |s| s[0]["poll"]["last_ok_at"].is_number(),
    )
    .await
    .map(|_| ())
}

async fn succeeded(master: &Master, id: BuildId) -> anyhow::Result<(Value, String)> {
    let build = master.finished_json(id, WAIT).await?;
    let log = master.log_text(id).await?;
    anyhow::ensure!(
        build["state"] == "succeeded",
        "build {id} did not succeed: {build:#}\n{log}"
    );
    Ok((build, log))
}

/// `N` of the worker's "the mirror received N new objects" line.
fn received(log: &str) -> Option<u64> {
    log.lines().find_map(|l| {
        let rest = l.split("the mirror received ").nth(1)?;
        rest.split(' ').next()?.parse().ok()
    })
}

/// The one mirror under a local worker's work dir.
fn mirror_of(state_dir: &Path, worker: &str) -> anyhow::Result<PathBuf> {
    let dir = state_dir.join("workers").join(worker).join(".git-mirrors");
    let mirrors: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("no mirror dir {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    anyhow::ensure!(mirrors.len() == 1, "mirrors: {mirrors:?}");
    Ok(mirrors[0].clone())
}

/// Objects the mirror holds, as git itself counts them.
async fn objects(mirror: &Path) -> anyhow::Result<u64> {
    let text = git(mirror, &["count-objects", "-v"]).await?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(field("count:") + field("in-pack:"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_checkout_step_fetches_the_exact_revision_on_a_local_worker_through_its_mirror(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let repo = GitRepo::new(dir.path()).await?;
    let sub_dir = dir.path().join("sub");
    std::fs::create_dir_all(&sub_dir)?;
    let _sub = GitRepo::new(&sub_dir).await?;
    let daemon = GitDaemon::start(dir.path()).await?;
    // The submodule is served by the same daemon (`sub/repo.git`).
    repo.add_submodule("main", &daemon.url("sub/repo.git"), "sub")
        .await?;
    let config = format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1
idle_timeout = "10m"

[[builders]]
name = "co"
labels = ["linux"]

[[builders.steps]]
name = "checkout"
uses = "checkout"
working_dir = "src"
submodules = true

[[builders.steps]]
name = "verify"
run = '''{VERIFY}
test -f sub/first.txt || {{ echo "no submodule"; exit 1; }}
'''

[[builders.steps]]
name = "checkout-full"
checkout = true
working_dir = "full"
full_history = true

[[builders.steps]]
name = "verify-full"
run = 'cd full && echo "history=$(git rev-list --count HEAD) shallow=$(git rev-parse --is-shallow-repository)"'
{}"#,
        poll_source(&daemon.url("repo.git"), "co")
    );
    let master = MasterBuilder::config(&config).start().await?;
    first_poll(&master).await?;

    // A first build: fifty files, so a refetch of them all would show.
    let files: Vec<(String, String)> = (0..50)
        .map(|i| (format!("data/f{i}.txt"), format!("file {i}\n").repeat(40)))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let rev1 = repo.commit_files("main", &refs, "fifty files").await?;
    let id1 = build_of(&master, &rev1).await?;
    let (b1, log1) = succeeded(&master, id1).await?;
    assert!(
        log1.contains(&format!("checked out {rev1} shallow=true")),
        "{log1}"
    );
    assert!(
        log1.contains(&format!("burst checkout: HEAD is {rev1}")),
        "{log1}"
    );
    // Four commits (first, the submodule, fifty files) in the full one.
    assert!(log1.contains("history=3 shallow=false"), "{log1}");
    let first = received(&log1).context("no object count in the first log")?;
    assert!(
        first >= 50,
        "the first fetch received {first} objects\n{log1}"
    );

    let worker = b1["attempts"][0]["worker_id"]
        .as_str()
        .context("no worker")?
        .to_owned();
    let mirror = mirror_of(&master.state_dir(), &worker)?;
    let after_first = objects(&mirror).await?;

    // A second build on the same worker: one file changed.
    let rev2 = repo
        .commit_files("main", &[("data/f7.txt", "changed\n")], "one file")
        .await?;
    let id2 = build_of(&master, &rev2).await?;
    let (b2, log2) = succeeded(&master, id2).await?;
    assert_eq!(b2["attempts"][0]["worker_id"], worker.as_str(), "{b2:#}");
    assert!(
        log2.contains(&format!("checked out {rev2} shallow=true")),
        "{log2}"
    );
    let second = received(&log2).context("no object count in the second log")?;
    // The new commit, its two changed trees and the changed blob; never
    // the fifty files again.
    assert!(
        (1..=5).contains(&second),
        "the second fetch received {second} objects\n{log2}"
    );
    let after_second = objects(&mirror).await?;
    assert!(
        after_second > after_first && after_second - after_first <= 5,
        "the mirror went from {after_first} to {after_second} objects"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_checkout_names_the_url_revision_and_gits_message_and_never_shows_the_token(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let repo = GitRepo::new(dir.path()).await?;
    // An https-like server that refuses the repository, slowly, so the
    // test can look at git's command line while it waits.
    let forge = FakeForge::start().await?;
    forge.otherwise(Some(Answer::status(404)));
    forge.hold(Duration::from_secs(3));
    let url = format!("{}/acme/app.git", forge.url());
    let config = format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]

[secrets]
REPO_TOKEN = {{ env = "REPO_TOKEN" }}

[[builders]]
name = "co"
labels = ["linux"]

[[builders.steps]]
name = "checkout"
checkout = true
url = "{url}"
token = "REPO_TOKEN"

[[builders.steps]]
name = "never"
run = "echo should-not-run"
{}"#,
        poll_source(&repo.file_url(), "co")
    );
    let master = MasterBuilder::config(&config)
        .env("REPO_TOKEN", TOKEN)
        .start()
        .await?;
    first_poll(&master).await?;
    let rev = repo.commit("main", "second").await?;
    let id = build_of(&master, &rev).await?;

    // While git waits for the server: no process shows the token.
    wait::until("git to ask the server", WAIT, || async {
        Ok((!forge.calls().is_empty()).then_some(()))
    })
    .await?;
    let shown = burst_e2e::procs::matching(&[TOKEN]);
    assert!(
        shown.is_empty(),
        "a command line shows the token: {shown:?}"
    );
    let build = master.finished_json(id, WAIT).await?;
    assert_eq!(build["state"], "failed", "{build:#}");
    let steps = &build["attempts"][0]["steps"];
    let error = steps[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains(&url), "{error}");
    assert!(error.contains(&rev), "{error}");
    assert!(error.contains("git fetch failed"), "{error}");
    // git's own words about the refusal.
    assert!(
        error.contains("not found") || error.contains("404"),
        "{error}"
    );
    assert_eq!(steps[1]["state"], "skipped", "{build:#}");

    // The token went as a basic-auth header, and nowhere else.
    let basic = base64_of(&format!("x-access-token:{TOKEN}"));
    let call = &forge.calls()[0];
    assert_eq!(
        call.header("authorization"),
        Some(format!("Basic {basic}").as_str()),
        "{call:?}"
    );
    let log = master.log_text(id).await?;
    let api = serde_json::to_string(&build)?;
    for text in [&log, &api, &master.log()] {
        assert!(!text.contains(TOKEN) && !text.contains(&basic), "{text}");
    }
    assert!(log.contains("checkout of"), "{log}");
    Ok(())
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_checkout_step_fetches_the_exact_revision_on_a_docker_worker() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let dir = tempfile::tempdir()?;
    let repo = GitRepo::new(dir.path()).await?;
    let pool = burst_e2e::docker_support::unique("co");
    let _cleanup = Cleanup::new(&pool);
    // The container sees the bare repository read-only at the same path,
    // so the poll URL is the checkout's too; nothing leaves the machine.
    let bare = repo.bare.display().to_string();
    let docker = DockerPool::new(&pool).docker(&format!("binds = [\"{bare}:{bare}:ro\"]"));
    let master = docker
        .master()
        .section(&format!(
            r#"
[[builders]]
name = "co"
labels = ["{pool}"]

[[builders.steps]]
name = "checkout"
uses = "checkout"
working_dir = "src"

[[builders.steps]]
name = "verify"
run = '''{VERIFY}'''
{}"#,
            poll_source(&repo.file_url(), "co")
        ))
        .start()
        .await?;
    first_poll(&master).await?;
    let rev = repo
        .commit_files("main", &[("src/lib.rs", "pub fn x() {}\n")], "code")
        .await?;
    let id = build_of(&master, &rev).await?;
    let (_, log) = succeeded(&master, id).await?;
    assert!(
        log.contains(&format!("checked out {rev} shallow=true")),
        "{log}"
    );
    Ok(())
}
