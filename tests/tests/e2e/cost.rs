//! What workers cost, on a real master with local pools and configured
//! prices: `burst cost` by pool and by builder adds up to what the ledger's
//! workers were billed, each build's share is on its API answer and in
//! `burst build ID`, and a reached budget holds a build (with the reason on
//! it and in `/metrics`) until a reload raises the budget.

use std::time::Duration;

use anyhow::Context;
use burst_e2e::{wait, Master, MasterBuilder};
use burst_master::model::BuildState;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// $36 an hour is a cent a second: every build costs something visible.
fn config(budget: &str) -> String {
    format!(
        r#"
{budget}

[pools.priced]
provider = "local"
labels = ["linux"]
max_workers = 1
idle_timeout = "1s"
price_per_hour = 36.0

[pools.free]
provider = "local"
labels = ["free"]
max_workers = 1
idle_timeout = "1s"

[[builders]]
name = "app"
labels = ["linux"]
steps = [{{ name = "work", run = "sleep 0.5; echo built" }}]

[[builders]]
name = "lib"
labels = ["linux"]
steps = [{{ name = "work", run = "sleep 0.2" }}]

[[builders]]
name = "unpriced"
labels = ["free"]
steps = [{{ name = "work", run = "true" }}]
"#
    )
}

async fn run(master: &Master, builder: &str) -> anyhow::Result<i64> {
    let id = master.submit(builder, &[]).await?[0];
    let b = master.wait_build(id, WAIT).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    Ok(id)
}

async fn no_workers(master: &Master) -> anyhow::Result<()> {
    wait::until_seen(
        "every worker to be torn down",
        WAIT,
        || master.api_get::<Vec<Value>>("/api/v1/workers"),
        |w| w.is_empty(),
    )
    .await
    .map(|_| ())
}

async fn cost_json(master: &Master, args: &[&str]) -> anyhow::Result<Value> {
    let mut all = vec!["cost", "--json"];
    all.extend_from_slice(args);
    let out = master.cli(&all).await?;
    anyhow::ensure!(out.success(), "burst {all:?}: {out:?}");
    serde_json::from_str(&out.stdout).with_context(|| format!("burst cost --json: {}", out.stdout))
}

fn row<'a>(report: &'a Value, key: &str) -> Option<&'a Value> {
    report["rows"].as_array()?.iter().find(|r| r["key"] == key)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread")]
async fn burst_cost_adds_up_to_what_the_priced_workers_were_billed() -> anyhow::Result<()> {
    let master = MasterBuilder::config(&config("")).start().await?;
    let mut priced = Vec::new();
    for builder in ["app", "app", "lib"] {
        priced.push(run(&master, builder).await?);
    }
    run(&master, "unpriced").await?;
    no_workers(&master).await?;

    let by_pool = cost_json(&master, &["--since", "1h", "--by", "pool"]).await?;
    let pool = row(&by_pool, "priced").with_context(|| format!("{by_pool:#}"))?;
    assert!(
        row(&by_pool, "free").is_none(),
        "an unpriced pool costs nothing: {by_pool:#}"
    );
    let spend = f(&pool["spend"]);
    assert!(spend > 0.0, "{by_pool:#}");
    // Billed per second at $36/h: spend is the instance-hours times the price.
    assert!(
        (spend - f(&pool["instance_hours"]) * 36.0).abs() < 1e-6,
        "{pool:#}"
    );
    assert_eq!(pool["builds"], 3, "{pool:#}");
    assert!(
        (f(&by_pool["total"]["spend"]) - spend).abs() < 1e-9,
        "{by_pool:#}"
    );
    assert_eq!(by_pool["currency"], "USD");

    // Each build's share, from its own API answer: they and the spares no
    // build used add up to the pool's bill.
    let mut shares = 0.0;
    for id in &priced {
        let b = master.build_json(*id).await?;
        let cost = &b["cost"];
        let total = f(&cost["run"]) + f(&cost["boot"]) + f(&cost["idle"]);
        assert!(f(&cost["run"]) > 0.0, "build {id}: {b:#}");
        assert!(
            (total - f(&b["estimated_cost"])).abs() < 1e-9,
            "build {id}: {b:#}"
        );
        shares += total;
    }
    let by_builder = cost_json(&master, &["--since", "1h", "--by", "builder"]).await?;
    let unattributed = row(&by_builder, "(unattributed)").map_or(0.0, |r| f(&r["spend"]));
    assert!(
        (shares + unattributed - spend).abs() < 1e-6,
        "{by_builder:#}"
    );
    let app = row(&by_builder, "app").with_context(|| format!("{by_builder:#}"))?;
    assert_eq!(app["builds"], 2);
    assert!(
        f(&app["cost_per_build_p50"]) > 0.0
            && f(&app["cost_per_build_p95"]) >= f(&app["cost_per_build_p50"])
    );
    let rows: f64 = by_builder["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| f(&r["spend"]))
        .sum();
    assert!((rows - spend).abs() < 1e-6, "{by_builder:#}");
    let by_label = cost_json(&master, &["--since", "1h", "--by", "label"]).await?;
    assert_eq!(row(&by_label, "linux").context("a linux row")?["builds"], 3);

    let table = master.cli(&["cost", "--since", "1h"]).await?;
    assert!(table.success(), "{table:?}");
    assert!(
        table.stdout.starts_with("cost over the last 1h\nPOOL"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.lines().any(|l| l.starts_with("priced ")),
        "{}",
        table.stdout
    );
    let detail = master.cli(&["build", &priced[0].to_string()]).await?;
    assert!(
        detail.stdout.contains("est. cost: $") && detail.stdout.contains("(run $"),
        "{}",
        detail.stdout
    );
    let page = master.ui_get(&format!("/builds/{}", priced[0])).await?;
    assert!(
        page.contains("id=\"cost\"") && page.contains(", idle $"),
        "{page}"
    );

    let bad = master.cli(&["cost", "--since", "soon"]).await?;
    assert!(!bad.success(), "{bad:?}");
    assert!(bad.stderr.contains("\"soon\" is not a duration"), "{bad:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reached_budget_holds_builds_until_a_reload_raises_it() -> anyhow::Result<()> {
    let master = MasterBuilder::config(&config("[budget]\ndaily = 0.01\n"))
        .start()
        .await?;
    // The first build may launch (nothing spent yet); a worker that lives
    // a second costs a cent.
    run(&master, "app").await?;
    no_workers(&master).await?;
    let held = master.submit("app", &[]).await?[0];
    let b = master
        .wait_build_json(held, WAIT, "the budget to hold the build", |b| {
            b["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("budget reached: "))
        })
        .await?;
    let reason = b["reason"].as_str().unwrap_or_default();
    assert!(reason.ends_with(" of 0.01 USD today"), "{reason}");
    assert_eq!(b["state"], "queued");
    let metrics = master.metrics().await?;
    assert!(
        metrics
            .lines()
            .any(|l| l == "burst_budget_level{budget=\"global\",period=\"day\"} 2"),
        "{metrics}"
    );
    let pools = master.api_get::<Value>("/api/v1/pools").await?;
    let budgets = &pools[0]["budgets"];
    assert_eq!(budgets[0]["level"], "reached", "{pools:#}");
    let page = master.ui_get("/workers").await?;
    assert!(
        page.contains("<ul id=\"budget-alerts\"><li data-level=\"reached\">budget reached: "),
        "{page}"
    );
    wait::until_true("the master to log the reached budget", WAIT, || {
        master
            .log()
            .contains("no new workers are launched until it resets or is raised")
    })
    .await?;
    assert_eq!(master.build(held).await?.state, BuildState::Queued);

    master.edit_config(|c| c.replace("daily = 0.01", "daily = 100.0"))?;
    let out = master.cli(&["config", "reload"]).await?;
    assert!(out.success(), "{out:?}");
    let done = master.wait_build(held, WAIT).await?;
    assert_eq!(done.state, BuildState::Succeeded, "{done:#?}");
    Ok(())
}
