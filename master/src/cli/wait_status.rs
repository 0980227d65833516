//! While a followed build waits in the queue, say why, for how long and
//! where it stands: the build's `reason` (what the scheduler says it waits
//! for: a worker starting, a pool at its cap, a launch backoff) and its
//! `queue` position, both from `GET /api/v1/builds/{id}`. On a terminal a
//! spinner line per waiting build is redrawn in place; otherwise a plain line
//! is printed when the reason or the position changes, and again every
//! `Timing::wait_repeat` while they stay the same.

use std::time::Duration;

use tokio::time::Instant;

use super::client::Client;
use super::exit::CliError;
use super::follow::Timing;
use super::output::Output;
use crate::model::{BuildDetail, BuildId, BuildState};

/// Returns once the build has left the queue (started, or finished without
/// running). Its log is followed after that: the log so far comes whole, so
/// nothing is missed by starting late, and wait lines never interleave with
/// the build's own output.
pub async fn wait_while_queued(
    client: &Client,
    id: BuildId,
    tag: &str,
    out: &Output,
    timing: &Timing,
) -> Result<(), CliError> {
    let since = Instant::now();
    let spinner = out.spinner();
    // What the last plain line said, and when.
    let mut last: Option<(String, Instant)> = None;
    let mut waited = false;
    let mut failures = 0u32;
    loop {
        match client.build_detail(id).await {
            Ok(d) if d.build.state == BuildState::Queued => {
                failures = 0;
                waited = true;
                let why = describe(&d);
                let line = format!("{tag}{}", waiting_line(&why, since.elapsed()));
                match &spinner {
                    Some(bar) => bar.set_message(line),
                    None => {
                        let due = last.as_ref().is_none_or(|(said, at)| {
                            *said != why || at.elapsed() >= timing.wait_repeat
                        });
                        if due {
                            out.line(&line)?;
                            last = Some((why, Instant::now()));
                        }
                    }
                }
            }
            Ok(d) => {
                if let Some(bar) = &spinner {
                    bar.finish_and_clear();
                }
                if waited && d.build.started_at.is_some() {
                    let after = whole_seconds(since.elapsed());
                    out.line(&format!("{tag}started after {after} in the queue"))?;
                }
                return Ok(());
            }
            // The log follower reports API errors (a 404, a 401) itself.
            Err(e) if e.is_api() => break,
            Err(e) => {
                failures += 1;
                if failures >= timing.max_poll_failures {
                    return Err(e.into());
                }
            }
        }
        tokio::time::sleep(timing.wait_poll).await;
    }
    if let Some(bar) = &spinner {
        bar.finish_and_clear();
    }
    Ok(())
}

/// The reason and the place in line, without the time (which changes on
/// every poll and is no reason to print again).
fn describe(d: &BuildDetail) -> String {
    let reason = d
        .build
        .reason
        .as_deref()
        .unwrap_or("waiting to be scheduled");
    match &d.queue {
        Some(q) => format!(
            "position {} of {} for pool {}; {reason}",
            q.position, q.queued, q.pool
        ),
        None => reason.to_owned(),
    }
}

/// `queued 12 s: position 1 of 3 for pool local; waiting for a worker of
/// pool local to start`.
fn waiting_line(why: &str, waited: Duration) -> String {
    format!("queued {}: {why}", whole_seconds(waited))
}

fn whole_seconds(d: Duration) -> String {
    format!("{} s", d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::render::tests::build;
    use crate::model::QueuePosition;

    #[test]
    fn the_line_says_why_where_and_how_long() {
        let mut b = build(4, BuildState::Queued, &[]);
        b.reason = Some("waiting for a free worker: pool p is at max_workers (1)".into());
        let mut d = BuildDetail {
            build: b,
            estimated_cost: None,
            cost: None,
            queue: Some(QueuePosition {
                pool: "p".into(),
                position: 2,
                queued: 3,
            }),
            github_jobs: Vec::new(),
        };
        assert_eq!(
            waiting_line(&describe(&d), Duration::from_millis(12_900)),
            "queued 12 s: position 2 of 3 for pool p; waiting for a free worker: pool p is at max_workers (1)"
        );
        d.queue = None;
        d.build.reason = None;
        assert_eq!(
            waiting_line(&describe(&d), Duration::ZERO),
            "queued 0 s: waiting to be scheduled"
        );
    }
}
