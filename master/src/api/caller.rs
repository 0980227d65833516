//! Who is calling: set by the guard on every authenticated request, read by
//! handlers that decide more than the route's minimum role.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::error::HttpError;
use crate::model::Role;
use crate::ui::CsrfToken;

/// The name logged for requests without a token.
pub const ANONYMOUS: &str = "anonymous";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name, or `anonymous`.
    pub name: String,
    pub role: Role,
    /// Set when a browser session (cookie) authenticated the request: the
    /// token its forms must carry. `None` for bearer tokens and anonymous
    /// reads.
    pub csrf: Option<CsrfToken>,
}

impl Caller {
    /// True when the caller acts under a token (not anonymous read).
    pub fn is_token(&self) -> bool {
        self.name != ANONYMOUS
    }

    /// Someone not logged in, as the login page renders for.
    pub fn anonymous() -> Self {
        Caller {
            name: ANONYMOUS.to_owned(),
            role: Role::Viewer,
            csrf: None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Missing only if a route were served outside the guard: refuse.
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            HttpError(
                StatusCode::UNAUTHORIZED,
                "authentication required".to_owned(),
            )
        })
    }
}
