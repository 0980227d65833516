//! `[pools.NAME.sim]`: where the fleet simulator listens.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::provider::SimProvider;
use crate::config::{Context, Path, Problems};
use crate::section::Section;
use crate::{Provider, ProviderError};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimPoolConfig {
    /// The fleet simulator's Unix socket.
    pub socket: PathBuf,
}

impl Section for SimPoolConfig {
    fn absent() -> Option<Self> {
        None
    }

    fn validate(&self, _ctx: &Context, out: &mut Problems) {
        if !self.socket.is_absolute() {
            out.push(
                &Path::root().key("sim").key("socket"),
                format!("must be an absolute path (got {:?})", self.socket),
            );
        }
    }

    fn build(&self, _ctx: &Context) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(SimProvider::new(self.socket.clone())))
    }
}
