//! What every store must do for triggers and reporters (migration 0006),
//! run against both stores by `contract_tests!`.

use super::fixtures::new_build;
use crate::model::BuildState;
use crate::store::{Store, DELIVERY_TTL_MILLIS};

pub(in crate::store::tests) async fn deliveries_are_remembered_per_source(store: &dyn Store) {
    assert!(store.record_delivery("gh", "d-1", 1_000).await.unwrap());
    assert!(!store.record_delivery("gh", "d-1", 2_000).await.unwrap());
    // Another source's delivery of the same id is its own.
    assert!(store.record_delivery("gl", "d-1", 2_000).await.unwrap());
    // Past the TTL the id is forgotten.
    let later = 1_000 + DELIVERY_TTL_MILLIS + 1;
    assert!(store.record_delivery("gh", "d-1", later).await.unwrap());
}

pub(in crate::store::tests) async fn source_heads_upsert_per_branch(store: &dyn Store) {
    assert!(store.source_heads("poll").await.unwrap().is_empty());
    store
        .save_source_head("poll", "main", "aaa", 1)
        .await
        .unwrap();
    store
        .save_source_head("poll", "dev", "bbb", 1)
        .await
        .unwrap();
    store
        .save_source_head("poll", "main", "ccc", 2)
        .await
        .unwrap();
    store
        .save_source_head("other", "main", "ddd", 2)
        .await
        .unwrap();
    let heads = store.source_heads("poll").await.unwrap();
    assert_eq!(heads.len(), 2);
    assert_eq!(heads["main"], "ccc");
    assert_eq!(heads["dev"], "bbb");
}

pub(in crate::store::tests) async fn reports_queue_once_and_follow_their_build(store: &dyn Store) {
    let ids: Vec<i64> = store
        .insert_builds(vec![new_build("a"), new_build("b")])
        .await
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect();
    store.watch_builds("gh", &ids).await.unwrap();
    store.watch_builds("gh", &ids[..1]).await.unwrap();
    let watched = store.watched_builds().await.unwrap();
    assert_eq!(watched.len(), 2);
    assert_eq!(watched[0].build_id, ids[0]);
    assert_eq!(watched[0].source, "gh");
    assert_eq!(watched[0].last_state, None);

    let reporters = vec!["github".to_owned(), "hook".to_owned()];
    store
        .enqueue_reports(ids[0], BuildState::Queued, &reporters, 10)
        .await
        .unwrap();
    // The same state again queues nothing new.
    store
        .enqueue_reports(ids[0], BuildState::Queued, &reporters, 11)
        .await
        .unwrap();
    store
        .enqueue_reports(ids[0], BuildState::Succeeded, &reporters[..1], 20)
        .await
        .unwrap();
    let rows = store.build_reports(ids[0]).await.unwrap();
    let shown: Vec<(&str, BuildState)> = rows
        .iter()
        .map(|r| (r.reporter.as_str(), r.state))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("github", BuildState::Queued),
            ("hook", BuildState::Queued),
            ("github", BuildState::Succeeded),
        ]
    );
    // A finished build is no longer watched; the other one still is.
    let watched = store.watched_builds().await.unwrap();
    assert_eq!(watched.len(), 1);
    assert_eq!(watched[0].build_id, ids[1]);

    // Due rows, oldest first, up to the limit; not before next_at.
    assert!(store.due_reports(9, 10).await.unwrap().is_empty());
    let due = store.due_reports(20, 2).await.unwrap();
    assert_eq!(due.len(), 2);
    let mut first = due[0].clone();
    first.attempts = 1;
    first.next_at = 100;
    first.last_error = Some("502 Bad Gateway".into());
    store.save_report(&first).await.unwrap();
    let mut second = due[1].clone();
    second.attempts = 1;
    second.delivered_at = Some(21);
    store.save_report(&second).await.unwrap();
    let due: Vec<i64> = store
        .due_reports(50, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        due.len(),
        1,
        "the retried row waits, the delivered one is done"
    );
    let mut third = store.due_reports(50, 10).await.unwrap()[0].clone();
    third.gave_up = true;
    third.attempts = 3;
    store.save_report(&third).await.unwrap();
    let due = store.due_reports(100, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0], first);
    let rows = store.build_reports(ids[0]).await.unwrap();
    assert!(rows[2].gave_up && rows[2].attempts == 3);
    assert_eq!(rows[1].delivered_at, Some(21));
}

/// A watched submit's builds queue every state they are saved with, once
/// each, in order, in the build's own write; other builds queue nothing.
pub(in crate::store::tests) async fn every_saved_state_of_a_watched_submit_is_queued_once(
    store: &dyn Store,
) {
    let reporters = vec!["gitlab".to_owned(), "hook".to_owned()];
    store
        .watch_submit("s-watched", "gl", &reporters, 5)
        .await
        .unwrap();
    let mut watched = new_build("watched");
    watched.submit_id = "s-watched".into();
    let builds = store
        .insert_builds(vec![watched, new_build("other")])
        .await
        .unwrap();
    let (mut b, mut other) = (builds[0].clone(), builds[1].clone());
    // Saved many times: a state counts once, and each new one in order,
    // even one that lasts no longer than a single save.
    for state in [
        BuildState::Queued,
        BuildState::Running,
        BuildState::Running,
        BuildState::Queued,
        BuildState::Running,
        BuildState::Succeeded,
        BuildState::Succeeded,
    ] {
        b.state = state;
        store.save_build(&b).await.unwrap();
        other.state = state;
        store.save_build(&other).await.unwrap();
    }
    let rows = store.build_reports(b.id).await.unwrap();
    let shown: Vec<(&str, BuildState)> = rows
        .iter()
        .map(|r| (r.reporter.as_str(), r.state))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("gitlab", BuildState::Queued),
            ("hook", BuildState::Queued),
            ("gitlab", BuildState::Running),
            ("hook", BuildState::Running),
            ("gitlab", BuildState::Succeeded),
            ("hook", BuildState::Succeeded),
        ]
    );
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id));
    assert!(store.build_reports(other.id).await.unwrap().is_empty());
    let w = store.watched_builds().await.unwrap();
    assert!(w.iter().all(|w| w.build_id != b.id), "finished: {w:?}");
}

pub(in crate::store::tests) async fn github_jobs_are_replaced_and_found_by_build(
    store: &dyn Store,
) {
    use crate::model::GithubJob;
    assert_eq!(store.github_job(7).await.unwrap(), None);
    let mut job = GithubJob {
        job_id: 7,
        repo: "acme/app".into(),
        run_id: 70,
        name: "build".into(),
        status: "queued".into(),
        conclusion: None,
        launched_build: Some(3),
        ran_build: None,
        runner_name: None,
        html_url: Some("https://github.com/acme/app/actions/runs/70/job/7".into()),
        updated_at: 1,
    };
    store.save_github_job(&job).await.unwrap();
    assert_eq!(store.github_job(7).await.unwrap(), Some(job.clone()));
    // Job 8 was launched for build 4 but ran on build 3's runner.
    let other = GithubJob {
        job_id: 8,
        launched_build: Some(4),
        ran_build: Some(3),
        runner_name: Some("burst-w-b3".into()),
        ..job.clone()
    };
    store.save_github_job(&other).await.unwrap();
    job.status = "completed".into();
    job.conclusion = Some("cancelled".into());
    job.updated_at = 2;
    store.save_github_job(&job).await.unwrap();
    assert_eq!(store.github_job(7).await.unwrap(), Some(job.clone()));
    let of_3: Vec<i64> = store
        .github_jobs_of_build(3)
        .await
        .unwrap()
        .iter()
        .map(|j| j.job_id)
        .collect();
    assert_eq!(of_3, [7, 8]);
    let of_4 = store.github_jobs_of_build(4).await.unwrap();
    assert_eq!(of_4, [other]);
    assert!(store.github_jobs_of_build(5).await.unwrap().is_empty());
}
