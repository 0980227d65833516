//! What every `Store` must do, written once and run against both stores
//! by `contract_tests!`.

use serde_json::json;

use crate::model::{BuildQuery, BuildState, IdempotencyKey, InstanceState, SubmitOnce};
use crate::store::{Store, StoreError};

use super::fixtures::{
    instance, new_build, with_two_attempts, ALL_ATTEMPT_STATES, ALL_BUILD_STATES,
    ALL_INSTANCE_STATES,
};

pub(super) async fn master_id_is_stable(store: &dyn Store) {
    let id = store.master_id().await.unwrap();
    assert_eq!(id.len(), 14, "{id}");
    let hex = id.strip_prefix("m-").unwrap();
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{id}"
    );
    assert_eq!(store.master_id().await.unwrap(), id);
}

pub(super) async fn insert_gives_growing_ids(store: &dyn Store) {
    assert!(store.insert_builds(Vec::new()).await.unwrap().is_empty());
    let first = store
        .insert_builds(vec![new_build("a"), new_build("b"), new_build("c")])
        .await
        .unwrap();
    assert_eq!(first.iter().map(|b| b.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        first.iter().map(|b| b.builder.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    for build in &first {
        assert_eq!(build.state, BuildState::Queued);
        assert!(build.created_at > 0);
        assert!(build.attempts.is_empty());
        assert_eq!(
            store.get_build(build.id).await.unwrap().as_ref(),
            Some(build)
        );
    }
    let expected = new_build("a").into_build(1, first[0].created_at);
    assert_eq!(first[0], expected);

    let second = store
        .insert_builds(vec![new_build("d"), new_build("e")])
        .await
        .unwrap();
    assert_eq!(second.iter().map(|b| b.id).collect::<Vec<_>>(), [4, 5]);
    assert_eq!(store.get_build(6).await.unwrap(), None);
    assert_eq!(store.get_build(0).await.unwrap(), None);
}

pub(super) async fn save_build_round_trips(store: &dyn Store) {
    let inserted = store
        .insert_builds(vec![new_build("a"), new_build("b")])
        .await
        .unwrap();
    let build = with_two_attempts(inserted[0].clone());
    store.save_build(&build).await.unwrap();
    assert_eq!(
        store.get_build(build.id).await.unwrap(),
        Some(build.clone())
    );
    // The other build is untouched.
    assert_eq!(
        store.get_build(2).await.unwrap().as_ref(),
        Some(&inserted[1])
    );

    // Saving again replaces: fewer attempts, fewer steps, changed fields.
    let mut shorter = build.clone();
    shorter.attempts.truncate(1);
    shorter.attempts[0].steps.truncate(1);
    shorter.attempts[0].steps[0].log_bytes = 4096;
    shorter.state = BuildState::Running;
    shorter.reason = None;
    shorter.finished_at = None;
    shorter.labels.push("gpu".to_string());
    store.save_build(&shorter).await.unwrap();
    assert_eq!(store.get_build(build.id).await.unwrap(), Some(shorter));

    // And back to two attempts: nothing of the old rows is in the way.
    store.save_build(&build).await.unwrap();
    assert_eq!(store.get_build(build.id).await.unwrap(), Some(build));
}

pub(super) async fn save_build_orders_attempts_and_steps(store: &dyn Store) {
    let inserted = store.insert_builds(vec![new_build("a")]).await.unwrap();
    let sorted = with_two_attempts(inserted[0].clone());
    let mut shuffled = sorted.clone();
    shuffled.attempts.reverse();
    for attempt in &mut shuffled.attempts {
        attempt.steps.reverse();
    }
    store.save_build(&shuffled).await.unwrap();
    assert_eq!(store.get_build(sorted.id).await.unwrap(), Some(sorted));
}

pub(super) async fn save_builds_saves_all_or_none(store: &dyn Store) {
    let inserted = store
        .insert_builds(vec![new_build("a"), new_build("b")])
        .await
        .unwrap();
    let (a, b) = (
        with_two_attempts(inserted[0].clone()),
        with_two_attempts(inserted[1].clone()),
    );
    store.save_builds(&[&a, &b]).await.unwrap();
    assert_eq!(store.get_build(a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(store.get_build(b.id).await.unwrap().as_ref(), Some(&b));

    // One unknown build: the known one is not written either.
    let mut changed = a.clone();
    changed.state = BuildState::Succeeded;
    changed.finished_at = Some(changed.created_at + 1);
    let mut unknown = b.clone();
    unknown.id = 42;
    let err = store.save_builds(&[&changed, &unknown]).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownBuild(42)), "{err:?}");
    assert_eq!(store.get_build(a.id).await.unwrap().as_ref(), Some(&a));

    // An invalid one, last: nothing written.
    let mut twice = b.clone();
    twice.attempts[1].number = 1;
    let err = store.save_builds(&[&changed, &twice]).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert_eq!(store.get_build(a.id).await.unwrap().as_ref(), Some(&a));

    store.save_builds(&[]).await.unwrap();
    store.save_builds(&[&changed]).await.unwrap();
    assert_eq!(store.get_build(a.id).await.unwrap(), Some(changed));
}

pub(super) async fn save_build_refuses_bad_builds(store: &dyn Store) {
    let inserted = store.insert_builds(vec![new_build("a")]).await.unwrap();
    let good = with_two_attempts(inserted[0].clone());
    store.save_build(&good).await.unwrap();

    let mut unknown = good.clone();
    unknown.id = 42;
    let err = store.save_build(&unknown).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownBuild(42)), "{err:?}");
    assert_eq!(store.get_build(42).await.unwrap(), None);

    let mut twice = good.clone();
    twice.attempts[1].number = 1;
    let err = store.save_build(&twice).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("failed to save build 1"),
        "{err}"
    );

    let mut step_twice = good.clone();
    step_twice.attempts[1].steps[1].index = 0;
    let err = store.save_build(&step_twice).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");

    let mut huge = good.clone();
    huge.attempts[0].steps[0].log_bytes = u64::MAX;
    let err = store.save_build(&huge).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");

    let mut long = good.clone();
    long.attempts[0].steps[0].duration_ms = Some(u64::MAX);
    let err = store.save_build(&long).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");

    // Nothing of the refused writes landed.
    assert_eq!(store.get_build(good.id).await.unwrap(), Some(good));
}

pub(super) async fn list_builds_newest_first(store: &dyn Store) {
    assert!(store.list_builds(10).await.unwrap().is_empty());
    let names = ["a", "b", "c", "d", "e"];
    let inserted = store
        .insert_builds(names.iter().map(|n| new_build(n)).collect())
        .await
        .unwrap();
    let with_attempts = with_two_attempts(inserted[3].clone());
    store.save_build(&with_attempts).await.unwrap();

    let listed = store.list_builds(3).await.unwrap();
    assert_eq!(listed.iter().map(|b| b.id).collect::<Vec<_>>(), [5, 4, 3]);
    assert_eq!(listed[1], with_attempts);
    assert_eq!(listed[0], inserted[4]);

    let all = store.list_builds(100).await.unwrap();
    assert_eq!(
        all.iter().map(|b| b.id).collect::<Vec<_>>(),
        [5, 4, 3, 2, 1]
    );
    assert!(store.list_builds(0).await.unwrap().is_empty());
}

/// Filters reach the whole history, not a window of the newest builds:
/// the one old build that matches is found under 1200 newer ones, and
/// paging by `before` walks every match exactly once.
pub(super) async fn query_builds_filters_the_whole_history_and_pages(store: &dyn Store) {
    let mut old = new_build("rare");
    old.labels = vec!["linux".to_owned(), "gpu".to_owned()];
    old.submitted_by = Some("carol".to_owned());
    let old = store.insert_builds(vec![old]).await.unwrap().remove(0);
    let mut failed = old.clone();
    failed.state = BuildState::Failed;
    store.save_build(&failed).await.unwrap();
    let newer = (0..1200).map(|_| new_build("bulk")).collect();
    let newer = store.insert_builds(newer).await.unwrap();
    let newest = newer.last().unwrap().id;

    let q = |f: fn(&mut BuildQuery)| {
        let mut q = BuildQuery {
            limit: 10,
            ..BuildQuery::default()
        };
        f(&mut q);
        q
    };
    let ids = |builds: Vec<crate::model::Build>| builds.iter().map(|b| b.id).collect::<Vec<_>>();
    for query in [
        q(|q| q.builder = Some("rare".to_owned())),
        q(|q| q.state = Some(BuildState::Failed)),
        q(|q| q.label = Some("gpu".to_owned())),
        q(|q| q.submitter = Some("carol".to_owned())),
        q(|q| {
            q.builder = Some("rare".to_owned());
            q.state = Some(BuildState::Failed);
            q.label = Some("gpu".to_owned());
            q.submitter = Some("carol".to_owned());
        }),
    ] {
        let found = store.query_builds(&query).await.unwrap();
        assert_eq!(found, vec![failed.clone()], "{query:?}");
    }
    // Each filter really filters: a wrong value in any one finds nothing.
    for query in [
        q(|q| q.builder = Some("nope".to_owned())),
        q(|q| {
            q.builder = Some("rare".to_owned());
            q.state = Some(BuildState::Queued);
        }),
        q(|q| {
            q.label = Some("gpu".to_owned());
            q.submitter = Some("alice".to_owned());
        }),
        q(|q| q.label = Some("gp".to_owned())),
        q(|q| {
            q.builder = Some("rare".to_owned());
            q.before = Some(1);
        }),
    ] {
        assert!(
            store.query_builds(&query).await.unwrap().is_empty(),
            "{query:?}"
        );
    }

    // No filter: the newest first; pages by `before` meet every build once.
    let first = store.query_builds(&q(|_| {})).await.unwrap();
    assert_eq!(ids(first).first(), Some(&newest));
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = BuildQuery {
            label: Some("linux".to_owned()),
            before,
            limit: 500,
            ..BuildQuery::default()
        };
        let page = ids(store.query_builds(&page).await.unwrap());
        if page.is_empty() {
            break;
        }
        before = page.last().copied();
        seen.extend(page);
    }
    let mut all: Vec<_> = newer.iter().map(|b| b.id).chain([old.id]).collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, all);
    let none = BuildQuery {
        limit: 0,
        ..BuildQuery::default()
    };
    assert!(store.query_builds(&none).await.unwrap().is_empty());
}

/// One submit of `builder`: a build per matrix cell.
fn submit(builder: &str, submit: &str, oses: &[&str]) -> Vec<crate::model::NewBuild> {
    oses.iter()
        .map(|os| {
            let mut b = new_build(builder);
            b.submit_id = submit.to_owned();
            b.cell = [("os".to_owned(), (*os).to_owned())].into();
            b
        })
        .collect()
}

pub(super) async fn recent_submits_keep_each_builders_newest(store: &dyn Store) {
    assert!(store.recent_submits(5).await.unwrap().is_empty());
    // a: three submits of two cells; b: one of one cell, between them.
    store
        .insert_builds(submit("a", "a1", &["linux", "mac"]))
        .await
        .unwrap(); // 1, 2
    store
        .insert_builds(submit("b", "b1", &["linux"]))
        .await
        .unwrap(); // 3
    store
        .insert_builds(submit("a", "a2", &["linux", "mac"]))
        .await
        .unwrap(); // 4, 5
    store
        .insert_builds(submit("a", "a3", &["linux", "mac"]))
        .await
        .unwrap(); // 6, 7
    let mut done = store.get_build(6).await.unwrap().unwrap();
    done.state = BuildState::Failed;
    done.reason = Some("step build exited with 1".to_owned());
    done.finished_at = Some(done.created_at + 5);
    store.save_build(&done).await.unwrap();

    let two = store.recent_submits(2).await.unwrap();
    let ids: Vec<_> = two.iter().map(|s| s.id).collect();
    assert_eq!(ids, [7, 6, 5, 4, 3], "a's two newest submits and b's one");
    let six = &two[1];
    assert_eq!(six.submit_id, "a3");
    assert_eq!(six.builder, "a");
    assert_eq!(six.cell.get("os").map(String::as_str), Some("linux"));
    assert_eq!(six.state, BuildState::Failed);
    assert_eq!(six.reason, done.reason);
    assert_eq!(six.finished_at, done.finished_at);
    assert_eq!(two[0].state, BuildState::Queued);

    let one = store.recent_submits(1).await.unwrap();
    assert_eq!(one.iter().map(|s| s.id).collect::<Vec<_>>(), [7, 6, 3]);
    assert!(store.recent_submits(0).await.unwrap().is_empty());
    assert_eq!(store.recent_submits(100).await.unwrap().len(), 7);
}

/// A long history of submits with 1 to 3 cells, interleaved across
/// builders: the store returns exactly the builds of each builder's newest
/// submits (nothing more to read past, nothing cut), newest first.
pub(super) async fn recent_submits_return_only_what_the_grid_shows(store: &dyn Store) {
    let builders = ["a", "b", "c"];
    let oses = ["linux", "mac", "win"];
    let mut batch = Vec::new();
    for n in 0..60 {
        for (i, builder) in builders.iter().enumerate() {
            let cells = &oses[..(n + i) % 3 + 1];
            batch.extend(submit(builder, &format!("{builder}{n}"), cells));
        }
    }
    store.insert_builds(batch).await.unwrap();
    let shown = store.recent_submits(10).await.unwrap();
    let ids: Vec<_> = shown.iter().map(|s| s.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    for (i, builder) in builders.iter().enumerate() {
        let mine: Vec<_> = shown.iter().filter(|s| s.builder == *builder).collect();
        let want: usize = (50..60).map(|n| (n + i) % 3 + 1).sum();
        assert_eq!(mine.len(), want, "builder {builder}: {mine:?}");
        let mut submits: Vec<_> = mine.iter().map(|s| s.submit_id.clone()).collect();
        submits.dedup();
        let expected: Vec<_> = (50..60).rev().map(|n| format!("{builder}{n}")).collect();
        assert_eq!(submits, expected, "builder {builder}");
    }
}

pub(super) async fn unfinished_builds_oldest_first(store: &dyn Store) {
    let names = ["a", "b", "c", "d", "e"];
    let inserted = store
        .insert_builds(names.iter().map(|n| new_build(n)).collect())
        .await
        .unwrap();
    let mut running = with_two_attempts(inserted[1].clone());
    running.state = BuildState::Running;
    running.finished_at = None;
    store.save_build(&running).await.unwrap();
    let mut failed = inserted[2].clone();
    failed.state = BuildState::Failed;
    store.save_build(&failed).await.unwrap();
    let mut lost = inserted[4].clone();
    lost.state = BuildState::WorkerLost;
    store.save_build(&lost).await.unwrap();

    let unfinished = store.unfinished_builds().await.unwrap();
    assert_eq!(
        unfinished,
        vec![inserted[0].clone(), running, inserted[3].clone()]
    );
}

pub(super) async fn every_state_round_trips(store: &dyn Store) {
    let count = ALL_BUILD_STATES.len().max(ALL_ATTEMPT_STATES.len());
    let news = (0..count).map(|i| new_build(&format!("b{i}"))).collect();
    let inserted = store.insert_builds(news).await.unwrap();
    let mut saved = Vec::new();
    for (i, build) in inserted.into_iter().enumerate() {
        let mut build = with_two_attempts(build);
        build.state = ALL_BUILD_STATES[i % ALL_BUILD_STATES.len()];
        build.attempts[0].state = ALL_ATTEMPT_STATES[i % ALL_ATTEMPT_STATES.len()];
        store.save_build(&build).await.unwrap();
        saved.push(build);
    }
    saved.reverse();
    assert_eq!(store.list_builds(100).await.unwrap(), saved);
    let unfinished: Vec<_> = saved
        .iter()
        .rev()
        .filter(|b| !b.state.is_finished())
        .cloned()
        .collect();
    assert_eq!(store.unfinished_builds().await.unwrap(), unfinished);
}

pub(super) async fn ledger_upserts_and_orders(store: &dyn Store) {
    assert!(store.list_instances(10).await.unwrap().is_empty());
    assert!(store.live_instances().await.unwrap().is_empty());
    store
        .save_instance(&instance("w-a", InstanceState::Launching, 100))
        .await
        .unwrap();
    store
        .save_instance(&instance("w-b", InstanceState::Launching, 200))
        .await
        .unwrap();
    // Same millisecond as w-a: the later write counts as newer.
    store
        .save_instance(&instance("w-c", InstanceState::Launching, 100))
        .await
        .unwrap();

    let mut connected = instance("w-a", InstanceState::Connected, 100);
    connected.provider_id = Some("c0ffee".to_string());
    connected.details = json!({"image": "rust:1", "cpus": 2, "spot": false, "tags": ["x"]});
    connected.connected_at = Some(150);
    store.save_instance(&connected).await.unwrap();

    let mut gone = instance("w-b", InstanceState::Gone, 200);
    gone.terminated_at = Some(900);
    store.save_instance(&gone).await.unwrap();
    let mut failed = instance("w-c", InstanceState::Failed, 100);
    failed.error = Some("failed to start the container".to_string());
    store.save_instance(&failed).await.unwrap();

    assert_eq!(
        store.get_instance("w-a").await.unwrap(),
        Some(connected.clone())
    );
    assert_eq!(store.get_instance("w-z").await.unwrap(), None);

    let listed = store.list_instances(10).await.unwrap();
    assert_eq!(
        listed,
        vec![gone.clone(), failed.clone(), connected.clone()]
    );
    assert_eq!(store.list_instances(2).await.unwrap(), vec![gone, failed]);
    assert!(store.list_instances(0).await.unwrap().is_empty());
    assert_eq!(store.live_instances().await.unwrap(), vec![connected]);
}

pub(super) async fn live_instances_match_is_live(store: &dyn Store) {
    let mut expected = Vec::new();
    for (state, at) in ALL_INSTANCE_STATES.iter().zip(0i64..) {
        // Launch times run backwards, so "oldest first" differs from write order.
        let row = instance(&format!("w-{}", state.as_str()), *state, 1000 - at);
        store.save_instance(&row).await.unwrap();
        if state.is_live() {
            expected.push(row);
        }
    }
    expected.reverse();
    assert_eq!(store.live_instances().await.unwrap(), expected);
    assert_eq!(
        store.list_instances(100).await.unwrap().len(),
        ALL_INSTANCE_STATES.len()
    );
}

pub(super) async fn tokens_insert_find_list_revoke(store: &dyn Store) {
    use crate::model::{Role, TokenRecord};
    let token = |name: &str, hash: &str, role| TokenRecord {
        name: name.to_string(),
        hash: hash.to_string(),
        role,
        created_at: 5,
        created_by: Some("admin".to_string()),
    };
    let bob = token("bob", "b0", Role::Viewer);
    let alice = TokenRecord {
        created_by: None,
        ..token("alice", "a0", Role::Submitter)
    };
    assert!(store.insert_token(&bob).await.unwrap());
    assert!(store.insert_token(&alice).await.unwrap());
    // A taken name or hash stores nothing.
    assert!(!store
        .insert_token(&token("bob", "b1", Role::Admin))
        .await
        .unwrap());
    assert!(!store
        .insert_token(&token("carol", "a0", Role::Admin))
        .await
        .unwrap());
    assert_eq!(store.token_by_hash("b0").await.unwrap(), Some(bob.clone()));
    assert_eq!(store.token_by_hash("b1").await.unwrap(), None);
    assert_eq!(
        store.list_tokens().await.unwrap(),
        vec![alice.clone(), bob.clone()]
    );
    assert!(store.revoke_token("bob").await.unwrap());
    assert!(!store.revoke_token("bob").await.unwrap());
    assert_eq!(store.token_by_hash("b0").await.unwrap(), None);
    assert_eq!(store.list_tokens().await.unwrap(), vec![alice]);
}

pub(super) async fn submitted_by_round_trips(store: &dyn Store) {
    let mut anonymous = new_build("b");
    anonymous.submitted_by = None;
    let built = store
        .insert_builds(vec![new_build("a"), anonymous])
        .await
        .unwrap();
    assert_eq!(built[0].submitted_by.as_deref(), Some("alice"));
    assert_eq!(built[1].submitted_by, None);
    let mut saved = built[1].clone();
    saved.submitted_by = Some("bob".to_string());
    store.save_build(&saved).await.unwrap();
    let read = store.get_build(saved.id).await.unwrap().unwrap();
    assert_eq!(read.submitted_by.as_deref(), Some("bob"));
}

/// How a row ends tells who settled it (the orphan path of startup).
pub(super) async fn ledger_keeps_who_ended_a_row(store: &dyn Store) {
    let mut row = instance("w-orphan", InstanceState::Launching, 100);
    store.save_instance(&row).await.unwrap();
    assert_eq!(
        store
            .get_instance("w-orphan")
            .await
            .unwrap()
            .unwrap()
            .ended_by,
        None
    );
    row.state = InstanceState::Gone;
    row.terminated_at = Some(300);
    row.ended_by = Some("reaped at start by master m-1".to_string());
    store.save_instance(&row).await.unwrap();
    assert_eq!(store.get_instance("w-orphan").await.unwrap(), Some(row));
    assert!(store.live_instances().await.unwrap().is_empty());
}

pub(super) async fn probe_writes(store: &dyn Store) {
    store.probe().await.unwrap();
    store.probe().await.unwrap();
}

pub(super) async fn idempotent_insert_replays_and_refuses_other_requests(store: &dyn Store) {
    let key = |scope: &str, request: &str| IdempotencyKey {
        scope: scope.to_string(),
        key: "k-1".to_string(),
        request_hash: request.to_string(),
    };
    let first = store
        .insert_builds_once(vec![new_build("a"), new_build("b")], &key("alice", "h1"))
        .await
        .unwrap();
    let SubmitOnce::Created(created) = first else {
        panic!("a new key creates builds: {first:?}");
    };
    let ids: Vec<_> = created.iter().map(|b| b.id).collect();
    assert_eq!(ids, [1, 2]);

    let again = store
        .insert_builds_once(vec![new_build("a"), new_build("b")], &key("alice", "h1"))
        .await
        .unwrap();
    assert_eq!(
        again,
        SubmitOnce::Replayed {
            submit_id: "s-a".to_string(),
            builds: ids.clone()
        }
    );
    let other = store
        .insert_builds_once(vec![new_build("c")], &key("alice", "h2"))
        .await
        .unwrap();
    assert_eq!(other, SubmitOnce::Conflict);
    assert_eq!(
        store.list_builds(10).await.unwrap().len(),
        2,
        "nothing new stored"
    );

    // Keys are per token: another token's same key is its own.
    let bob = store
        .insert_builds_once(vec![new_build("c")], &key("bob", "h2"))
        .await
        .unwrap();
    assert!(
        matches!(bob, SubmitOnce::Created(ref b) if b.len() == 1 && b[0].id == 3),
        "{bob:?}"
    );
}

pub(super) async fn cost_rows_hold_the_window_and_the_attempts_of_its_workers(store: &dyn Store) {
    let mut old = instance("w-old", InstanceState::Gone, 100);
    old.terminated_at = Some(500);
    let mut recent = instance("w-1", InstanceState::Gone, 600);
    recent.terminated_at = Some(5_000);
    let live = instance("w-2", InstanceState::Connected, 700);
    for row in [&old, &recent, &live] {
        store.save_instance(row).await.unwrap();
    }
    let since = store.instances_since(1_000).await.unwrap();
    assert_eq!(since, vec![recent.clone(), live.clone()]);
    assert_eq!(store.instances_since(0).await.unwrap().len(), 3);

    let b = store
        .insert_builds(vec![new_build("app")])
        .await
        .unwrap()
        .remove(0);
    let b = with_two_attempts(b);
    store.save_build(&b).await.unwrap();
    let other = store
        .insert_builds(vec![new_build("lib")])
        .await
        .unwrap()
        .remove(0);
    let mut other = with_two_attempts(other);
    other.attempts.truncate(1);
    other.attempts[0].worker_id = "w-elsewhere".into();
    store.save_build(&other).await.unwrap();

    let mut got = store
        .attempts_on(&["w-1".to_string(), "w-2".to_string()])
        .await
        .unwrap();
    got.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].build, b.id);
    assert_eq!(got[0].builder, "app");
    assert_eq!(got[0].labels, b.labels);
    assert_eq!(got[0].worker_id, "w-1");
    assert_eq!(got[0].started_at, b.attempts[0].started_at);
    assert_eq!(got[0].finished_at, b.attempts[0].finished_at);
    assert_eq!(got[1].worker_id, "w-2");
    assert_eq!(got[1].finished_at, None);
    assert!(store.attempts_on(&[]).await.unwrap().is_empty());
    assert!(store
        .attempts_on(&["w-nobody".to_string()])
        .await
        .unwrap()
        .is_empty());
}
