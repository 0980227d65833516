//! `GET /api/v1/grid`: builders × their recent submits, with a column per
//! matrix cell. `/grid` renders the same [`load`].

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;

use super::error::HttpError;
use super::secret_view::mask_summary;
use super::AppState;
use crate::model::{Grid, GRID_DEFAULT_SUBMITS, GRID_MAX_SUBMITS};

#[derive(Debug, Deserialize)]
pub struct GridQuery {
    /// Submits per builder (at most `GRID_MAX_SUBMITS`).
    #[serde(default = "default_submits")]
    pub submits: u32,
}

fn default_submits() -> u32 {
    GRID_DEFAULT_SUBMITS
}

pub async fn grid(
    State(state): State<AppState>,
    Query(q): Query<GridQuery>,
) -> Result<Json<Grid>, HttpError> {
    Ok(Json(load(&state, q.submits).await?))
}

/// One store call for every builder's newest `submits` submits, grouped
/// in memory; every configured builder gets a row.
pub async fn load(state: &AppState, submits: u32) -> Result<Grid, HttpError> {
    let submits = submits.min(GRID_MAX_SUBMITS);
    let mut summaries = state.store.recent_submits(submits).await?;
    let config = state.config.get();
    for s in &mut summaries {
        mask_summary(s, &config, state.logs.mask());
    }
    let builders = config.builders.iter().map(|b| b.name.clone());
    Ok(Grid::build(builders, summaries, submits))
}
