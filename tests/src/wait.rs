//! Bounded waiting, the one way the tests wait: poll a condition (an event
//! in the API, the ledger, a log, `/proc`) until it holds. Every wait has a
//! generous deadline and, when it runs out, says what it waited for and
//! what it saw last, so a slow machine makes tests slower, never wrong.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// How often conditions are checked again.
pub const POLL: Duration = Duration::from_millis(50);

/// Calls `check` until it returns `Some`, or fails after `timeout` naming
/// `what` and the last error `check` returned, if any.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        let last_err = match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if start.elapsed() >= timeout {
            match last_err {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Fetches a value with `fetch` until `done` holds for it, and returns it;
/// on timeout the error shows the last value fetched (a build, a ledger
/// row) next to `what`.
pub async fn until_seen<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut fetch: F,
    done: impl Fn(&T) -> bool,
) -> anyhow::Result<T>
where
    T: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let start = Instant::now();
    loop {
        let last = match fetch().await {
            Ok(v) if done(&v) => return Ok(v),
            Ok(v) => format!("{v:#?}"),
            Err(e) => format!("error: {e:#}"),
        };
        if start.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Like [`until`] for a plain condition.
pub async fn until_true<F>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> bool,
{
    until_some(what, timeout, || check().then_some(())).await
}

/// Like [`until`] for a synchronous probe.
pub async fn until_some<T, F>(what: &str, timeout: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Option<T>,
{
    until(what, timeout, || {
        let found = probe();
        async move { Ok(found) }
    })
    .await
}
