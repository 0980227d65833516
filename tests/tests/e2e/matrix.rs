//! A 2x2 matrix: one build per cell, each step sees its own cell.

use std::time::Duration;

use burst_e2e::Master;
use burst_master::model::BuildState;

const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 4
idle_timeout = "30s"

[[builders]]
name = "grid"
labels = ["linux"]

[builders.matrix]
fruit = ["apple", "pear"]
size = ["small", "large"]

[[builders.steps]]
name = "show"
run = 'echo "cell fruit=$FRUIT size=$SIZE build=$BURST_BUILD_ID"'
"#;

#[tokio::test(flavor = "multi_thread")]
async fn matrix_2x2_runs_every_cell_with_its_env() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let ids = master.submit("grid", &[]).await?;
    assert_eq!(ids.len(), 4, "{ids:?}");

    let mut cells = Vec::new();
    for id in &ids {
        let build = master.wait_build(*id, Duration::from_secs(60)).await?;
        assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
        let fruit = build.cell.get("fruit").cloned().unwrap_or_default();
        let size = build.cell.get("size").cloned().unwrap_or_default();
        let log = master.log_text(*id).await?;
        let want = format!("cell fruit={fruit} size={size} build={id}\n");
        assert!(log.contains(&want), "build {id}: want {want:?} in\n{log}");
        // Exactly one "cell" line: no other cell's values leaked in.
        assert_eq!(log.matches("cell fruit=").count(), 1, "{log}");
        cells.push((fruit, size));
    }
    cells.sort();
    let want = [
        ("apple", "large"),
        ("apple", "small"),
        ("pear", "large"),
        ("pear", "small"),
    ]
    .map(|(f, s)| (f.to_owned(), s.to_owned()));
    assert_eq!(cells, want);

    // A parameter named like an axis picks that axis's value.
    let ids = master.submit("grid", &[("size", "large")]).await?;
    assert_eq!(ids.len(), 2, "{ids:?}");
    for id in ids {
        let build = master.wait_build(id, Duration::from_secs(60)).await?;
        assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
        assert_eq!(build.cell.get("size").map(String::as_str), Some("large"));
        assert!(master.log_text(id).await?.contains("size=large build="));
    }
    Ok(())
}
