//! Loading and checking the master's configuration.

mod schema;
mod stand_in;

pub use schema::*;
pub use stand_in::{embedded_default, load_file, ConfigError};
