//! A worker the master did not launch, or with the wrong token, is refused:
//! it exits with code 2 and both sides say why. API callers need a token
//! whose role covers the route; browsers on other sites are kept out.

use std::time::Duration;

use burst_e2e::{cmd, wait, Master, MasterBuilder};
use reqwest::Method;
use serde_json::{json, Value};

/// A pool whose "workers" never dial in, so one stays launching with a real
/// worker id (and a token only the master knows).
const CONFIG: &str = burst_e2e::fake_worker::SLEEPING_POOL;

async fn rogue_worker(master: &Master, worker_id: &str) -> anyhow::Result<cmd::Output> {
    let work = tempfile::tempdir()?;
    let mut c = tokio::process::Command::new(&master.bins.worker);
    c.env("BURST_MASTER_URL", master.worker_url())
        .env("BURST_WORKER_ID", worker_id)
        .env("BURST_TOKEN", "not-the-token")
        .env("BURST_WORK_DIR", work.path())
        // Refusal must be immediate; do not let a regression hang here.
        .env("BURST_MAX_DISCONNECTED", "20s")
        .env("NO_COLOR", "1")
        .env_remove("BURST_MASTER_ID");
    cmd::run(c, Duration::from_secs(30)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_with_unknown_id_or_wrong_token_are_refused() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let launching = wait::until("a launching worker", Duration::from_secs(20), || async {
        let workers = master.workers().await?;
        Ok(workers
            .into_iter()
            .find(|w| w.state == "launching" || w.state == "connecting"))
    })
    .await?;

    let out = rogue_worker(&master, "local-doesnotexist").await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("unknown worker id"), "{out:?}");
    wait::until_true(
        "the master to log the unknown id",
        Duration::from_secs(5),
        || {
            master
                .log()
                .contains("unknown worker id \"local-doesnotexist\"")
        },
    )
    .await?;

    let out = rogue_worker(&master, &launching.worker_id).await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("wrong launch token"), "{out:?}");
    wait::until_true(
        "the master to log the wrong token",
        Duration::from_secs(5),
        || {
            master.log().lines().any(|l| {
                l.contains("refused")
                    && l.contains(&launching.worker_id)
                    && l.contains("wrong launch token")
            })
        },
    )
    .await?;
    // The real launch is unaffected.
    let still = master.workers().await?;
    assert!(
        still.iter().any(|w| w.worker_id == launching.worker_id),
        "{still:#?}"
    );
    Ok(())
}

/// Every route under /api/v1, with a body where it takes one.
fn routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/api/v1/builds", None),
        (
            Method::POST,
            "/api/v1/builds",
            Some(json!({ "builder": "hello" })),
        ),
        (Method::GET, "/api/v1/builds/1", None),
        (Method::POST, "/api/v1/builds/1/cancel", None),
        (Method::GET, "/api/v1/builds/1/log", None),
        (Method::GET, "/api/v1/workers", None),
        (Method::GET, "/api/v1/instances", None),
        (Method::GET, "/api/v1/pools", None),
        (Method::GET, "/api/v1/grid", None),
        (Method::GET, "/api/v1/cost", None),
        (Method::GET, "/api/v1/sources", None),
        (Method::GET, "/api/v1/builds/1/reports", None),
        (Method::GET, "/api/v1/tokens", None),
        (
            Method::POST,
            "/api/v1/tokens",
            Some(json!({ "name": "x", "role": "admin" })),
        ),
        (Method::DELETE, "/api/v1/tokens/admin", None),
        (Method::POST, "/api/v1/config/reload", None),
        (Method::POST, "/api/v1/gc", None),
        (Method::POST, "/api/v1/gc?dry_run=true", None),
        (Method::GET, "/api/v1/no-such-route", None),
    ]
}

async fn call(
    master: &Master,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    master.api_request(method, path, token, &[], body).await
}

async fn submit_as(master: &Master, token: &str) -> anyhow::Result<(u16, Value)> {
    let body = json!({ "builder": "hello" });
    call(
        master,
        Method::POST,
        "/api/v1/builds",
        Some(token),
        Some(&body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn api_needs_a_token_whose_role_covers_the_route() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let (status, _) = call(&master, Method::GET, "/healthz", None, None).await?;
    assert_eq!(status, 200, "/healthz stays open");
    for (method, path, body) in routes() {
        for token in [None, Some("burst_wrong"), Some("")] {
            let (status, answer) =
                call(&master, method.clone(), path, token, body.as_ref()).await?;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {answer}");
            assert!(answer["error"].is_string(), "{answer}");
        }
    }

    let viewer = master.create_token("viewer1", "viewer").await?;
    let alice = master.create_token("alice", "submitter").await?;
    let bob = master.create_token("bob", "submitter").await?;

    let (status, _) = call(&master, Method::GET, "/api/v1/builds", Some(&viewer), None).await?;
    assert_eq!(status, 200);
    // The read views need `viewer`: a scrape-only token reads none of them.
    let scraper = master.create_token("scraper", "metrics").await?;
    for path in [
        "/api/v1/pools",
        "/api/v1/grid",
        "/api/v1/sources",
        "/api/v1/cost",
    ] {
        let (status, answer) = call(&master, Method::GET, path, Some(&scraper), None).await?;
        assert_eq!(status, 403, "metrics token GET {path}: {answer}");
        let (status, answer) = call(&master, Method::GET, path, Some(&viewer), None).await?;
        assert_eq!(status, 200, "viewer GET {path}: {answer}");
    }
    let (status, answer) = submit_as(&master, &viewer).await?;
    assert_eq!(status, 403, "viewer submit: {answer}");

    let (status, answer) = submit_as(&master, &alice).await?;
    assert_eq!(status, 201, "{answer}");
    let id = answer["builds"][0].as_i64().unwrap_or_default();
    let build = master.build_json(id).await?;
    assert_eq!(build["submitted_by"], "alice", "{build}");

    let cancel = format!("/api/v1/builds/{id}/cancel");
    for (who, token) in [("viewer", &viewer), ("bob", &bob)] {
        let (status, answer) = call(&master, Method::POST, &cancel, Some(token), None).await?;
        assert_eq!(status, 403, "{who} cancels alice's build: {answer}");
    }
    // The admin's routes: tokens, config reload, retention passes.
    let admin_only =
        |path: &str| path.contains("tokens") || path.contains("/config/") || path.contains("/gc");
    for (method, path, body) in routes().into_iter().filter(|r| admin_only(r.1)) {
        for (who, token) in [
            ("submitter", &bob),
            ("viewer", &viewer),
            ("metrics", &scraper),
        ] {
            let (status, answer) =
                call(&master, method.clone(), path, Some(token), body.as_ref()).await?;
            assert_eq!(status, 403, "{who} {method} {path}: {answer}");
        }
    }
    let (status, answer) = call(
        &master,
        Method::POST,
        "/api/v1/gc?dry_run=true",
        Some(&master.admin_token()),
        None,
    )
    .await?;
    assert_eq!(status, 200, "the admin runs a dry run: {answer}");
    assert_eq!(answer["dry_run"], true, "{answer}");
    let (status, answer) = call(&master, Method::POST, &cancel, Some(&alice), None).await?;
    assert_eq!(status, 200, "alice cancels her own: {answer}");

    // The admin cancels anyone's build.
    let (_, answer) = submit_as(&master, &bob).await?;
    let other = answer["builds"][0].as_i64().unwrap_or_default();
    master.cancel(other).await?;
    assert_eq!(master.build_json(other).await?["state"], "cancelled");

    // Listing shows names and roles, never values or hashes.
    let (status, listed) = call(
        &master,
        Method::GET,
        "/api/v1/tokens",
        Some(&master.admin_token()),
        None,
    )
    .await?;
    assert_eq!(status, 200);
    let text = listed.to_string();
    for secret in [&viewer, &alice, &bob, &master.admin_token()] {
        assert!(!text.contains(secret.as_str()), "{text}");
    }
    assert!(!text.contains("hash"), "{text}");
    assert!(
        text.contains("\"viewer1\"") && text.contains("\"submitter\""),
        "{text}"
    );

    // A revoked token is refused from then on.
    let (status, _) = call(
        &master,
        Method::DELETE,
        "/api/v1/tokens/viewer1",
        Some(&master.admin_token()),
        None,
    )
    .await?;
    assert_eq!(status, 200);
    let (status, _) = call(&master, Method::GET, "/api/v1/builds", Some(&viewer), None).await?;
    assert_eq!(status, 401, "revoked token");

    // Refusals are logged with caller, route and peer; changes as audit lines.
    let log = master.log();
    assert!(
        log.lines().any(|l| l.contains("refused API request")
            && l.contains("bob")
            && l.contains("127.0.0.1")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("audit") && l.contains("builds submitted") && l.contains("alice")),
        "{log}"
    );
    assert!(
        log.contains("token revoked") && log.contains("build cancelled"),
        "{log}"
    );
    for secret in [&viewer, &alice, &bob] {
        assert!(
            !log.contains(secret.as_str()),
            "a token value is in the log"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_token_file_is_private_and_never_logged() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let master = Master::start(CONFIG).await?;
    let path = master.state_dir().join("admin.token");
    let mode = |p: &std::path::Path| -> anyhow::Result<u32> {
        Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
    };
    assert_eq!(mode(&path)?, 0o600);
    assert_eq!(mode(&master.state_dir())?, 0o700);
    let token = master.admin_token();
    assert!(token.len() >= 32, "{token}");
    let log = master.log();
    assert!(!log.contains(&token), "the admin token is in the log");
    assert!(log.contains("admin.token"), "its path is logged: {log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn other_hosts_and_cross_origin_writes_are_refused() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let admin = master.admin_token();
    let body = json!({ "builder": "hello" });
    let req = |method: Method, path: &'static str, headers: Vec<(&'static str, String)>| {
        let (admin, body) = (admin.clone(), body.clone());
        let master = &master;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let body = (method == Method::POST).then_some(&body);
            master
                .api_request(method, path, Some(&admin), &headers, body)
                .await
        }
    };
    // DNS rebinding: a page on evil.example resolved to 127.0.0.1.
    let (status, answer) = req(
        Method::GET,
        "/api/v1/builds",
        vec![("host", "evil.example".into())],
    )
    .await?;
    assert_eq!(status, 403, "{answer}");
    // A cross-site form or fetch.
    let (status, answer) = req(
        Method::POST,
        "/api/v1/builds",
        vec![("origin", "http://evil.example".into())],
    )
    .await?;
    assert_eq!(status, 403, "{answer}");
    // The same origin and the loopback names are fine.
    let port = master
        .url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let same = format!("http://127.0.0.1:{port}");
    let (status, answer) = req(Method::POST, "/api/v1/builds", vec![("origin", same)]).await?;
    assert_eq!(status, 201, "{answer}");
    let (status, _) = req(
        Method::GET,
        "/api/v1/builds",
        vec![("host", format!("localhost:{port}"))],
    )
    .await?;
    assert_eq!(status, 200);
    let log = master.log();
    assert!(log.contains("evil.example"), "the refusal is logged: {log}");
    Ok(())
}

/// No CORS unless configured: a browser on another origin gets no
/// `Access-Control-Allow-*` grant, neither from a preflight nor from a read.
#[tokio::test(flavor = "multi_thread")]
async fn no_cors_headers_are_granted_to_other_origins() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let admin = master.admin_token();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/builds", master.url());
    let preflight = http
        .request(Method::OPTIONS, &url)
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await?;
    let read = http
        .get(&url)
        .bearer_auth(&admin)
        .header("origin", "http://evil.example")
        .send()
        .await?;
    for resp in [&preflight, &read] {
        let granted: Vec<_> = resp
            .headers()
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .collect();
        assert!(granted.is_empty(), "{} granted {granted:?}", resp.url());
    }
    assert!(
        !preflight.status().is_success(),
        "a preflight is not answered with success: {}",
        preflight.status()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
/// The refusal itself is `tls::off_loopback_without_tls_refuses_naming_master_tls`.
async fn the_escape_hatch_serves_plain_http_off_loopback_with_a_warning() -> anyhow::Result<()> {
    let master = MasterBuilder::config(CONFIG)
        .env("BURST__MASTER__HTTP_LISTEN", "0.0.0.0:0")
        .master_toml("allow_insecure_http = true")
        .start()
        .await?;
    assert!(master.log().contains("plain HTTP off loopback"));
    let builds: Value = master.api_get("/api/v1/builds").await?;
    assert!(builds.is_array(), "{builds}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_sends_tokens_and_says_why_it_was_refused() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let run = |args: &'static [&'static str], token: Option<String>| {
        let mut c = master.cli_command(args);
        match token {
            Some(t) => c.env("BURST_TOKEN", t),
            None => c.env_remove("BURST_TOKEN"),
        };
        cmd::run(c, Duration::from_secs(30))
    };
    let out = run(&["builds"], Some("burst_wrong".into())).await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("not authenticated (HTTP 401)"),
        "{out:?}"
    );
    assert!(out.stderr.contains("BURST_TOKEN"), "{out:?}");

    let out = run(&["token", "create", "ci", "--role", "submitter"], None).await?;
    assert_eq!(out.code, Some(2), "no token: {out:?}");

    let out = master
        .cli(&["token", "create", "ci", "--role", "submitter"])
        .await?;
    assert!(out.success(), "{out:?}");
    let ci = out.stdout.trim().to_owned();
    assert!(ci.starts_with("burst_"), "{out:?}");
    let out = master
        .cli(&["token", "create", "eyes", "--role", "viewer"])
        .await?;
    let eyes = out.stdout.trim().to_owned();

    let out = run(&["submit", "hello"], Some(eyes)).await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("permission denied (HTTP 403)"),
        "{out:?}"
    );

    let file = master.dir().join("ci.token");
    std::fs::write(&file, format!("{ci}\n"))?;
    let file = file.display().to_string();
    let mut c = master.cli_command(&["--token-file", &file, "submit", "hello"]);
    c.env_remove("BURST_TOKEN");
    let out = cmd::run(c, Duration::from_secs(30)).await?;
    assert!(out.success(), "{out:?}");
    let out = master.cli(&["build", "1"]).await?;
    assert!(out.stdout.contains("submitter: ci"), "{out:?}");

    let out = master.cli(&["token", "list"]).await?;
    assert!(
        out.stdout.contains("ci") && out.stdout.contains("submitter"),
        "{out:?}"
    );
    assert!(!out.stdout.contains(&ci), "{out:?}");
    let out = master.cli(&["token", "revoke", "ci"]).await?;
    assert!(out.success(), "{out:?}");
    let mut c = master.cli_command(&["--token-file", &file, "builds"]);
    c.env_remove("BURST_TOKEN");
    let out = cmd::run(c, Duration::from_secs(30)).await?;
    assert_eq!(out.code, Some(2), "revoked: {out:?}");
    Ok(())
}

/// The README's quickstart runs `burst submit` with no token beside a
/// `burst master` started in the same directory: the CLI finds the admin
/// token through the state dir's run.json.
#[tokio::test(flavor = "multi_thread")]
async fn cli_finds_the_local_masters_admin_token() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let mut c = master.cli_command(&["builds"]);
    c.env_remove("BURST_TOKEN")
        .env("BURST__MASTER__STATE_DIR", master.state_dir());
    let out = cmd::run(c, Duration::from_secs(30)).await?;
    assert!(out.success(), "{out:?}");
    Ok(())
}

/// `anonymous_read = true` lets callers without a token read, nothing more.
#[tokio::test(flavor = "multi_thread")]
async fn anonymous_read_is_opt_in_and_read_only() -> anyhow::Result<()> {
    let master = MasterBuilder::config(CONFIG)
        .master_toml("anonymous_read = true")
        .start()
        .await?;
    for (method, path, body) in routes() {
        let (status, answer) = call(&master, method.clone(), path, None, body.as_ref()).await?;
        let want = match (method.as_str(), path) {
            (_, p) if p.contains("tokens") && method == Method::GET => 403,
            ("GET", "/api/v1/builds/1") | ("GET", "/api/v1/builds/1/log") => 404,
            ("GET", "/api/v1/no-such-route") => 404,
            ("GET", _) => 200,
            _ => 401,
        };
        assert_eq!(status, want, "anonymous {method} {path}: {answer}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sources_page_needs_a_login_and_a_viewer() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    // A page sends an unauthenticated browser to the login form.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    for token in [None, Some("burst_wrong"), Some("")] {
        let mut rb = http.get(format!("{}/sources", master.url()));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await?;
        assert_eq!(resp.status().as_u16(), 303, "GET /sources with {token:?}");
        let to = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(to.starts_with("/login"), "{to}");
        assert!(!resp.text().await?.contains("table id=\"sources\""));
    }
    let scraper = master.create_token("scraper", "metrics").await?;
    let (status, answer) = call(&master, Method::GET, "/sources", Some(&scraper), None).await?;
    assert_eq!(status, 403, "metrics token GET /sources: {answer}");
    let viewer = master.create_token("viewer1", "viewer").await?;
    let (status, answer) = call(&master, Method::GET, "/sources", Some(&viewer), None).await?;
    assert_eq!(status, 200, "viewer GET /sources: {answer}");
    assert!(master.log().contains("refused"), "refusals are logged");
    Ok(())
}
