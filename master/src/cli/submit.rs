//! `burst submit BUILDER [--param K=V]... [--follow]`.

use super::client::Client;
use super::exit::{CliError, Exit};
use super::follow::{self, Timing};
use super::output::Output;
use crate::model::{SubmitRequest, SubmitResponse};

pub async fn run(
    client: &Client,
    builder: String,
    params: Vec<(String, String)>,
    follow: bool,
    out: &Output,
    timing: &Timing,
) -> Result<Exit, CliError> {
    // A later --param with the same key wins.
    let req = SubmitRequest {
        builder,
        params: params.into_iter().collect(),
    };
    let resp = client.submit(&req).await?;
    out.line(&submitted_line(&req.builder, &resp))?;
    if !follow {
        return Ok(Exit::Success);
    }
    follow::follow_builds(client, &resp.builds, out, timing).await
}

/// `submitted hello: builds 12, 13 (submit 3f2a…)`.
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
