//! Following builds: stream each log live, then learn the final state.
//! If the stream breaks, poll the build until it finishes and print the part
//! of the log that was missed from the whole log.

use std::io::{self, Write};
use std::time::Duration;

use burst_common::error_chain::Chain;
use futures::StreamExt;
use tokio::task::JoinSet;

use super::client::{Client, LogStream};
use super::exit::{self, CliError, Exit};
use super::output::Output;
use super::prefix::LinePrefixer;
use super::render;
use super::wait_status::wait_while_queued;
use crate::model::{Build, BuildId};

#[derive(Debug, Clone)]
pub struct Timing {
    /// Between GETs of a build whose log stream is gone.
    pub poll: Duration,
    /// A silent stream for this long makes us check the build is still alive.
    pub idle_probe: Duration,
    /// Consecutive failed polls before giving up on the master.
    pub max_poll_failures: u32,
    /// Between GETs of a build that waits in the queue.
    pub wait_poll: Duration,
    /// Off a terminal, an unchanged wait is printed again after this long.
    pub wait_repeat: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            idle_probe: Duration::from_secs(30),
            max_poll_failures: 20,
            wait_poll: Duration::from_secs(1),
            wait_repeat: Duration::from_secs(15),
        }
    }
}

/// Streams build `id`'s log into `sink` until the build finishes; returns
/// the finished build.
pub async fn follow_log<F>(
    client: &Client,
    id: BuildId,
    timing: &Timing,
    sink: &mut F,
) -> Result<Build, CliError>
where
    F: FnMut(&[u8]) -> io::Result<()> + Send,
{
    let mut seen = 0usize;
    let clean = match client.log_stream(id, true).await {
        Ok(mut stream) => stream_log(client, id, timing, &mut stream, &mut seen, sink).await?,
        Err(e) if e.is_api() => return Err(e.into()),
        Err(_) => false,
    };
    let (build, first_poll) = wait_finished(client, id, timing).await?;
    // A stream that ended while the build still ran may have missed lines.
    if !(clean && first_poll) {
        catch_up(client, id, seen, sink).await?;
    }
    Ok(build)
}

/// Copies the stream into `sink`; true if it ended normally.
async fn stream_log<F>(
    client: &Client,
    id: BuildId,
    timing: &Timing,
    stream: &mut LogStream,
    seen: &mut usize,
    sink: &mut F,
) -> Result<bool, CliError>
where
    F: FnMut(&[u8]) -> io::Result<()> + Send,
{
    loop {
        match tokio::time::timeout(timing.idle_probe, stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                sink(&chunk)?;
                *seen += chunk.len();
            }
            Ok(Some(Err(_))) => return Ok(false),
            Ok(None) => return Ok(true),
            // Quiet builds are normal; a dead connection is not: ask the master.
            Err(_idle) => match client.build(id).await {
                Ok(b) if b.state.is_finished() => return Ok(false),
                Ok(_) => {}
                Err(e) if e.is_api() => return Err(e.into()),
                Err(_) => return Ok(false),
            },
        }
    }
}

/// Polls until the build is finished; also says whether the first answer
/// already was.
async fn wait_finished(
    client: &Client,
    id: BuildId,
    timing: &Timing,
) -> Result<(Build, bool), CliError> {
    let mut failures = 0u32;
    let mut first = true;
    loop {
        match client.build(id).await {
            Ok(b) if b.state.is_finished() => return Ok((b, first)),
            Ok(_) => failures = 0,
            Err(e) if e.is_api() => return Err(e.into()),
            Err(e) => {
                failures += 1;
                if failures >= timing.max_poll_failures {
                    return Err(e.into());
                }
            }
        }
        first = false;
        tokio::time::sleep(timing.poll).await;
    }
}

/// Prints what the whole log has beyond the `seen` bytes already printed.
/// Best effort: the build's result matters more than the tail of its log.
async fn catch_up<F>(
    client: &Client,
    id: BuildId,
    seen: usize,
    sink: &mut F,
) -> Result<(), CliError>
where
    F: FnMut(&[u8]) -> io::Result<()> + Send,
{
    match client.log(id).await {
        Ok(log) => {
            if let Some(rest) = log.get(seen..) {
                if !rest.is_empty() {
                    sink(rest)?;
                }
            }
        }
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "burst: build {id}: could not fetch the rest of the log: {}",
                Chain(&e)
            );
        }
    }
    Ok(())
}

/// Follows several builds at once, each log line prefixed with its build's
/// tag, then prints one result line per build (in the given order).
pub async fn follow_builds(
    client: &Client,
    ids: &[BuildId],
    out: &Output,
    timing: &Timing,
) -> Result<Exit, CliError> {
    let mut builds = Vec::with_capacity(ids.len());
    for &id in ids {
        builds.push(client.build(id).await?);
    }
    let mut tasks = JoinSet::new();
    for (index, tag) in render::padded_tags(&builds).into_iter().enumerate() {
        let (client, out, timing) = (client.clone(), out.clone(), timing.clone());
        let id = builds[index].id;
        tasks.spawn(async move {
            // Its log is followed once it left the queue; until then, why it waits.
            wait_while_queued(&client, id, &tag, &out, &timing).await?;
            let mut prefixer = LinePrefixer::new(&tag);
            let mut sink = |chunk: &[u8]| {
                let lines = prefixer.push(chunk);
                if lines.is_empty() {
                    Ok(())
                } else {
                    out.write(&lines)
                }
            };
            let result = follow_log(&client, id, &timing, &mut sink).await;
            let rest = prefixer.finish();
            if !rest.is_empty() {
                out.write(&rest)?;
            }
            result.map(|b| (index, b))
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let outcome =
            joined.map_err(|e| CliError::Internal(format!("following a build failed: {e}")));
        match outcome.and_then(|r| r) {
            Ok((index, b)) => builds[index] = b,
            // The others would fail the same way (or print into a closed pipe).
            Err(e) => {
                tasks.abort_all();
                return Err(e);
            }
        }
    }
    for b in &builds {
        out.line(&render::result_line(b))?;
    }
    let states: Vec<_> = builds.iter().map(|b| b.state).collect();
    Ok(exit::for_builds(&states))
}
