//! The hub on virtual time: rules, the tree-stable collapse, source params
//! and `cancel_superseded`, with a recording submitter.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::hub::{Hub, HubHandle, Submitter};
use super::{Change, Event};
use crate::config::{load_str_with_secret_env, Config};
use crate::metrics::Metrics;
use crate::model::{BuildId, BuildState, NewBuild};
use crate::scheduler::SchedError;
use crate::store::{MemoryStore, Store, TriggerStore};

#[derive(Default)]
struct Recorder {
    submitted: Mutex<Vec<(BuildId, NewBuild)>>,
    cancelled: Mutex<Vec<BuildId>>,
}

#[async_trait]
impl Submitter for Recorder {
    async fn submit(&self, builds: Vec<NewBuild>) -> Result<Vec<BuildId>, SchedError> {
        let mut s = self.submitted.lock().unwrap();
        let mut ids = Vec::new();
        for b in builds {
            let id = s.len() as BuildId + 1;
            s.push((id, b));
            ids.push(id);
        }
        Ok(ids)
    }

    async fn cancel(&self, build: BuildId) -> Result<BuildState, SchedError> {
        self.cancelled.lock().unwrap().push(build);
        Ok(BuildState::Cancelled)
    }
}

impl Recorder {
    fn revisions(&self) -> Vec<String> {
        self.submitted
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.params["BURST_REVISION"].clone())
            .collect()
    }
}

pub(super) const CONFIG: &str = r#"
[pools.local]
provider = "local"

[secrets]
HOOK_SECRET = { env = "HOOK_SECRET" }

[[builders]]
name = "test"
params = { MODE = { allowed = ["debug", "release"] } }
steps = [{ name = "s", run = "true" }]

[[builders]]
name = "docs"
steps = [{ name = "s", run = "true" }]

[[sources]]
name = "gh"
kind = "github"
secret = "HOOK_SECRET"
repo = "acme/app"

[[rules]]
source = "gh"
builders = ["test"]
branches = ["main"]
events = ["push"]
tree_stable = "10s"
cancel_superseded = true
params = { MODE = "release" }

[[rules]]
source = "gh"
builders = ["docs"]
paths = ["docs/**"]
"#;

pub(super) fn config(text: &str) -> Config {
    let env = |var: &str| (var == "HOOK_SECRET").then(|| "hook-secret-value".into());
    match load_str_with_secret_env(text, Path::new("test.toml"), &BTreeMap::new(), &env) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn start(text: &str) -> (HubHandle, Arc<Recorder>, Arc<MemoryStore>) {
    let recorder = Arc::new(Recorder::default());
    let store = Arc::new(MemoryStore::new());
    let (hub, handle) = Hub::new(
        Arc::new(config(text)),
        store.clone() as Arc<dyn Store>,
        recorder.clone(),
        Arc::new(Metrics::new()),
    );
    tokio::spawn(hub.run());
    (handle, recorder, store)
}

fn push(branch: &str, n: u8, paths: &[&str]) -> Change {
    Change {
        source: "gh".into(),
        repo: "acme/app".into(),
        branch: branch.into(),
        base: None,
        revision: format!("{:040x}", n),
        pr: None,
        event: Event::Push,
        paths: Some(paths.iter().map(|s| s.to_string()).collect()),
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_pushes_is_one_build_of_the_newest_revision() {
    let (hub, rec, _) = start(CONFIG);
    for n in 1..=3 {
        let outcome = hub.offer(push("main", n, &["src/a.rs"])).await.unwrap();
        assert_eq!(outcome.rules, vec![0]);
        assert_eq!(outcome.waiting, 1);
        assert!(outcome.builds.is_empty());
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    // 4 s after the last push: still waiting for 10 quiet seconds.
    assert!(rec.revisions().is_empty());
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(rec.revisions(), vec![format!("{:040x}", 3)]);
    let (_, build) = rec.submitted.lock().unwrap()[0].clone();
    assert_eq!(build.builder, "test");
    assert_eq!(build.submitted_by.as_deref(), Some("source:gh"));
    assert_eq!(build.params["MODE"], "release");
    assert_eq!(build.params["BURST_REPO"], "acme/app");
    // Where a checkout step fetches it: GitHub's clone URL by default.
    assert_eq!(
        build.params["BURST_REPO_URL"],
        "https://github.com/acme/app.git"
    );
    assert_eq!(build.params["BURST_BRANCH"], "main");
    assert_eq!(build.params["BURST_EVENT"], "push");
    assert!(!build.params.contains_key("BURST_PR"));
    assert_eq!(build.steps[0].env["BURST_REVISION"], format!("{:040x}", 3));
    // Nothing more comes later.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(rec.revisions().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_newer_push_cancels_the_build_it_supersedes() {
    let (hub, rec, store) = start(CONFIG);
    hub.offer(push("main", 1, &[])).await.unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    hub.offer(push("main", 2, &[])).await.unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(rec.revisions().len(), 2);
    assert_eq!(*rec.cancelled.lock().unwrap(), vec![1]);
    // Without a reporter nothing is watched.
    assert!(store.watched_builds().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn changed_paths_pick_the_rules() {
    let (hub, rec, _) = start(CONFIG);
    // Rule 1 (docs/**, any branch, no timer) builds at once.
    let o = hub
        .offer(push("feature/x", 1, &["docs/guide.md"]))
        .await
        .unwrap();
    assert_eq!(o.rules, vec![1]);
    assert_eq!(o.builds.len(), 1);
    // Neither rule: not main, and no docs change.
    let o = hub
        .offer(push("feature/x", 2, &["src/lib.rs"]))
        .await
        .unwrap();
    assert!(o.rules.is_empty());
    // Unknown paths (a push of more commits than listed) never skip.
    let mut unknown = push("feature/x", 3, &[]);
    unknown.paths = None;
    assert_eq!(hub.offer(unknown).await.unwrap().rules, vec![1]);
    assert_eq!(rec.revisions().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_pull_request_builds_its_head_with_its_number() {
    let text = CONFIG
        .replace("events = [\"push\"]\n", "events = [\"pull_request\"]\n")
        .replace("tree_stable = \"10s\"\n", "");
    let (hub, rec, _) = start(&text);
    let pr = Change {
        branch: "feature/y".into(),
        base: Some("main".into()),
        pr: Some(42),
        event: Event::PullRequest,
        paths: None,
        ..push("feature/y", 9, &[])
    };
    let o = hub.offer(pr.clone()).await.unwrap();
    assert_eq!(o.rules, vec![0, 1]);
    let subs = rec.submitted.lock().unwrap().clone();
    let test = subs
        .iter()
        .find(|(_, b)| b.builder == "test")
        .unwrap()
        .clone();
    assert_eq!(test.1.params["BURST_PR"], "42");
    assert_eq!(test.1.params["BURST_BRANCH"], "feature/y");
    assert_eq!(test.1.params["BURST_EVENT"], "pull_request");
    drop(subs);
    // A push to another pull request does not cancel this one's build.
    let other = Change {
        pr: Some(43),
        ..pr.clone()
    };
    hub.offer(other).await.unwrap();
    assert!(rec.cancelled.lock().unwrap().is_empty());
    // A new push to the same one does.
    let again = Change {
        revision: format!("{:040x}", 10),
        ..pr
    };
    hub.offer(again).await.unwrap();
    assert_eq!(*rec.cancelled.lock().unwrap(), vec![test.0]);
}
