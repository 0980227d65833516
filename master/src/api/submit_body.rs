//! The body of `POST /api/v1/builds`: one submit (`{"builder": …}`) or a
//! batch of them (`[{"builder": …}, …]`), read and checked before anything is
//! expanded or queued.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::error::HttpError;
use crate::model::SubmitRequest;

/// A batch may hold at most this many submits.
pub const MAX_BATCH: usize = 1000;

/// A batch may queue at most this many builds (its matrices expanded); one
/// submit is already capped by the matrix's own cell limit.
pub const MAX_BATCH_BUILDS: usize = 10_000;

/// What a submit asked for. Serialised as it was sent (untagged), which is
/// what an idempotency key's request hash covers: one submit hashes as before
/// batches existed, and a batch retried with its key must be the same batch.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SubmitBody {
    One(SubmitRequest),
    /// In the order given; answered with the builds in that order.
    Batch(Vec<SubmitRequest>),
}

impl SubmitBody {
    /// Reads the JSON the `Json` extractor accepted (content type, body
    /// limit and syntax are its checks). A batch element that is not a
    /// submit refuses the whole batch, naming its index.
    pub fn read(body: Result<Json<serde_json::Value>, JsonRejection>) -> Result<Self, HttpError> {
        let Json(value) = body.map_err(|e| HttpError(e.status(), e.body_text()))?;
        match value {
            serde_json::Value::Array(items) => {
                if items.is_empty() {
                    return Err(bad("an empty list submits nothing".to_owned()));
                }
                if items.len() > MAX_BATCH {
                    return Err(HttpError(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "a batch holds at most {MAX_BATCH} submits (got {}); split it",
                            items.len()
                        ),
                    ));
                }
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        serde_json::from_value(item).map_err(|e| bad(format!("element {i}: {e}")))
                    })
                    .collect::<Result<_, _>>()
                    .map(SubmitBody::Batch)
            }
            value => serde_json::from_value(value)
                .map(SubmitBody::One)
                .map_err(|e| bad(format!("failed to read the submit: {e}"))),
        }
    }

    /// The submits, with the index each had in a batch (`None` for one).
    pub fn requests(&self) -> Vec<(Option<usize>, &SubmitRequest)> {
        match self {
            SubmitBody::One(req) => vec![(None, req)],
            SubmitBody::Batch(reqs) => reqs.iter().enumerate().map(|(i, r)| (Some(i), r)).collect(),
        }
    }

    /// The builders named, for the audit line.
    pub fn builders(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .requests()
            .into_iter()
            .map(|(_, r)| r.builder.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

fn bad(text: String) -> HttpError {
    HttpError(StatusCode::BAD_REQUEST, text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(v: serde_json::Value) -> Result<SubmitBody, HttpError> {
        SubmitBody::read(Ok(Json(v)))
    }

    #[test]
    fn one_object_or_a_list() {
        let one = read(json!({"builder": "a", "params": {"K": "v"}})).ok();
        assert!(matches!(one, Some(SubmitBody::One(r)) if r.builder == "a"));
        let many = read(json!([{"builder": "a"}, {"builder": "b"}])).ok();
        assert!(matches!(&many, Some(SubmitBody::Batch(r)) if r.len() == 2));
        let names = many.as_ref().map(SubmitBody::builders);
        assert_eq!(names, Some(vec!["a", "b"]));
    }

    #[test]
    fn a_bad_element_refuses_the_batch_naming_its_index() {
        let Err(HttpError(status, text)) = read(json!([{"builder": "a"}, {"params": {}}])) else {
            panic!("accepted");
        };
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            text.starts_with("element 1: missing field `builder`"),
            "{text}"
        );
    }

    #[test]
    fn empty_and_oversized_batches_are_refused() {
        assert!(matches!(
            read(json!([])),
            Err(HttpError(StatusCode::BAD_REQUEST, _))
        ));
        let many: Vec<_> = (0..=MAX_BATCH).map(|_| json!({"builder": "a"})).collect();
        assert!(matches!(
            read(serde_json::Value::Array(many)),
            Err(HttpError(StatusCode::PAYLOAD_TOO_LARGE, _))
        ));
        assert!(matches!(
            read(json!("a")),
            Err(HttpError(StatusCode::BAD_REQUEST, _))
        ));
    }

    #[test]
    fn a_batch_hashes_apart_from_its_single_element() {
        let req = SubmitRequest {
            builder: "a".to_owned(),
            params: Default::default(),
        };
        let one = serde_json::to_value(SubmitBody::One(req.clone())).ok();
        assert_eq!(
            one,
            serde_json::to_value(&req).ok(),
            "hashed as before batches"
        );
        let batch = serde_json::to_value(SubmitBody::Batch(vec![req])).ok();
        assert_ne!(one, batch);
    }
}
