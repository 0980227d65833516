//! `[pools.NAME.local]`: workers as processes on the master's machine. The
//! section may be left out; every key has a default.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{LocalProvider, LocalSettings};
use burst_common::launch_env;

use crate::config::{check_env, is_env_name, Context, Path, Problems};
use crate::section::Section;
use crate::{Provider, ProviderError};

/// What a local worker inherits from the master when `inherit_env` is not
/// set: enough to find programs, log, and run under wine. Nothing else of
/// the master's environment (cloud credentials, tokens) reaches a worker.
pub const DEFAULT_INHERIT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "TZ",
    "TMPDIR",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "NO_COLOR",
    "WINEPREFIX",
    "WINEDEBUG",
    "WINEDLLOVERRIDES",
    "WINESERVER",
    "WINELOADER",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR",
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalPoolConfig {
    /// Program and leading arguments that start a worker; empty = the
    /// `burst-worker` next to `burst`. E.g. `["wine", "burst-worker.exe"]`.
    pub command: Vec<String>,
    /// Extra environment for the worker process.
    pub env: BTreeMap<String, String>,
    /// The master's variables a worker inherits (when set); unset =
    /// [`DEFAULT_INHERIT_ENV`]. Workers start from an empty environment.
    pub inherit_env: Option<Vec<String>>,
    /// The user workers and their steps run as (Unix; the master must run as
    /// root). Unset = the master's own user.
    pub user: Option<String>,
}

impl LocalPoolConfig {
    fn inherit_env(&self) -> Vec<String> {
        self.inherit_env.clone().unwrap_or_else(|| {
            DEFAULT_INHERIT_ENV
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        })
    }
}

impl Section for LocalPoolConfig {
    fn absent() -> Option<Self> {
        Some(Self::default())
    }

    fn validate(&self, _ctx: &Context, out: &mut Problems) {
        let path = Path::root().key("local");
        check_env(&path.key("env"), &self.env, out);
        for (i, name) in self.inherit_env.iter().flatten().enumerate() {
            let key = path.key("inherit_env").index(i);
            if !is_env_name(name) {
                out.push(&key, format!("{name:?} must match [A-Za-z_][A-Za-z0-9_]*"));
            } else if launch_env::is_reserved(name) {
                out.push(&key, format!("{name} is set by burst for every worker"));
            }
        }
        if let Some(user) = &self.user {
            if let Err(problem) = resolve_user(user) {
                out.push(&path.key("user"), problem);
            }
        }
    }

    fn build(&self, ctx: &Context) -> Result<Arc<dyn Provider>, ProviderError> {
        let command = if self.command.is_empty() {
            LocalProvider::default_command()?
        } else {
            self.command.clone()
        };
        let user = match &self.user {
            Some(name) => Some(resolve_user(name).map_err(|problem| {
                ProviderError::permanent(format!("failed to configure local.user: {problem}"))
            })?),
            None => None,
        };
        let work_root = match &user {
            None => ctx.state_dir.join("workers"),
            // The state dir is owner-only: another user's workers live
            // outside it.
            Some(_) => std::env::temp_dir().join(format!("burst-{}-{}", ctx.master_id, ctx.pool)),
        };
        #[cfg(unix)]
        if let Some(user) = &user {
            super::run_as::check_can_switch(user)?;
            super::run_as::prepare_work_root(&work_root)?;
        }
        let settings = LocalSettings {
            master_id: ctx.master_id.clone(),
            pool: ctx.pool.clone(),
            command,
            env: self.env.clone(),
            inherit_env: self.inherit_env(),
            work_root,
            stop_grace: Duration::from_secs(5),
            user,
        };
        Ok(Arc::new(LocalProvider::new(settings)?))
    }
}

#[cfg(unix)]
fn resolve_user(name: &str) -> Result<super::RunAs, String> {
    super::run_as::resolve(name)
}

#[cfg(not(unix))]
fn resolve_user(_name: &str) -> Result<super::RunAs, String> {
    Err("running local workers as another user needs a Unix master".into())
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

    #[test]
    fn inherit_env_names_are_checked() {
        assert_eq!(
            problems("inherit_env = [\"PATH\", \"A-B\", \"BURST_TOKEN\"]"),
            [
                "local.inherit_env[1]: \"A-B\" must match [A-Za-z_][A-Za-z0-9_]*",
                "local.inherit_env[2]: BURST_TOKEN is set by burst for every worker"
            ]
        );
    }

    #[test]
    fn inherit_env_defaults_to_what_workers_and_wine_need() {
        let config: LocalPoolConfig = toml::from_str("").expect("parses");
        let names = config.inherit_env();
        for name in ["PATH", "HOME", "WINEPREFIX", "DISPLAY"] {
            assert!(names.iter().any(|n| n == name), "{name}");
        }
        assert!(!names
            .iter()
            .any(|n| n.starts_with("AWS_") || n.starts_with("BURST_")));
        let config: LocalPoolConfig = toml::from_str("inherit_env = []").expect("parses");
        assert!(config.inherit_env().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn user_must_exist() {
        assert_eq!(problems("user = \"root\""), Vec::<String>::new());
        let lines = problems("user = \"no-such-burst-user\"");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("local.user: no such user \"no-such-burst-user\""),
            "{lines:?}"
        );
    }
}
