//! `GET /api/v1/builds/{id}/artifacts` lists a build's files;
//! `GET …/artifacts/{path}` sends one, whole or a byte range. Roles are as
//! for logs (viewer). Only paths the store lists are served: a request path
//! is looked up, never joined onto a directory.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use burst_common::error_chain::Chain;

use super::error::{not_found, HttpError};
use super::AppState;
use crate::artifacts::{check_path, parse_range, ArtifactError};
use crate::model::{ArtifactInfo, Build, BuildId};

pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<BuildId>,
) -> Result<Json<Vec<ArtifactInfo>>, HttpError> {
    let Some(build) = state.store.get_build(id).await? else {
        return Err(not_found(id));
    };
    let mut all = state.artifacts.list(id).await.map_err(store_error)?;
    for a in &mut all {
        a.step_name = step_name(&build, a);
    }
    Ok(Json(all))
}

pub async fn download(
    State(state): State<AppState>,
    Path((id, path)): Path<(BuildId, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    if state.store.get_build(id).await?.is_none() {
        return Err(not_found(id));
    }
    if let Err(why) = check_path(&path) {
        tracing::warn!(build = id, path = %path.escape_debug(), why, "refused an artifact download");
        return Err(HttpError(
            StatusCode::BAD_REQUEST,
            format!("artifact path {path:?} refused: {why}"),
        ));
    }
    let Some(info) = state.artifacts.find(id, &path).await.map_err(store_error)? else {
        return Err(HttpError(
            StatusCode::NOT_FOUND,
            format!("build {id} has no artifact {path:?}"),
        ));
    };
    let etag = format!("\"{}\"", info.sha256);
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        // A range applies only to the version the client has (If-Range).
        .filter(|_| {
            headers
                .get(header::IF_RANGE)
                .is_none_or(|v| v.as_bytes() == etag.as_bytes())
        });
    let range = match parse_range(range, info.size) {
        Ok(r) => r,
        Err(()) => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{}", info.size))
                .body(Body::empty())
                .map_err(internal)
        }
    };
    let (start, end) = range.map_or((0, info.size), |r| (r.start, r.end));
    let stream = state
        .artifacts
        .open(&info, range.map(|r| r.start..r.end))
        .await
        .map_err(store_error)?;
    let name = path.rsplit('/').next().unwrap_or("artifact");
    let mut resp = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, end - start)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", safe_filename(name)),
        )
        .header("x-burst-sha256", &info.sha256)
        // A build's file is the build's, not the master's page: never
        // sniffed into HTML, never run as script in the master's origin.
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'",
        );
    if range.is_some() {
        resp = resp.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{}", end - 1, info.size),
        );
    }
    resp.body(Body::from_stream(stream)).map_err(internal)
}

fn step_name(build: &Build, a: &ArtifactInfo) -> Option<String> {
    let attempt = build
        .attempts
        .get(usize::try_from(a.attempt).ok()?.checked_sub(1)?)?;
    Some(attempt.steps.get(a.step as usize)?.name.clone())
}

/// A header-safe file name: printable ASCII without quotes or backslashes.
fn safe_filename(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn store_error(e: ArtifactError) -> HttpError {
    let text = Chain(&e).to_string();
    tracing::error!(error = %text, "artifact store error while serving the API");
    HttpError(StatusCode::INTERNAL_SERVER_ERROR, text)
}

fn internal(e: axum::http::Error) -> HttpError {
    HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}
