// stand-in: replaced on merge
//! Minimal config loading so the CLI compiles and `config check` can be
//! exercised before the real loader lands.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Config, MasterConfig};

/// Every problem found in a config file, one per line ("file:line: key: problem").
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub message: String,
}

pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        message: format!("{}: {e}", path.display()),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError {
        message: format!("{}: {}", path.display(), e.message()),
    })
}

pub fn embedded_default() -> Result<Config, ConfigError> {
    Ok(Config {
        master: MasterConfig::default(),
        pools: BTreeMap::new(),
        builders: Vec::new(),
    })
}
