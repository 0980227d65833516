//! Errors as HTML pages: the API's `HttpError` status and message, shown
//! inside the frame.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::html;

use super::layout::{page, Nav};
use crate::api::error::HttpError;
use crate::api::Caller;

pub struct UiError {
    pub status: StatusCode,
    pub message: String,
    /// Who asked, for the frame; anonymous when unknown.
    pub caller: Caller,
}

impl UiError {
    pub fn new(status: StatusCode, message: impl Into<String>, caller: &Caller) -> Self {
        Self {
            status,
            message: message.into(),
            caller: caller.clone(),
        }
    }

    /// The API's answer for the same failure, as a page.
    pub fn from_api(e: HttpError, caller: &Caller) -> Self {
        let HttpError(status, message) = e;
        Self::new(status, message, caller)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = html! {
            h1 { (self.status.as_u16()) " " (title) }
            p id="error" { (self.message) }
            p { a href="/builds" { "Back to the builds" } }
        };
        (
            self.status,
            Html(page(&title, &self.caller, Nav::None, body).into_string()),
        )
            .into_response()
    }
}

/// A refusal (or any failure) as a page, for the guard.
pub fn refusal(status: StatusCode, message: impl Into<String>, caller: &Caller) -> Response {
    UiError::new(status, message, caller).into_response()
}

/// `Result` for UI handlers.
pub type UiResult<T> = Result<T, UiError>;

/// Adds `.ui(&caller)` to API results.
pub trait OrPage<T> {
    fn ui(self, caller: &Caller) -> UiResult<T>;
}

impl<T> OrPage<T> for Result<T, HttpError> {
    fn ui(self, caller: &Caller) -> UiResult<T> {
        self.map_err(|e| UiError::from_api(e, caller))
    }
}
