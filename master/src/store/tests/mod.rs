//! The store contract, run against both stores, plus SQLite-only checks.

#![allow(clippy::unwrap_used)]

mod both;
mod contract;
mod fixtures;
mod plans;
mod retention;
mod sqlite;
mod triggers;
