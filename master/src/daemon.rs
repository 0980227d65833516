// stand-in: replaced on merge
//! The master process. Only the signature is real here.

use std::path::PathBuf;

use crate::config::Config;

/// Runs the master until SIGTERM/Ctrl-C.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let _ = (config, config_path);
    anyhow::bail!("the master daemon is not part of this build yet")
}
