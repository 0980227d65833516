//! Headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol, for the web UI tests: open a page, run JavaScript in it, wait
//! for the DOM to show something, take a screenshot.
//!
//! A small CDP client over tokio-tungstenite rather than `chromiumoxide` or
//! `headless_chrome`: those generate the whole protocol (hundreds of
//! thousands of lines) at build time, minutes of compiling on a small
//! machine for the five methods used here (`Page.navigate`,
//! `Runtime.evaluate`, `Page.captureScreenshot`, `Emulation.…` and
//! `/json/new`).
//!
//! The browser runs headless, without its sandbox (the tests run as root),
//! with a fresh profile in a temp dir, its DevTools endpoint on loopback
//! only, and in its own process group, which is killed on drop. A missing
//! binary fails the test, naming the setup step that installs it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::wait;

const SETUP: &str = "scripts/setup/10-apt.sh installs the Debian package `chromium`";
/// How long the browser may take to open its DevTools endpoint.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one DevTools call may take to answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The window the pages and screenshots are drawn in.
pub const VIEWPORT: (u32, u32) = (1280, 800);

/// The browser binary: `$BURST_E2E_CHROMIUM`, Debian's real binary (not its
/// launcher script), or `chromium` on PATH; else an error naming the setup.
fn binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("BURST_E2E_CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let paths = std::env::var_os("PATH").unwrap_or_default();
    find_binary(Path::new("/usr/lib/chromium/chromium"), &paths)
}

/// `debian` (the real binary), else `chromium` in one of `paths`.
fn find_binary(debian: &Path, paths: &std::ffi::OsStr) -> anyhow::Result<PathBuf> {
    [debian.to_owned()]
        .into_iter()
        .chain(std::env::split_paths(paths).map(|dir| dir.join("chromium")))
        .find(|p| p.is_file())
        .with_context(|| format!("`chromium` not found: {SETUP}"))
}

/// A running headless browser.
pub struct Chromium {
    child: Child,
    profile: TempDir,
    /// `127.0.0.1:PORT` of its DevTools endpoint.
    devtools: String,
}

impl Chromium {
    pub async fn start() -> anyhow::Result<Chromium> {
        let bin = binary()?;
        let profile = tempfile::Builder::new()
            .prefix("burst-chromium-")
            .tempdir()
            .context("failed to create the browser's profile dir")?;
        let log = std::fs::File::create(profile.path().join("chromium.log"))
            .context("failed to create the browser's log")?;
        let (w, h) = VIEWPORT;
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(&bin)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--hide-scrollbars",
                    "--mute-audio",
                    "--remote-debugging-address=127.0.0.1",
                    // Port 0: the browser picks one and writes it to
                    // DevToolsActivePort in the profile.
                    "--remote-debugging-port=0",
                ])
                .arg(format!("--window-size={w},{h}"))
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg("about:blank")
                .stdin(Stdio::null())
                .stdout(
                    log.try_clone()
                        .context("failed to share the browser's log")?,
                )
                .stderr(log)
                // Its own group, so drop kills the renderers and helpers too.
                .process_group(0)
                .spawn()
                .with_context(|| format!("failed to start {}", bin.display()))?
        };
        let mut browser = Chromium {
            child,
            profile,
            devtools: String::new(),
        };
        let port_file = browser.profile.path().join("DevToolsActivePort");
        let log_file = browser.profile.path().join("chromium.log");
        let child = &mut browser.child;
        let port = wait::until("chromium's DevTools port", START_TIMEOUT, || {
            let exited = child.try_wait();
            let text = std::fs::read_to_string(&port_file).ok();
            let log_file = &log_file;
            async move {
                if let Ok(Some(status)) = exited {
                    let log = std::fs::read_to_string(log_file).unwrap_or_default();
                    bail!("chromium exited with {status}; its log:\n{log}");
                }
                Ok(text.and_then(|t| t.lines().next()?.trim().parse::<u16>().ok()))
            }
        })
        .await?;
        browser.devtools = format!("127.0.0.1:{port}");
        Ok(browser)
    }

    /// What the browser printed, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default()
    }

    /// A new tab showing `about:blank`, sized to [`VIEWPORT`].
    pub async fn new_page(&self) -> anyhow::Result<Page> {
        let url = format!("http://{}/json/new?about:blank", self.devtools);
        let target: Value = reqwest::Client::new()
            .put(&url)
            .send()
            .await
            .with_context(|| format!("failed to open a tab with PUT {url}"))?
            .error_for_status()?
            .json()
            .await
            .context("failed to read the new tab's description")?;
        let ws_url = target["webSocketDebuggerUrl"]
            .as_str()
            .with_context(|| format!("the new tab has no webSocketDebuggerUrl: {target}"))?;
        let (ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .with_context(|| format!("failed to connect to the tab at {ws_url}"))?;
        let mut page = Page { ws, next_id: 0 };
        let (w, h) = VIEWPORT;
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": w, "height": h, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await?;
        Ok(page)
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // The whole group: the browser and every helper it started.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab, driven over its own DevTools websocket.
pub struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Page {
    /// Sends one DevTools command and returns its `result`. Events that
    /// arrive meanwhile are dropped: the tests look at the DOM instead.
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let text = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws
            .send(Message::text(text))
            .await
            .with_context(|| format!("failed to send {method} to the browser"))?;
        let answer = tokio::time::timeout(CALL_TIMEOUT, async {
            // Bounded by the timeout around it.
            while let Some(msg) = self.ws.next().await {
                let msg =
                    msg.with_context(|| format!("the browser's socket failed during {method}"))?;
                let Message::Text(text) = msg else { continue };
                let value: Value = serde_json::from_str(text.as_str())
                    .with_context(|| format!("the browser sent bad JSON: {text}"))?;
                if value["id"].as_u64() == Some(id) {
                    return Ok(value);
                }
            }
            bail!("the browser closed the socket during {method}")
        })
        .await
        .with_context(|| format!("no answer to {method} within {CALL_TIMEOUT:?}"))??;
        if let Some(error) = answer.get("error") {
            bail!("{method} failed: {error}");
        }
        Ok(answer["result"].clone())
    }

    /// Loads `url` and waits until the document has finished loading.
    pub async fn goto(&mut self, url: &str) -> anyhow::Result<()> {
        let result = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(error) = result.get("errorText") {
            bail!("failed to open {url}: {error}");
        }
        self.wait_for(
            &format!("{url} to finish loading"),
            "document.readyState === 'complete' && location.href !== 'about:blank'",
        )
        .await
    }

    /// Runs `expression` in the page (promises awaited) and returns its
    /// value as JSON; a thrown exception is an error.
    pub async fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        if let Some(details) = result.get("exceptionDetails") {
            let text = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())
                .unwrap_or("an exception");
            bail!("{expression} threw: {text}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Evaluates `expression` until it is truthy, within a generous bound.
    pub async fn wait_for(&mut self, what: &str, expression: &str) -> anyhow::Result<()> {
        self.wait_value(what, expression, truthy).await.map(drop)
    }

    /// Evaluates `expression` until `done` holds for its value; returns it.
    pub async fn wait_value(
        &mut self,
        what: &str,
        expression: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let timeout = Duration::from_secs(60);
        let start = std::time::Instant::now();
        loop {
            let last = match self.eval(expression).await {
                Ok(v) if done(&v) => return Ok(v),
                Ok(v) => v.to_string(),
                Err(e) => format!("error: {e:#}"),
            };
            if start.elapsed() >= timeout {
                let text = self.text().await.unwrap_or_default();
                bail!(
                    "timed out after {timeout:?} waiting for {what} ({expression}); last value: \
                     {last}; the page's text:\n{text}"
                );
            }
            tokio::time::sleep(wait::POLL).await;
        }
    }

    /// The page's visible text, for failure messages.
    pub async fn text(&mut self) -> anyhow::Result<String> {
        let v = self
            .eval("document.body ? document.body.innerText : ''")
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Saves the whole page (not just the viewport) as a PNG at `path`.
    pub async fn screenshot(&mut self, path: &Path) -> anyhow::Result<()> {
        let result = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await?;
        let data = result["data"]
            .as_str()
            .context("the screenshot answer has no data")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .context("the screenshot is not base64")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
        }
        std::fs::write(path, png).with_context(|| format!("failed to write {}", path.display()))
    }
}

/// JavaScript's truthiness, for the values `returnByValue` brings back.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Where the UI tests leave their screenshots: `$CARGO_TARGET_DIR/ui-screenshots`
/// (or `target/ui-screenshots`), a test artifact.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("ui-screenshots")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_browser_names_the_setup_step() {
        let empty = tempfile::tempdir().expect("temp dir");
        let err = super::find_binary(&empty.path().join("chromium"), empty.path().as_os_str())
            .expect_err("no browser there");
        assert!(err.to_string().contains("scripts/setup/10-apt.sh"), "{err}");
    }
}
