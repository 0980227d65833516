//! `/api/v1/tokens`: create, list and revoke API tokens (admin only, by the
//! guard). No answer carries a token's value or hash except create's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::caller::Caller;
use super::credentials;
use super::error::HttpError;
use super::AppState;
use crate::model::{now_millis, CreateTokenRequest, CreateTokenResponse, TokenRecord, TokenView};

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreateTokenResponse>), HttpError> {
    credentials::check_name(&req.name)
        .map_err(|e| HttpError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let token = credentials::new_token();
    let record = TokenRecord {
        name: req.name.clone(),
        hash: credentials::hash(&token),
        role: req.role,
        created_at: now_millis(),
        created_by: Some(caller.name.clone()),
    };
    if !state.store.insert_token(&record).await? {
        return Err(HttpError(
            StatusCode::CONFLICT,
            format!("a token named {:?} already exists", req.name),
        ));
    }
    tracing::info!(
        target: "audit",
        by = %caller.name,
        token = %req.name,
        role = %req.role,
        "token created"
    );
    Ok((
        StatusCode::CREATED,
        Json(CreateTokenResponse {
            name: req.name,
            role: req.role,
            token,
        }),
    ))
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<TokenView>>, HttpError> {
    let tokens = state.store.list_tokens().await?;
    Ok(Json(tokens.iter().map(TokenRecord::view).collect()))
}

#[derive(serde::Serialize)]
pub struct RevokeAnswer {
    name: String,
    revoked: bool,
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<RevokeAnswer>, HttpError> {
    if !state.store.revoke_token(&name).await? {
        return Err(HttpError(
            StatusCode::NOT_FOUND,
            format!("no token named {name:?}"),
        ));
    }
    tracing::info!(target: "audit", by = %caller.name, token = %name, "token revoked");
    Ok(Json(RevokeAnswer {
        name,
        revoked: true,
    }))
}
