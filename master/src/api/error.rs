use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use burst_common::error_chain::Chain;

use crate::model::ApiError;
use crate::scheduler::SchedError;
use crate::store::StoreError;

/// An error answer: a status and `{"error": "..."}`.
#[derive(Debug)]
pub struct HttpError(pub StatusCode, pub String);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.0, Json(ApiError { error: self.1 })).into_response()
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        let text = Chain(&e).to_string();
        tracing::error!(error = %text, "store error while serving the API");
        HttpError(StatusCode::INTERNAL_SERVER_ERROR, text)
    }
}

impl From<SchedError> for HttpError {
    fn from(e: SchedError) -> Self {
        let status = match e {
            SchedError::ShuttingDown | SchedError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            SchedError::NotActive(_) => StatusCode::CONFLICT,
            SchedError::KeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            SchedError::StoreFailing(_) => StatusCode::SERVICE_UNAVAILABLE,
            SchedError::Store(ref e) if e.is_fault() => StatusCode::SERVICE_UNAVAILABLE,
            SchedError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        HttpError(status, Chain(&e).to_string())
    }
}

pub fn not_found(id: i64) -> HttpError {
    HttpError(StatusCode::NOT_FOUND, format!("build {id} does not exist"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn store_error() -> StoreError {
        StoreError::Query {
            action: "save build 7",
            source: sqlx::Error::PoolTimedOut,
        }
    }

    #[test]
    fn store_errors_answer_with_their_cause() {
        let cause = sqlx::Error::PoolTimedOut.to_string();
        let HttpError(status, text) = HttpError::from(store_error());
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(text, format!("failed to save build 7: {cause}"));

        let HttpError(_, text) = HttpError::from(SchedError::Store(Arc::new(store_error())));
        assert_eq!(
            text,
            format!("failed to store the builds: failed to save build 7: {cause}")
        );
    }
}
