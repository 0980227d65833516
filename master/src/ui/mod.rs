//! The web UI: server-rendered HTML pages (maud) on the API's port, behind
//! the API's guard, reading through the same functions as `/api/v1`. A small
//! hand-written script adds live updates over SSE; every page works without
//! it.

pub mod ansi;
pub mod assets;
mod build_events;
mod build_page;
mod build_reports;
mod builds_page;
pub mod csrf;
pub mod error;
mod events;
mod format;
pub mod grid;
pub mod layout;
mod log_page;
pub mod login;
pub mod router;
pub mod session;
mod sources;
pub mod tail;
mod workers;

pub use router::routes;
pub use session::{CsrfToken, Sessions};
