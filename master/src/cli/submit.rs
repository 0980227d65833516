//! `burst submit BUILDER [--param K=V]... [--follow]`, or many submits in
//! one batch: `burst submit --from FILE|- [--follow]` (format in
//! `submit_file`).

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::client::{Client, ClientError};
use super::exit::{CliError, Exit};
use super::follow::{self, Timing};
use super::output::Output;
use super::submit_file::{self, Source};
use crate::model::{SubmitRequest, SubmitResponse};

/// What to submit.
#[derive(Debug)]
pub enum What {
    One {
        builder: String,
        params: Vec<(String, String)>,
    },
    Batch(Source),
}

pub async fn run(
    client: &Client,
    what: What,
    follow: bool,
    out: &Output,
    timing: &Timing,
) -> Result<Exit, CliError> {
    let (body, label) = match what {
        What::One { builder, params } => {
            // A later --param with the same key wins.
            let req = SubmitRequest {
                builder,
                params: params.into_iter().collect(),
            };
            let label = req.builder.clone();
            (Body::One(req), label)
        }
        What::Batch(source) => {
            let reqs = submit_file::read(&source)?;
            let label = format!("{} submits", reqs.len());
            (Body::Batch(reqs), label)
        }
    };
    let resp = submit_with_retries(client, &body).await?;
    out.line(&submitted_line(&label, &resp))?;
    if !follow {
        return Ok(Exit::Success);
    }
    follow::follow_builds(client, &resp.builds, out, timing).await
}

/// What is sent: the API takes one submit object or a list of them.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Body {
    One(SubmitRequest),
    Batch(Vec<SubmitRequest>),
}

/// Retries while the master cannot be reached, with one idempotency key
/// for the whole invocation: a submit whose answer was lost is answered
/// again, not run twice.
async fn submit_with_retries(client: &Client, req: &Body) -> Result<SubmitResponse, ClientError> {
    let key = uuid::Uuid::new_v4().to_string();
    (|| client.submit(req, &key))
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(RETRY_MIN)
                .with_max_delay(RETRY_MAX)
                .with_jitter()
                .with_max_times(RETRIES),
        )
        .when(|e: &ClientError| matches!(e, ClientError::Unreachable { .. }))
        .notify(|e, delay| {
            eprintln!("burst: {e}; retrying the submit in {delay:?}");
        })
        .await
}

/// A few tries over a few seconds: long enough for a dropped connection or
/// a master restart, short enough that a master that is down is reported.
const RETRIES: usize = 4;
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// `submitted hello: builds 12, 13 (submit 3f2a…)`; a batch is labelled
/// `200 submits`.
fn submitted_line(builder: &str, resp: &SubmitResponse) -> String {
    let ids: Vec<String> = resp.builds.iter().map(|id| id.to_string()).collect();
    format!(
        "submitted {builder}: builds {} (submit {})",
        ids.join(", "),
        resp.submit_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submitted_line_lists_builds_and_submit() {
        let resp = SubmitResponse {
            submit_id: "s1".to_owned(),
            builds: vec![12, 13],
        };
        assert_eq!(
            submitted_line("hello", &resp),
            "submitted hello: builds 12, 13 (submit s1)"
        );
    }
}
