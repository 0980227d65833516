use std::sync::Arc;

use super::*;
use crate::model::{Attempt, AttemptState, BuildState, Instance, NewBuild};
use crate::store::MemoryStore;

fn row(worker: &str, price: Option<f64>, ended: Millis) -> Instance {
    crate::cost::fixtures::row(worker, "p", price, (0, Some(0), Some(ended)))
}

async fn build_on(store: &MemoryStore, worker: &str, from: Millis, to: Millis) -> Build {
    let new = NewBuild {
        submit_id: "s".into(),
        builder: "b".into(),
        cell: Default::default(),
        params: Default::default(),
        labels: vec![],
        steps: vec![],
        retries: 0,
        submitted_by: None,
    };
    let mut b = store.insert_builds(vec![new]).await.unwrap().remove(0);
    b.state = BuildState::Succeeded;
    b.attempts.push(Attempt {
        number: 1,
        worker_id: worker.into(),
        pool: "p".into(),
        state: AttemptState::Succeeded,
        reason: None,
        started_at: from,
        finished_at: Some(to),
        steps: vec![],
    });
    store.save_build(&b).await.unwrap();
    b
}

#[tokio::test]
async fn a_builds_cost_is_its_share_of_its_workers_bill() {
    let store = Arc::new(MemoryStore::new());
    // $3.60/h: 20 s of run each, 20 s idle split: $0.030 each.
    store
        .save_instance(&row("w", Some(3.6), 60_000))
        .await
        .unwrap();
    let one = build_on(&store, "w", 0, 20_000).await;
    let two = build_on(&store, "w", 20_000, 40_000).await;
    for b in [&one, &two] {
        let c = of_build(store.as_ref(), b, 100_000)
            .await
            .unwrap()
            .expect("priced");
        assert!((c.total() - 0.030).abs() < 1e-9, "{c:?}");
        assert!((c.run - 0.020).abs() < 1e-9, "{c:?}");
    }
}

#[tokio::test]
async fn a_build_on_unpriced_workers_has_no_cost() {
    let store = Arc::new(MemoryStore::new());
    store
        .save_instance(&row("local", None, 60_000))
        .await
        .unwrap();
    let b = build_on(&store, "local", 0, 20_000).await;
    assert_eq!(of_build(store.as_ref(), &b, 100_000).await.unwrap(), None);
}

#[test]
fn the_window_is_checked() {
    let q = |since: &str| CostQuery {
        since: Some(since.into()),
        by: GroupBy::Pool,
    };
    assert_eq!(
        window(&q("1h"), 10_000_000).ok(),
        Some((10_000_000 - 3_600_000, 10_000_000))
    );
    let HttpError(status, text) = window(&q("soon"), 0).unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("\"soon\" is not a duration"), "{text}");
    let HttpError(_, text) = window(&q("400d"), 0).unwrap_err();
    assert!(text.contains("at most 366d"), "{text}");
    let default = CostQuery {
        since: None,
        by: GroupBy::Pool,
    };
    assert_eq!(window(&default, 0).unwrap().0, -7 * 24 * 3_600_000);
}
