//! `[pools.NAME.local]`: workers as processes on the master's machine. The
//! section may be left out; every key has a default.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{LocalProvider, LocalSettings};
use crate::config::{check_env, Context, Path, Problems};
use crate::section::Section;
use crate::{Provider, ProviderError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalPoolConfig {
    /// Program and leading arguments that start a worker; empty = the
    /// `burst-worker` next to `burst`. E.g. `["wine", "burst-worker.exe"]`.
    pub command: Vec<String>,
    /// Extra environment for the worker process.
    pub env: BTreeMap<String, String>,
}

impl Section for LocalPoolConfig {
    fn absent() -> Option<Self> {
        Some(Self::default())
    }

    fn validate(&self, _ctx: &Context, out: &mut Problems) {
        check_env(&Path::root().key("local").key("env"), &self.env, out);
    }

    fn build(&self, ctx: &Context) -> Result<Arc<dyn Provider>, ProviderError> {
        let command = if self.command.is_empty() {
            LocalProvider::default_command()?
        } else {
            self.command.clone()
        };
        let settings = LocalSettings {
            master_id: ctx.master_id.clone(),
            pool: ctx.pool.clone(),
            command,
            env: self.env.clone(),
            work_root: ctx.state_dir.join("workers"),
            stop_grace: Duration::from_secs(5),
        };
        Ok(Arc::new(LocalProvider::new(settings)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let config: LocalPoolConfig = toml::from_str(text).expect("parses");
        let mut out = Problems::new();
        config.validate(&Context::for_pool("p"), &mut out);
        out.lines()
    }

    #[test]
    fn reserved_env_is_refused() {
        assert_eq!(
            problems("env = { BURST_POOL = \"x\", RUST_LOG = \"info\" }"),
            ["local.env.BURST_POOL: BURST_POOL is set by burst for every worker"]
        );
        assert_eq!(problems(""), Vec::<String>::new());
    }
}
