//! The retention contract: which finished builds a pass may delete, and
//! that deleting never touches queued or running builds.

use crate::model::{BuildState, RetentionRule};
use crate::store::Store;

use super::fixtures::{new_build, with_two_attempts};

/// Builds of `a` and `b`: ids 1..=6, alternating builders (a: 1 3 5,
/// b: 2 4 6). Finished at `id * 1000` ms, but 5 (queued) and 6 (running).
async fn history(store: &dyn Store) {
    let names = ["a", "b", "a", "b", "a", "b"];
    let inserted = store
        .insert_builds(names.iter().map(|n| new_build(n)).collect())
        .await
        .unwrap();
    for build in inserted {
        let mut b = with_two_attempts(build);
        b.state = match b.id {
            5 => BuildState::Queued,
            6 => BuildState::Running,
            1 => BuildState::Failed,
            _ => BuildState::Succeeded,
        };
        b.finished_at = b.state.is_finished().then_some(b.id * 1000);
        store.save_build(&b).await.unwrap();
    }
}

async fn expired(store: &dyn Store, rule: RetentionRule) -> Vec<i64> {
    let listed = store.expired_builds(&rule, 100).await.unwrap();
    for e in &listed {
        let b = store.get_build(e.id).await.unwrap().unwrap();
        assert_eq!((e.builder.as_str(), e.state), (b.builder.as_str(), b.state));
        assert_eq!(Some(e.finished_at), b.finished_at);
    }
    listed.iter().map(|e| e.id).collect()
}

pub(super) async fn expired_builds_follow_age_and_count(store: &dyn Store) {
    history(store).await;
    let rule = |before, last| RetentionRule {
        finished_before: before,
        keep_last: last,
    };
    // No limit: nothing goes.
    assert!(expired(store, rule(None, None)).await.is_empty());
    // Age only: finished before 3.5 s (queued 5, running 6 never listed).
    assert_eq!(expired(store, rule(Some(3500), None)).await, [1, 2, 3]);
    assert_eq!(
        expired(store, rule(Some(i64::MAX), None)).await,
        [1, 2, 3, 4]
    );
    // Count only: each builder keeps its newest finished build (a: 3,
    // b: 4; the queued and running ones are not counted).
    assert_eq!(expired(store, rule(None, Some(1))).await, [1, 2]);
    assert!(expired(store, rule(None, Some(2))).await.is_empty());
    // Both: whichever keeps more. Age would drop 1..=4; the count keeps 3, 4.
    assert_eq!(expired(store, rule(Some(i64::MAX), Some(1))).await, [1, 2]);
    // The count would drop 1 and 2; age keeps 2 (finished at 2 s).
    assert_eq!(expired(store, rule(Some(1500), Some(1))).await, [1]);
    // Oldest first, at most `limit`.
    let first = store
        .expired_builds(&rule(Some(i64::MAX), None), 2)
        .await
        .unwrap();
    assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
    assert!(store
        .expired_builds(&rule(Some(i64::MAX), None), 0)
        .await
        .unwrap()
        .is_empty());
}

pub(super) async fn delete_builds_spares_queued_and_running(store: &dyn Store) {
    history(store).await;
    assert_eq!(store.delete_builds(&[]).await.unwrap(), 0);
    // 5 and 6 are asked for too, and stay; 7 does not exist.
    assert_eq!(store.delete_builds(&[1, 3, 5, 6, 7]).await.unwrap(), 2);
    for id in [1, 3] {
        assert_eq!(store.get_build(id).await.unwrap(), None, "build {id}");
    }
    for id in [2, 4, 5, 6] {
        assert!(store.get_build(id).await.unwrap().is_some(), "build {id}");
    }
    let left: Vec<i64> = store
        .list_builds(100)
        .await
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(left, [6, 5, 4, 2]);
    let unfinished: Vec<i64> = store
        .unfinished_builds()
        .await
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(unfinished, [5, 6]);
    // A deleted build is deleted once.
    assert_eq!(store.delete_builds(&[1, 3]).await.unwrap(), 0);
    // Ids keep growing past deleted ones.
    let next = store.insert_builds(vec![new_build("a")]).await.unwrap();
    assert_eq!(next[0].id, 7);
    // Its watch and reports went with it.
    store.watch_builds("src", &[2]).await.unwrap();
    store
        .enqueue_reports(2, BuildState::Succeeded, &["r".to_owned()], 0)
        .await
        .unwrap();
    assert_eq!(store.build_reports(2).await.unwrap().len(), 1);
    assert_eq!(store.delete_builds(&[2]).await.unwrap(), 1);
    assert!(store.build_reports(2).await.unwrap().is_empty());
    assert!(store
        .watched_builds()
        .await
        .unwrap()
        .iter()
        .all(|w| w.build_id != 2));
}
