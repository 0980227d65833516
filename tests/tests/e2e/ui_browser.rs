//! The web UI in a real browser: headless Chromium (`burst_e2e::chromium`)
//! against a real master, one master per test. Each test saves a
//! screenshot of its page under `$CARGO_TARGET_DIR/ui-screenshots/`.

use std::time::Duration;

use burst_e2e::chromium::{screenshot_dir, Chromium, Page};
use burst_e2e::{toml_text, Master, MasterBuilder};
use burst_master::model::BuildState;
use serde_json::Value;

const BUILD_WAIT: Duration = Duration::from_secs(120);

/// Logs the browser in with `token` through the login form, as a person
/// would; the session cookie is the browser's from then on.
async fn login(page: &mut Page, master: &Master, token: &str) -> anyhow::Result<()> {
    page.goto(&format!("{}/login", master.url())).await?;
    let token = serde_json::to_string(token)?;
    page.eval(&format!(
        "document.getElementById('token').value = {token}; \
         document.getElementById('login').submit(); true"
    ))
    .await?;
    page.wait_for(
        "the login to land on a page with the user shown",
        "document.readyState === 'complete' && !location.pathname.startsWith('/login') \
         && !!document.getElementById('logout')",
    )
    .await
}

async fn browser_as(master: &Master, token: &str) -> anyhow::Result<(Chromium, Page)> {
    let browser = Chromium::start().await?;
    let mut page = browser.new_page().await?;
    login(&mut page, master, token).await?;
    Ok((browser, page))
}

async fn screenshot(page: &mut Page, name: &str) -> anyhow::Result<()> {
    page.screenshot(&screenshot_dir().join(name)).await
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

const HELLO: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 2
idle_timeout = "60s"

[[builders]]
name = "hello"
labels = ["linux"]

[[builders.steps]]
name = "greet"
run = "echo hello from the web UI test"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn ui_builds_page_lists_a_submitted_build() -> anyhow::Result<()> {
    let master = Master::start(HELLO).await?;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.extend(master.submit("hello", &[]).await?);
    }
    let id = ids[1];
    for id in &ids {
        let build = master.wait_build(*id, BUILD_WAIT).await?;
        assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    }

    let (_browser, mut page) = browser_as(&master, &master.admin_token()).await?;
    page.goto(&format!("{}/builds", master.url())).await?;
    let row = page
        .wait_value(
            &format!("build {id}'s row on the builds page"),
            &format!(
                "(() => {{ const r = document.querySelector('#builds tr[data-id=\"{id}\"]'); \
                 return r && {{ state: r.dataset.state, builder: r.querySelector('.builder').innerText }}; }})()"
            ),
            |v| v["state"] == "succeeded",
        )
        .await?;
    assert_eq!(row["builder"], "hello", "{row}");
    screenshot(&mut page, "builds.png").await
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_build_log_grows_while_the_step_prints_without_a_reload() -> anyhow::Result<()> {
    let config = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1
idle_timeout = "60s"

[[builders]]
name = "ticker"
labels = ["linux"]

[[builders.steps]]
name = "tick"
run = 'for i in $(seq 1 200); do echo "tick $i"; sleep 0.3; done'
"#;
    let master = Master::start(config).await?;
    let id = master.submit("ticker", &[]).await?[0];
    master.wait_step_running(id, 0, BUILD_WAIT).await?;

    let (_browser, mut page) = browser_as(&master, &master.admin_token()).await?;
    page.goto(&format!(
        "{}/builds/{id}/attempts/1/steps/1/log",
        master.url()
    ))
    .await?;
    // A mark a reload would wipe, and the number of navigations so far.
    page.eval("window.__burstMark = 'still here'; true").await?;
    let lines = "document.querySelectorAll('#log .line').length";
    let first = page
        .wait_value("the first log lines", lines, |v| count(v) >= 1)
        .await?;
    let grown = page
        .wait_value("the log to grow by five lines", lines, |v| {
            count(v) >= count(&first) + 5
        })
        .await?;
    assert!(count(&grown) > count(&first), "{first} -> {grown}");
    let mark = page.eval("window.__burstMark").await?;
    assert_eq!(mark, "still here", "the page reloaded while the log grew");
    let navigations = page
        .eval("performance.getEntriesByType('navigation').length")
        .await?;
    assert_eq!(count(&navigations), 1, "one page load only");
    let last = page
        .eval("(() => { const l = document.querySelectorAll('#log .line'); return l[l.length - 1].innerText; })()")
        .await?;
    assert!(
        last.as_str().is_some_and(|t| t.contains("tick")),
        "the newest line is the step's: {last}"
    );
    screenshot(&mut page, "build-log.png").await?;
    master.cancel(id).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_grid_shows_a_two_cell_matrix_as_two_sub_columns() -> anyhow::Result<()> {
    let config = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 2
idle_timeout = "60s"

[[builders]]
name = "matrix"
labels = ["linux"]

[builders.matrix]
os = ["linux", "mac"]

[[builders.steps]]
name = "test"
run = 'test "$OS" = linux'

[[builders]]
name = "hello"
labels = ["linux"]

[[builders.steps]]
name = "greet"
run = "echo hi"
"#;
    let master = Master::start(config).await?;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.extend(master.submit("matrix", &[]).await?);
    }
    ids.extend(master.submit("hello", &[]).await?);
    for id in &ids {
        master.wait_build(*id, BUILD_WAIT).await?;
    }

    let (_browser, mut page) = browser_as(&master, &master.admin_token()).await?;
    page.goto(&format!("{}/grid", master.url())).await?;
    let newest = page
        .wait_value(
            "the matrix builder's newest submit",
            "(() => { const s = document.querySelector('#grid tr[data-builder=\"matrix\"] .submit'); \
             return s && [...s.querySelectorAll('.cell')].map(c => [c.dataset.cell, c.dataset.state]); })()",
            |v| v.as_array().is_some_and(|a| !a.is_empty()),
        )
        .await?;
    let cells: Vec<(String, String)> = serde_json::from_value(newest.clone())?;
    let want = [("os=linux", "succeeded"), ("os=mac", "failed")]
        .map(|(c, s)| (c.to_owned(), s.to_owned()));
    assert_eq!(cells, want, "two sub-columns, one per cell: {newest}");
    let submits = page
        .eval("document.querySelectorAll('#grid tr[data-builder=\"matrix\"] .submit').length")
        .await?;
    assert_eq!(count(&submits), 3, "one group per submit");
    let hello = page
        .eval("document.querySelectorAll('#grid tr[data-builder=\"hello\"] .submit .cell').length")
        .await?;
    assert_eq!(
        count(&hello),
        1,
        "a builder without a matrix has one square"
    );
    screenshot(&mut page, "grid.png").await
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_workers_page_shows_a_launching_worker_then_an_idle_one() -> anyhow::Result<()> {
    // The worker waits for a file before it starts burst-worker, so it stays
    // launched-but-not-connected until the test says go.
    let gate = tempfile::tempdir()?;
    let go = gate.path().join("go");
    let bins = burst_e2e::Bins::locate()?;
    let script = format!(
        "while [ ! -e {go} ]; do sleep 0.1; done; exec {worker}",
        go = shell_quote(&go.display().to_string()),
        worker = shell_quote(&bins.worker.display().to_string()),
    );
    let config = format!(
        r#"
[pools.gated]
provider = "local"
labels = ["linux"]
max_workers = 1
min_idle = 1
start_timeout = "300s"

[pools.gated.local]
command = ["sh", "-c", {script}]

[[builders]]
name = "hello"
labels = ["linux"]

[[builders.steps]]
name = "greet"
run = "echo hi"
"#,
        script = toml_text::quote(&script),
    );
    let master = MasterBuilder::config(&config).start().await?;
    let (_browser, mut page) = browser_as(&master, &master.admin_token()).await?;
    let workers = format!("{}/workers", master.url());

    let starting = reload_until(
        &mut page,
        &workers,
        "a launching worker on the workers page",
        "(() => { const r = document.querySelector('#workers tr[data-state=\"launching\"], \
         #workers tr[data-state=\"connecting\"]'); \
         const p = document.querySelector('#pools tr[data-pool=\"gated\"] .launching'); \
         return r && p && { worker: r.dataset.worker, pool: p.innerText }; })()",
    )
    .await?;
    assert!(
        starting["pool"]
            .as_str()
            .is_some_and(|t| t.starts_with("1 ")),
        "the pool counts one launching: {starting}"
    );
    let worker = starting["worker"].as_str().unwrap_or_default().to_owned();
    // The ledger shows it too, not yet connected.
    let ledger = page
        .eval(&format!(
            "document.querySelector('#ledger tr[data-worker=\"{worker}\"]')?.dataset.state"
        ))
        .await?;
    assert!(
        ledger == "launching" || ledger == "launched",
        "ledger state of {worker}: {ledger}"
    );

    std::fs::write(&go, "")?;
    let idle = reload_until(
        &mut page,
        &workers,
        "the same worker idle on the workers page",
        &format!(
            "(() => {{ const r = document.querySelector('#workers tr[data-worker=\"{worker}\"]'); \
             return r && r.dataset.state === 'idle' && r.innerText; }})()"
        ),
    )
    .await?;
    assert!(
        idle.as_str().is_some_and(|t| t.contains("linux")),
        "an idle worker shows its OS: {idle}"
    );
    screenshot(&mut page, "workers.png").await
}

/// Reloads `url` until `expression` is truthy: the workers page is a
/// snapshot, so a new state needs a new load.
async fn reload_until(
    page: &mut Page,
    url: &str,
    what: &str,
    expression: &str,
) -> anyhow::Result<Value> {
    let timeout = Duration::from_secs(120);
    let start = std::time::Instant::now();
    loop {
        page.goto(url).await?;
        let v = page.eval(expression).await?;
        if !matches!(v, Value::Null | Value::Bool(false)) {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            let text = page.text().await.unwrap_or_default();
            anyhow::bail!("timed out after {timeout:?} waiting for {what}; the page:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_viewer_sees_no_cancel_and_a_post_without_csrf_is_refused() -> anyhow::Result<()> {
    let config = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1
idle_timeout = "60s"

[[builders]]
name = "long"
labels = ["linux"]

[[builders.steps]]
name = "wait"
run = "sleep 300"
"#;
    let master = Master::start(config).await?;
    let viewer = master.create_token("ui-viewer", "viewer").await?;
    let id = master.submit("long", &[]).await?[0];
    master.wait_step_running(id, 0, BUILD_WAIT).await?;
    let build_url = format!("{}/builds/{id}", master.url());

    // The admin sees the button: the selector below is the real one.
    let (admin_browser, mut admin) = browser_as(&master, &master.admin_token()).await?;
    admin.goto(&build_url).await?;
    admin
        .wait_for(
            "the admin's cancel button",
            "!!document.getElementById('cancel')",
        )
        .await?;

    // A POST from the page's own origin with the session cookie but no
    // CSRF token: refused, and the build runs on.
    let status = admin
        .eval(&format!(
            "fetch('/builds/{id}/cancel', {{ method: 'POST', \
             headers: {{ 'content-type': 'application/x-www-form-urlencoded' }}, body: '' }}) \
             .then(r => r.status)"
        ))
        .await?;
    assert_eq!(status, 403, "a cancel without the CSRF token");
    let forged = admin
        .eval(&format!(
            "fetch('/builds/{id}/cancel', {{ method: 'POST', \
             headers: {{ 'content-type': 'application/x-www-form-urlencoded' }}, \
             body: 'csrf=forged' }}).then(r => r.status)"
        ))
        .await?;
    assert_eq!(forged, 403, "a cancel with a made-up CSRF token");
    assert_eq!(master.build(id).await?.state, BuildState::Running);
    drop(admin);
    drop(admin_browser);

    let (_browser, mut page) = browser_as(&master, &viewer).await?;
    page.goto(&build_url).await?;
    page.wait_for(
        "the build page for the viewer",
        &format!("document.querySelector('#build')?.dataset.id === '{id}'"),
    )
    .await?;
    let buttons = page
        .eval(
            "[!!document.getElementById('cancel'), !!document.getElementById('rebuild'), \
             document.querySelectorAll('form[action$=\"/cancel\"]').length]",
        )
        .await?;
    assert_eq!(
        buttons,
        serde_json::json!([false, false, 0]),
        "viewer's buttons"
    );
    screenshot(&mut page, "build-viewer.png").await?;

    // Even with the viewer's own session and a valid-looking form, the
    // role stops it: the page's origin, the viewer's cookie.
    let status = page
        .eval(&format!(
            "fetch('/builds/{id}/cancel', {{ method: 'POST', body: '' }}).then(r => r.status)"
        ))
        .await?;
    assert_eq!(status, 403, "a viewer's cancel");
    assert_eq!(master.build(id).await?.state, BuildState::Running);
    master.cancel(id).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_build_state_changes_live_on_the_builds_and_build_pages_without_a_reload(
) -> anyhow::Result<()> {
    // Two gates the test opens: the worker starts only once `go` exists
    // (the build stays queued), and the step ends only once `done` does
    // (the build stays running).
    let gate = tempfile::tempdir()?;
    let go = gate.path().join("go");
    let done = gate.path().join("done");
    let bins = burst_e2e::Bins::locate()?;
    let worker = format!(
        "while [ ! -e {go} ]; do sleep 0.1; done; exec {worker}",
        go = shell_quote(&go.display().to_string()),
        worker = shell_quote(&bins.worker.display().to_string()),
    );
    let step = format!(
        "while [ ! -e {done} ]; do sleep 0.1; done; echo finished",
        done = shell_quote(&done.display().to_string()),
    );
    let config = format!(
        r#"
[pools.gated]
provider = "local"
labels = ["linux"]
max_workers = 1
start_timeout = "300s"
idle_timeout = "60s"

[pools.gated.local]
command = ["sh", "-c", {worker}]

[[builders]]
name = "gated"
labels = ["linux"]

[[builders.steps]]
name = "wait"
run = {step}
"#,
        worker = toml_text::quote(&worker),
        step = toml_text::quote(&step),
    );
    let master = MasterBuilder::config(&config).start().await?;
    let id = master.submit("gated", &[]).await?[0];
    let browser = Chromium::start().await?;
    let mut list = browser.new_page().await?;
    login(&mut list, &master, &master.admin_token()).await?;
    let mut detail = browser.new_page().await?;
    list.goto(&format!("{}/builds", master.url())).await?;
    detail
        .goto(&format!("{}/builds/{id}", master.url()))
        .await?;
    for page in [&mut list, &mut detail] {
        // A mark a reload would wipe.
        page.eval("window.__burstMark = 'still here'; true").await?;
    }
    let row_state = format!(
        "(() => {{ const r = document.getElementById('build-{id}'); \
         return r && [r.dataset.state, r.querySelector('td.state').innerText]; }})()"
    );
    let page_state = "(() => { const b = document.getElementById('build'); \
         const steps = [...document.querySelectorAll('#attempts tr.step')].map(s => s.dataset.state); \
         return b && [b.dataset.state, document.getElementById('state').innerText, steps, \
         !!document.getElementById('cancel')]; })()";

    let is = |want: &'static str| move |v: &Value| v[0] == want && v[1] == want;
    list.wait_value("the row queued", &row_state, is("queued"))
        .await?;
    let queued = detail
        .wait_value("the build page queued", page_state, is("queued"))
        .await?;
    assert_eq!(queued[2], serde_json::json!([]), "no steps yet: {queued}");
    assert_eq!(queued[3], true, "an admin may cancel a queued build");

    std::fs::write(&go, "")?;
    list.wait_value("the row running", &row_state, is("running"))
        .await?;
    detail
        .wait_value("the build page running its step", page_state, |v| {
            is("running")(v) && v[2] == serde_json::json!(["running"])
        })
        .await?;

    std::fs::write(&done, "")?;
    list.wait_value("the row succeeded", &row_state, is("succeeded"))
        .await?;
    let finished = detail
        .wait_value("the build page succeeded", page_state, |v| {
            is("succeeded")(v) && v[2] == serde_json::json!(["succeeded"])
        })
        .await?;
    assert_eq!(finished[3], false, "no cancel button on a finished build");
    screenshot(&mut detail, "build.png").await?;

    for (name, page) in [("builds", &mut list), ("build", &mut detail)] {
        let mark = page.eval("window.__burstMark").await?;
        assert_eq!(mark, "still here", "the {name} page reloaded");
        let navigations = page
            .eval("performance.getEntriesByType('navigation').length")
            .await?;
        assert_eq!(count(&navigations), 1, "the {name} page loaded once");
    }
    assert_eq!(master.build(id).await?.state, BuildState::Succeeded);
    Ok(())
}
