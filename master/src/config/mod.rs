//! Loading and checking the master's configuration.

mod schema;

pub use schema::*;
