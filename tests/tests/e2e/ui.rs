//! The web UI over plain HTTP, as a browser without JavaScript sees it:
//! login and its cookie, CSRF and roles on the buttons' POSTs, the builds
//! and build pages, the log page of a 100 MB log (bounded bytes, paging
//! back), the live streams, and cached assets. (The Chromium-driven checks
//! live in their own module.)

use std::time::Duration;

use anyhow::{bail, Context};
use burst_e2e::{wait, Master, MasterBuilder};
use burst_master::model::BuildState;
use burst_master::store::Store as _;
use futures::StreamExt;
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 4

[[builders]]
name = "fails"
labels = ["linux"]

[builders.params]
GREETING = { default = "hello", description = "free text, shown on the build page" }

[[builders.steps]]
name = "colour"
run = "printf '\\033[31mred <b>not bold</b>\\033[0m\\n'; echo \"$GREETING\"; exit 3"

[[builders]]
name = "slow"
labels = ["linux"]

[[builders.steps]]
name = "wait"
run = "sleep 60"

[[builders]]
name = "quick"
labels = ["linux"]

[[builders.steps]]
name = "ok"
run = "echo ok"
"#;

/// A browser without cookies jar or redirects: the test sees every answer.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Browser {
    fn new(master: &Master) -> anyhow::Result<Self> {
        let mut http = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(60));
        if let Some(ca) = master.ca_file() {
            let pem = std::fs::read(&ca).with_context(|| format!("read {}", ca.display()))?;
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(Self {
            http: http.build()?,
            base: master.url(),
            cookie: None,
        })
    }

    async fn answer(&self, rb: reqwest::RequestBuilder) -> anyhow::Result<Page> {
        let rb = match &self.cookie {
            Some(c) => rb.header(COOKIE, c),
            None => rb,
        };
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await?;
        Ok(Page {
            status,
            headers,
            body,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Page> {
        self.answer(self.http.get(format!("{}{path}", self.base)))
            .await
            .with_context(|| format!("GET {path}"))
    }

    /// POSTs a form as a browser on this master's own page would (with its
    /// Origin).
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> anyhow::Result<Page> {
        let rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .form(fields);
        self.answer(rb)
            .await
            .with_context(|| format!("POST {path}"))
    }

    /// Logs in with `token`; the `Set-Cookie` header it got.
    async fn login(&mut self, token: &str) -> anyhow::Result<String> {
        let page = self
            .post("/login", &[("token", token), ("next", "/builds")])
            .await?;
        if page.status != 303 {
            bail!("login: HTTP {}: {}", page.status, page.body);
        }
        let set = page
            .headers
            .get(SET_COOKIE)
            .context("login set no cookie")?
            .to_str()?
            .to_owned();
        let pair = set.split(';').next().unwrap_or_default().to_owned();
        self.cookie = Some(pair);
        Ok(set)
    }
}

/// The value of the first hidden `csrf` field in a page.
fn csrf(html: &str) -> anyhow::Result<String> {
    let at = html
        .find("name=\"csrf\" value=\"")
        .context("no csrf field in the page")?;
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    Ok(rest[..rest.find('"').context("unterminated")?].to_owned())
}

async fn ui_master() -> anyhow::Result<Master> {
    Master::start(CONFIG).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_login_sets_a_strict_httponly_cookie_and_logout_ends_it() -> anyhow::Result<()> {
    let master = ui_master().await?;
    let mut browser = Browser::new(&master)?;

    // Not logged in: pages send the browser to the login form; the API
    // still answers 401.
    let page = browser.get("/builds?state=queued").await?;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.headers[LOCATION],
        "/login?next=%2Fbuilds%3Fstate%3Dqueued"
    );
    assert_eq!(browser.get("/api/v1/builds").await?.status, 401);
    let form = browser.get("/login").await?;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("id=\"login\""), "{}", form.body);

    let wrong = browser.post("/login", &[("token", "burst_nope")]).await?;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.headers.get(SET_COOKIE).is_none());

    let set = browser.login(&master.admin_token()).await?;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{flag} missing: {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP master: {set}");
    assert!(
        !set.contains(&master.admin_token()),
        "the cookie carries the token itself: {set}"
    );
    let page = browser.get("/builds").await?;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"builds\""), "{}", page.body);
    assert!(page.body.contains("admin (admin)"), "{}", page.body);
    // The session reads the API too (the raw log link).
    assert_eq!(browser.get("/api/v1/builds").await?.status, 200);

    let token = csrf(&page.body)?;
    let out = browser.post("/logout", &[("csrf", &token)]).await?;
    assert_eq!(out.status, 303, "{}", out.body);
    assert!(out.headers[SET_COOKIE].to_str()?.contains("Max-Age=0"));
    // The old cookie is dead on the master, not only in the browser.
    assert_eq!(browser.get("/builds").await?.status, 303);

    // Revoking a token ends the sessions made from it.
    let viewer = master.create_token("looker", "viewer").await?;
    let mut other = Browser::new(&master)?;
    other.login(&viewer).await?;
    assert_eq!(other.get("/builds").await?.status, 200);
    let (status, answer) = master
        .api_request(
            reqwest::Method::DELETE,
            "/api/v1/tokens/looker",
            Some(&master.admin_token()),
            &[],
            None,
        )
        .await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(other.get("/builds").await?.status, 303);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_pages_need_no_login_with_anonymous_read_and_show_why_builds_wait() -> anyhow::Result<()>
{
    // Workers that never connect: the build stays queued, with a reason.
    let master = MasterBuilder::config(burst_e2e::fake_worker::SLEEPING_POOL)
        .master_toml("anonymous_read = true")
        .start()
        .await?;
    let id = master.submit("hello", &[]).await?[0];
    let browser = Browser::new(&master)?;
    let body = wait::until_seen(
        "the queued build's row to say why it waits",
        Duration::from_secs(30),
        || async {
            let page = browser.get("/builds").await?;
            anyhow::ensure!(page.status == 200, "HTTP {}: {}", page.status, page.body);
            Ok(page.body)
        },
        |body: &String| reason_of(body, id).is_some_and(|r| !r.is_empty()),
    )
    .await?;
    let why = reason_of(&body, id).unwrap_or_default();
    assert!(master.build(id).await?.state == BuildState::Queued, "{why}");
    assert!(
        why.contains("wait") || why.contains("worker"),
        "reason shown: {why}"
    );
    // Reading is open; writing is not.
    assert!(browser.get(&format!("/builds/{id}")).await?.status == 200);
    let refused = browser.post(&format!("/builds/{id}/cancel"), &[]).await?;
    assert_eq!(refused.status, 401, "{}", refused.body);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_session_cookie_is_secure_under_tls() -> anyhow::Result<()> {
    let master = MasterBuilder::config(CONFIG)
        .tls_self_signed()
        .start()
        .await?;
    let mut browser = Browser::new(&master)?;
    let set = browser.login(&master.admin_token()).await?;
    assert!(set.contains("; Secure"), "{set}");
    let page = browser.get("/builds").await?;
    assert_eq!(page.status, 200, "{}", page.body);
    // A form POST carries the https Origin and passes.
    let token = csrf(&page.body)?;
    let out = browser.post("/logout", &[("csrf", &token)]).await?;
    assert_eq!(out.status, 303, "{}", out.body);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_cookie_writes_need_the_csrf_token_and_the_role() -> anyhow::Result<()> {
    let master = ui_master().await?;
    let submitter = master.create_token("sub", "submitter").await?;
    let viewer = master.create_token("view", "viewer").await?;
    // Submitted by `sub`, so `sub` may cancel it.
    let (status, answer) = master
        .api_request(
            reqwest::Method::POST,
            "/api/v1/builds",
            Some(&submitter),
            &[],
            Some(&serde_json::json!({ "builder": "slow" })),
        )
        .await?;
    assert_eq!(status, 201, "{answer}");
    let id = answer["builds"][0].as_i64().context("build id")?;
    let path = format!("/builds/{id}");

    // A viewer sees no buttons, and its POST is refused by role.
    let mut looker = Browser::new(&master)?;
    looker.login(&viewer).await?;
    let page = looker.get(&path).await?;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("id=\"cancel\""), "{}", page.body);
    assert!(!page.body.contains("id=\"rebuild\""), "{}", page.body);
    let token = csrf(&page.body)?; // the logout form's
    let refused = looker
        .post(&format!("{path}/cancel"), &[("csrf", &token)])
        .await?;
    assert_eq!(refused.status, 403, "{}", refused.body);

    // The submitter sees Cancel; a forged POST (no token, a wrong one, or
    // from another site) is refused and logged; the real form works.
    let mut owner = Browser::new(&master)?;
    owner.login(&submitter).await?;
    let page = owner.get(&path).await?;
    assert!(page.body.contains("id=\"cancel\""), "{}", page.body);
    let token = csrf(&page.body)?;
    let forged = owner.post(&format!("{path}/cancel"), &[]).await?;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let wrong = owner
        .post(&format!("{path}/cancel"), &[("csrf", "0000")])
        .await?;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    let cross = owner
        .answer(
            owner
                .http
                .post(format!("{}{path}/cancel", owner.base))
                .header("origin", "http://evil.example")
                .form(&[("csrf", token.as_str())]),
        )
        .await?;
    assert_eq!(cross.status, 403, "{}", cross.body);
    wait::until_true(
        "the refused forged POST in the master's log",
        Duration::from_secs(10),
        || {
            master.log().lines().any(|l| {
                l.contains("refused")
                    && l.contains(&format!("POST /builds/{id}/cancel"))
                    && l.contains("csrf")
            })
        },
    )
    .await?;
    assert!(
        !master.build(id).await?.state.is_finished(),
        "a refused POST cancelled the build"
    );
    // A bearer-token API write needs no CSRF token.
    assert_eq!(
        master
            .api_request(
                reqwest::Method::GET,
                &format!("/api/v1/builds/{id}"),
                Some(&viewer),
                &[],
                None,
            )
            .await?
            .0,
        200
    );

    let done = owner
        .post(&format!("{path}/cancel"), &[("csrf", &token)])
        .await?;
    assert_eq!(done.status, 303, "{}", done.body);
    let build = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::Cancelled);

    // Rebuild queues the same builder again, through the same form rules.
    let rebuilt = owner
        .post(&format!("{path}/rebuild"), &[("csrf", &token)])
        .await?;
    assert_eq!(rebuilt.status, 303, "{}", rebuilt.body);
    let to = rebuilt.headers[LOCATION].to_str()?.to_owned();
    let new_id: i64 = to
        .strip_prefix("/builds/")
        .context("redirect to the new build")?
        .parse()?;
    let again = master.build(new_id).await?;
    assert_eq!(again.builder, "slow");
    assert_eq!(again.submitted_by.as_deref(), Some("sub"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_builds_and_build_pages_show_what_the_api_has() -> anyhow::Result<()> {
    let master = ui_master().await?;
    let xss = "<script>alert(1)</script>";
    let failing = master.submit("fails", &[("GREETING", xss)]).await?[0];
    let quick = master.submit("quick", &[]).await?[0];
    master.wait_build(failing, Duration::from_secs(60)).await?;
    master.wait_build(quick, Duration::from_secs(60)).await?;
    let mut browser = Browser::new(&master)?;
    browser.login(&master.admin_token()).await?;

    let all = browser.get("/").await?;
    assert_eq!(all.status, 200, "{}", all.body);
    for id in [failing, quick] {
        assert!(
            all.body.contains(&format!("id=\"build-{id}\"")),
            "{}",
            all.body
        );
    }
    let only = browser.get("/builds?builder=quick&state=").await?;
    assert!(only.body.contains(&format!("id=\"build-{quick}\"")));
    assert!(
        !only.body.contains(&format!("id=\"build-{failing}\"")),
        "{}",
        only.body
    );
    let failed = browser.get("/builds?state=failed").await?;
    assert!(failed.body.contains(&format!("id=\"build-{failing}\"")));
    assert!(!failed.body.contains(&format!("id=\"build-{quick}\"")));
    let by_admin = browser.get("/builds?submitter=admin&label=linux").await?;
    assert!(by_admin.body.contains(&format!("id=\"build-{quick}\"")));
    let nobody = browser.get("/builds?submitter=nobody").await?;
    assert!(nobody.body.contains("id=\"no-builds\""), "{}", nobody.body);
    assert_eq!(browser.get("/builds?state=bogus").await?.status, 400);

    let page = browser.get(&format!("/builds/{failing}")).await?;
    assert_eq!(page.status, 200, "{}", page.body);
    let b = &page.body;
    assert!(b.contains("data-state=\"failed\""), "{b}");
    assert!(b.contains("<td class=\"exit\">3</td>"), "{b}");
    assert!(b.contains("class=\"pool\">local</span>"), "{b}");
    assert!(b.contains("class=\"worker\">local-"), "{b}");
    assert!(b.contains("class=\"attempt\" data-number=\"1\""), "{b}");
    assert!(
        !b.contains(xss),
        "the param reached the page unescaped: {b}"
    );
    assert!(b.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{b}");

    // The step's log page: colours as spans, the step's text escaped.
    let log = browser
        .get(&format!("/builds/{failing}/attempts/1/steps/1/log"))
        .await?;
    assert_eq!(log.status, 200, "{}", log.body);
    assert!(
        log.body
            .contains("<span class=\"f1\">red &lt;b&gt;not bold&lt;/b&gt;</span>"),
        "{}",
        log.body
    );
    assert!(!log.body.contains(xss), "{}", log.body);
    assert!(log.body.contains("id=\"L0\""), "{}", log.body);
    // "raw": a download link to the API's plain text, escapes and all.
    let raw_link = format!("id=\"raw\" href=\"/api/v1/builds/{failing}/log\" download=");
    assert!(log.body.contains(&raw_link), "{}", log.body);
    let raw = browser
        .get(&format!("/api/v1/builds/{failing}/log"))
        .await?;
    assert_eq!(raw.status, 200, "{}", raw.body);
    assert!(
        raw.headers["content-type"]
            .to_str()?
            .starts_with("text/plain"),
        "{:?}",
        raw.headers
    );
    assert!(
        raw.body.contains("\u{1b}[31mred <b>not bold</b>"),
        "{}",
        raw.body
    );
    assert!(
        !log.body.contains("data-events"),
        "a finished step streams nothing"
    );
    assert_eq!(
        browser
            .get(&format!("/builds/{failing}/attempts/1/steps/9/log"))
            .await?
            .status,
        404
    );
    assert_eq!(browser.get("/builds/999999").await?.status, 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_a_100mb_log_opens_at_its_tail_and_pages_back() -> anyhow::Result<()> {
    // seq 1..12,000,000 is 96.9 MB; then a marker line.
    let master = MasterBuilder::new()
        .master_toml("step_log_limit = \"200MB\"")
        .section(
            r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "big"
labels = ["linux"]

[[builders.steps]]
name = "print"
run = "seq 1 12000000; echo TAIL-MARKER"
"#,
        )
        .start()
        .await?;
    let id = master.submit("big", &[]).await?[0];
    let build = master.wait_build(id, Duration::from_secs(300)).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    let log_bytes = build.attempts[0].steps[0].log_bytes;
    assert!(log_bytes > 96_000_000, "{log_bytes}");

    let mut browser = Browser::new(&master)?;
    browser.login(&master.admin_token()).await?;
    let path = format!("/builds/{id}/attempts/1/steps/1/log");
    let tail = browser.get(&path).await?;
    assert_eq!(tail.status, 200);
    eprintln!(
        "tail page: {} bytes for a {log_bytes}-byte log",
        tail.body.len()
    );
    assert!(
        tail.body.len() < 1_000_000,
        "the tail page of a 100 MB log sent {} bytes",
        tail.body.len()
    );
    assert!(tail.body.contains(">TAIL-MARKER</span>"), "no tail line");
    assert!(tail.body.contains(">12000000</span>"), "no last number");

    // "older" goes back from the first line shown; the page before ends
    // with the number just before it.
    let first = first_number(&tail.body)?;
    let older = older_link(&tail.body)?;
    let page = browser.get(&older).await?;
    assert_eq!(page.status, 200);
    assert!(page.body.len() < 1_000_000, "{}", page.body.len());
    assert!(
        page.body.contains(&format!(">{}</span>", first - 1)),
        "the older page lacks line {}",
        first - 1
    );
    assert!(!page.body.contains(&format!(">{first}</span>")));
    assert!(page.body.contains("id=\"newest\""));
    Ok(())
}

/// The text of build `id`'s "why" cell on the builds page.
fn reason_of(body: &str, id: i64) -> Option<String> {
    let row = body.find(&format!("id=\"build-{id}\""))?;
    let rest = &body[row..];
    let cell = "<td class=\"reason\">";
    let at = rest.find(cell)? + cell.len();
    Some(rest[at..at + rest[at..].find('<')?].to_owned())
}

/// The first number line of a log page.
fn first_number(html: &str) -> anyhow::Result<u64> {
    let at = html.find("class=\"ln\"").context("no line")?;
    let rest = &html[at..];
    let text = &rest[rest.find("</a>").context("link")? + 4..];
    Ok(text[..text.find('<').context("end")?].parse()?)
}

fn older_link(html: &str) -> anyhow::Result<String> {
    let at = html.find("id=\"older\" href=\"").context("no older link")?;
    let rest = &html[at + "id=\"older\" href=\"".len()..];
    Ok(rest[..rest.find('"').context("end")?].replace("&amp;", "&"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_live_streams_send_rows_and_log_lines() -> anyhow::Result<()> {
    let master = MasterBuilder::new()
        .section(
            r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "ticks"
labels = ["linux"]

[[builders.steps]]
name = "tick"
run = "for i in 1 2 3 4 5 6; do echo tick-$i; sleep 1; done"
"#,
        )
        .start()
        .await?;
    let mut browser = Browser::new(&master)?;
    browser.login(&master.admin_token()).await?;

    // The builds stream: a build submitted after it opened shows up.
    let rows = browser
        .http
        .get(format!("{}/ui/events", browser.base))
        .header(COOKIE, browser.cookie.clone().unwrap_or_default())
        .send()
        .await?;
    assert_eq!(rows.status(), 200);
    let id = master.submit("ticks", &[]).await?[0];
    let seen = read_until(rows, &format!("\"id\":{id}"), Duration::from_secs(30)).await?;
    assert!(seen.contains("event: build"), "{seen}");
    assert!(
        seen.contains(&format!("id=\\\"build-{id}\\\"")),
        "the row's HTML: {seen}"
    );

    // The log stream: lines the step prints after the page opened, then
    // the end.
    master
        .wait_step_running(id, 0, Duration::from_secs(60))
        .await?;
    let page = browser
        .get(&format!("/builds/{id}/attempts/1/steps/1/log"))
        .await?;
    let at = page
        .body
        .find("data-events=\"")
        .context("a running step's page names its stream")?;
    let rest = &page.body[at + "data-events=\"".len()..];
    let events = rest[..rest.find('"').context("end")?].replace("&amp;", "&");
    let stream = browser
        .http
        .get(format!("{}{events}", browser.base))
        .header(COOKIE, browser.cookie.clone().unwrap_or_default())
        .send()
        .await?;
    assert_eq!(stream.status(), 200);
    let text = read_until(stream, "event: end", Duration::from_secs(60)).await?;
    assert!(text.contains("tick-6"), "{text}");
    assert!(text.contains("data: succeeded"), "{text}");
    Ok(())
}

/// Reads a streamed answer until `needle` appears (bounded).
async fn read_until(
    resp: reqwest::Response,
    needle: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk?));
            if seen.contains(needle) {
                return Ok::<_, anyhow::Error>(true);
            }
        }
        Ok(false)
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(true)) => Ok(seen),
        Ok(Ok(false)) => bail!("the stream ended without {needle:?}: {seen}"),
        Ok(Err(e)) => Err(e),
        Err(_) => bail!("no {needle:?} within {timeout:?}: {seen}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_assets_are_cached_by_etag() -> anyhow::Result<()> {
    let master = ui_master().await?;
    let browser = Browser::new(&master)?;
    // Public: the login page needs its stylesheet.
    let login = browser.get("/login").await?;
    let at = login
        .body
        .find("href=\"/ui/assets/burst-")
        .context("no stylesheet link")?;
    let rest = &login.body[at + "href=\"".len()..];
    let css = rest[..rest.find('"').context("end")?].to_owned();
    let first = browser.get(&css).await?;
    assert_eq!(first.status, 200);
    assert!(first.body.contains("pre#log"));
    assert!(first.headers["cache-control"]
        .to_str()?
        .contains("immutable"));
    let etag = first.headers["etag"].to_str()?.to_owned();
    let again = browser
        .answer(
            browser
                .http
                .get(format!("{}{css}", browser.base))
                .header("if-none-match", &etag),
        )
        .await?;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let js = browser.get("/ui/assets/burst.js").await?;
    assert_eq!(js.status, 200);
    assert_eq!(js.headers["cache-control"], "no-cache");
    assert_eq!(browser.get("/ui/assets/nope.css").await?.status, 404);
    Ok(())
}

/// Builders for the history test: one old failing build of its own, and a
/// builder whose 1100 builds are seeded straight into the database.
const HISTORY: &str = r#"
[pools.local]
provider = "local"
labels = ["linux", "rare"]
max_workers = 1

[[builders]]
name = "old"
labels = ["linux", "rare"]

[[builders.steps]]
name = "fail"
run = "exit 1"

[[builders]]
name = "bulk"
labels = ["linux"]

[[builders.steps]]
name = "ok"
run = "true"
"#;

/// Newer builds than the old one: past the 1000 the filters once looked at.
const NEWER: usize = 1100;

#[tokio::test(flavor = "multi_thread")]
async fn ui_filters_find_a_build_older_than_the_newest_thousand_and_page_back() -> anyhow::Result<()>
{
    let mut master = Master::start(HISTORY).await?;
    let carol = master.create_token("carol", "submitter").await?;
    let (status, answer) = master
        .api_request(
            reqwest::Method::POST,
            "/api/v1/builds",
            Some(&carol),
            &[],
            Some(&serde_json::json!({ "builder": "old" })),
        )
        .await?;
    assert_eq!(status, 201, "{answer}");
    let old = answer["builds"][0].as_i64().context("build id")?;
    let build = master.wait_build(old, Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::Failed, "{build:#?}");

    // 1100 newer finished builds, written while the master is down.
    master.sigterm_and_wait(Duration::from_secs(60)).await?;
    let store = burst_master::store::SqliteStore::open(&master.state_dir()).await?;
    let bulk = (0..NEWER)
        .map(|i| burst_master::model::NewBuild {
            submit_id: format!("bulk-{i}"),
            builder: "bulk".to_owned(),
            cell: Default::default(),
            params: Default::default(),
            labels: vec!["linux".to_owned()],
            steps: Vec::new(),
            retries: 0,
            submitted_by: Some("admin".to_owned()),
        })
        .collect();
    let inserted = store.insert_builds(bulk).await?;
    for mut b in inserted {
        b.state = BuildState::Succeeded;
        b.finished_at = Some(b.created_at);
        store.save_build(&b).await?;
    }
    store.close().await;
    master.restart().await?;

    // The API: each filter alone finds the old build.
    let admin = master.admin_token();
    let http = reqwest::Client::new();
    for query in [
        "builder=old",
        "state=failed",
        "label=rare",
        "submitter=carol",
        "builder=old&state=failed&label=rare&submitter=carol",
    ] {
        let list: Vec<burst_master::model::Build> =
            master.api_get(&format!("/api/v1/builds?{query}")).await?;
        let ids: Vec<_> = list.iter().map(|b| b.id).collect();
        assert_eq!(ids, [old], "GET /api/v1/builds?{query}");
    }
    // The pages, without JavaScript, through the same query.
    let mut browser = Browser::new(&master)?;
    browser.login(&admin).await?;
    for query in [
        "builder=old",
        "state=failed",
        "label=rare",
        "submitter=carol",
    ] {
        let page = browser.get(&format!("/builds?{query}")).await?;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains(&format!("id=\"build-{old}\"")),
            "/builds?{query} lacks build {old}"
        );
        assert_eq!(
            page.body.matches("<tr id=\"build-").count(),
            1,
            "/builds?{query}"
        );
    }

    // Paging by id: the API's `Link: rel="next"` walks every build once.
    let mut next = Some("/api/v1/builds?limit=300".to_owned());
    let mut seen = Vec::new();
    while let Some(path) = next.take() {
        let resp = http
            .get(format!("{}{path}", master.url()))
            .bearer_auth(&admin)
            .send()
            .await?
            .error_for_status()?;
        next = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| Some(l.strip_prefix('<')?.split('>').next()?.to_owned()));
        let page: Vec<burst_master::model::Build> = resp.json().await?;
        seen.extend(page.iter().map(|b| b.id));
        anyhow::ensure!(seen.len() <= NEWER + 1, "paging repeats builds: {path}");
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "newest first, each once");
    assert_eq!(seen.len(), NEWER + 1);
    assert_eq!(seen.last(), Some(&old));

    // The UI's "older" link goes on from the last row shown; an older page
    // has a way back and no live rows.
    let first = browser.get("/builds").await?;
    assert!(
        first.body.contains("data-events="),
        "the newest page is live"
    );
    let older = older_link(&first.body)?;
    assert!(older.starts_with("/builds?before="), "{older}");
    let page = browser.get(&older).await?;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"newest\""), "{}", page.body);
    assert!(
        !page.body.contains("data-events="),
        "an older page is a snapshot"
    );
    let before: i64 = older.trim_start_matches("/builds?before=").parse()?;
    assert!(page.body.contains(&format!("id=\"build-{}\"", before - 1)));
    assert!(!page.body.contains(&format!("id=\"build-{before}\"")));
    let last = browser.get(&format!("/builds?before={}", old + 1)).await?;
    assert!(last.body.contains(&format!("id=\"build-{old}\"")));
    assert_eq!(browser.get("/builds?before=x").await?.status, 400);
    assert_eq!(
        master
            .api_request(
                reqwest::Method::GET,
                "/api/v1/builds?before=x",
                Some(&admin),
                &[],
                None
            )
            .await?
            .0,
        400
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_refusals_are_html_pages_and_api_refusals_stay_json() -> anyhow::Result<()> {
    let master = ui_master().await?;
    let scraper = master.create_token("scraper", "metrics").await?;
    let viewer = master.create_token("looker", "viewer").await?;
    let id = master.submit("slow", &[]).await?[0];
    let http = reqwest::Client::new();
    let content_type = |r: &reqwest::Response| {
        r.headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };

    // A token whose role may not read pages: the page says so, in HTML.
    let page = http
        .get(format!("{}/builds", master.url()))
        .bearer_auth(&scraper)
        .send()
        .await?;
    assert_eq!(page.status(), 403);
    assert!(
        content_type(&page).starts_with("text/html"),
        "{}",
        content_type(&page)
    );
    let body = page.text().await?;
    assert!(
        body.contains("id=\"error\"") && body.contains("403 Forbidden"),
        "{body}"
    );
    assert!(body.contains("has role metrics"), "{body}");
    // The API refuses the same token in JSON.
    let api = http
        .get(format!("{}/api/v1/builds", master.url()))
        .bearer_auth(&scraper)
        .send()
        .await?;
    assert_eq!(api.status(), 403);
    assert!(
        content_type(&api).starts_with("application/json"),
        "{}",
        content_type(&api)
    );
    let json: serde_json::Value = api.json().await?;
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("metrics")),
        "{json}"
    );

    // A viewer's session: the role refusal of a button's POST, and a POST
    // without the CSRF token, are pages too.
    let mut looker = Browser::new(&master)?;
    looker.login(&viewer).await?;
    let build_page = looker.get(&format!("/builds/{id}")).await?;
    let token = csrf(&build_page.body)?;
    for fields in [vec![("csrf", token.as_str())], vec![]] {
        let refused = looker
            .post(&format!("/builds/{id}/cancel"), &fields)
            .await?;
        assert_eq!(refused.status, 403, "{}", refused.body);
        let ct = refused.headers[reqwest::header::CONTENT_TYPE]
            .to_str()?
            .to_owned();
        assert!(ct.starts_with("text/html"), "{ct}: {}", refused.body);
        assert!(refused.body.contains("id=\"error\""), "{}", refused.body);
    }
    // Not logged in: a POST to a page is refused with a page as well.
    let anonymous = Browser::new(&master)?;
    let refused = anonymous.post(&format!("/builds/{id}/cancel"), &[]).await?;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("id=\"error\""), "{}", refused.body);
    assert!(!master.build(id).await?.state.is_finished());
    master.cancel(id).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_every_page_needs_a_login_or_token_with_the_role() -> anyhow::Result<()> {
    let master = ui_master().await?;
    let id = master.submit("quick", &[]).await?[0];
    master.wait_build(id, Duration::from_secs(60)).await?;
    let scraper = master.create_token("scraper", "metrics").await?;
    let viewer = master.create_token("looker", "viewer").await?;
    let reads = [
        "/".to_owned(),
        "/builds".to_owned(),
        format!("/builds/{id}"),
        format!("/builds/{id}/events"),
        format!("/builds/{id}/attempts/1/steps/1/log"),
        format!("/builds/{id}/attempts/1/steps/1/log/events"),
        "/ui/events".to_owned(),
        "/grid".to_owned(),
        "/workers".to_owned(),
    ];
    let writes = [
        format!("/builds/{id}/cancel"),
        format!("/builds/{id}/rebuild"),
    ];
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(60))
        .build()?;
    let send = |method: reqwest::Method, path: &str, token: Option<&str>| {
        let mut rb = http
            .request(method, format!("{}{path}", master.url()))
            .header("origin", master.url());
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send()
    };
    for path in &reads {
        for token in [None, Some("burst_wrong")] {
            let r = send(reqwest::Method::GET, path.as_str(), token).await?;
            assert_eq!(r.status(), 303, "GET {path} with {token:?}");
            let to = r.headers()[LOCATION].to_str()?;
            // `/` is where a login lands anyway: no `next` for it.
            let want = if path == "/" {
                "/login".to_owned()
            } else {
                "/login?next=".to_owned()
            };
            assert!(to.starts_with(&want), "GET {path}: {to}");
        }
        let r = send(reqwest::Method::GET, path.as_str(), Some(scraper.as_str())).await?;
        assert_eq!(r.status(), 403, "GET {path} with a metrics token");
        assert!(r.text().await?.contains("id=\"error\""), "GET {path}");
        let r = send(reqwest::Method::GET, path.as_str(), Some(viewer.as_str())).await?;
        assert_eq!(r.status(), 200, "GET {path} as a viewer");
    }
    for path in &writes {
        for token in [None, Some("burst_wrong")] {
            let r = send(reqwest::Method::POST, path.as_str(), token).await?;
            assert_eq!(r.status(), 401, "POST {path} with {token:?}");
        }
        for token in [scraper.as_str(), viewer.as_str()] {
            let r = send(reqwest::Method::POST, path.as_str(), Some(token)).await?;
            assert_eq!(r.status(), 403, "POST {path} as a reader");
            assert!(r.text().await?.contains("id=\"error\""), "POST {path}");
        }
    }
    let logout = send(reqwest::Method::POST, "/logout", None).await?;
    assert_eq!(logout.status(), 401);
    assert_eq!(
        send(
            reqwest::Method::GET,
            "/builds/999999/events",
            Some(viewer.as_str())
        )
        .await?
        .status(),
        404
    );
    Ok(())
}
