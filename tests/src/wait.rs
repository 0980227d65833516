//! Bounded waiting: every wait in the tests has a deadline and says what it
//! waited for when it runs out.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// How often conditions are checked again.
pub const POLL: Duration = Duration::from_millis(50);

/// Calls `check` until it returns `Some`, or fails after `timeout` naming
/// `what` and the last thing `check` saw (`last`).
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

/// Like [`until`] for a plain condition.
pub async fn until_true<F>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> bool,
{
    until(what, timeout, || {
        let ok = check();
        async move { Ok(ok.then_some(())) }
    })
    .await
}
