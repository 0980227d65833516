//! `burst init`: writes a commented starter config for one provider, checks
//! what this machine still lacks to run it, and says what to do next.
//!
//! The starter configs are the examples under `examples/`, embedded, so the
//! file `init` writes is the one the docs walk through and the tests load.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use burst_common::error_chain::Chain;

use super::exit::{CliError, Exit};
use super::init_checks::{self, Check};
use super::output::Output;
use crate::config;

/// The file `init` writes inside its directory.
pub const CONFIG_NAME: &str = "burst.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// Workers as local processes (no setup needed).
    Local,
    /// A fresh container per build, on this machine's Docker engine.
    Docker,
    /// Spot instances with on-demand fallback.
    Ec2,
    /// Machines you already own, reached over SSH.
    Ssh,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Local => "local",
            Provider::Docker => "docker",
            Provider::Ec2 => "ec2",
            Provider::Ssh => "ssh",
        }
    }

    /// The example config this provider starts from.
    pub fn starter(self) -> &'static str {
        match self {
            Provider::Local => include_str!("../../../examples/quickstart.toml"),
            Provider::Docker => include_str!("../../../examples/docker.toml"),
            Provider::Ec2 => include_str!("../../../examples/ec2.toml"),
            Provider::Ssh => include_str!("../../../examples/ssh.toml"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("failed to write {path}: it already exists (pass --force to overwrite it)")]
    Exists { path: PathBuf },
    #[error("failed to create directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes `DIR/burst.toml` (never over an existing file unless `force`),
/// then prints what is ready on this machine and what is not.
pub fn run(provider: Provider, dir: &Path, force: bool, out: &Output) -> Result<Exit, CliError> {
    let path = write_starter(provider, dir, force)
        .map_err(|e| CliError::Internal(Chain(&e).to_string()))?;
    out.line(&format!(
        "wrote {} (a starter config for the {} provider)",
        path.display(),
        provider.name()
    ))?;
    // The examples are tested to load; a failure here is a bug, said plainly.
    if let Err(e) = config::load_file(&path) {
        return Err(CliError::Config(Chain(&e).to_string()));
    }
    out.line(&format!(
        "checking this machine for the {} provider:",
        provider.name()
    ))?;
    // Each check is shown as it runs (a spinner on a terminal) and its
    // line printed as soon as it is done.
    let pending = init_checks::for_config(&path);
    let total = pending.len();
    let mut checks = Vec::with_capacity(total);
    for (i, check) in pending.into_iter().enumerate() {
        let spinner = out.spinner();
        if let Some(bar) = &spinner {
            bar.set_message(format!("[{}/{total}] checking {}", i + 1, check.what));
        }
        let check = check.run();
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        out.line(&check.line())?;
        checks.push(check);
    }
    out.line("next:")?;
    for (i, step) in next_steps(provider, &path, &checks).iter().enumerate() {
        out.line(&format!("  {}. {step}", i + 1))?;
    }
    Ok(Exit::Success)
}

/// Creates `dir` if needed and writes the starter config into it through a
/// temp file and a rename, so a crash never leaves half a config.
pub fn write_starter(provider: Provider, dir: &Path, force: bool) -> Result<PathBuf, InitError> {
    fs::create_dir_all(dir).map_err(|source| InitError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join(CONFIG_NAME);
    if path.exists() && !force {
        return Err(InitError::Exists { path });
    }
    let write_err = |source| InitError::Write {
        path: path.clone(),
        source,
    };
    let tmp = dir.join(format!(".{CONFIG_NAME}.{}.tmp", std::process::id()));
    let written = fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(provider.starter().as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, &path));
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(write_err(source));
    }
    Ok(path)
}

fn next_steps(provider: Provider, path: &Path, checks: &[Check]) -> Vec<String> {
    let mut steps: Vec<String> = checks.iter().filter_map(|c| c.todo.clone()).collect();
    if provider != Provider::Local {
        steps.push(format!(
            "edit {}: the comments say what each key does and what to change",
            path.display()
        ));
    }
    steps.push(format!("burst config check {}", path.display()));
    steps.push(format!("burst master --config {}", path.display()));
    steps.push("burst submit hello --follow   (in another terminal)".to_owned());
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Provider; 4] = [
        Provider::Local,
        Provider::Docker,
        Provider::Ec2,
        Provider::Ssh,
    ];

    #[test]
    fn every_starter_is_a_config_that_loads() {
        for provider in ALL {
            let dir = tempfile::tempdir().unwrap();
            let path = write_starter(provider, dir.path(), false).unwrap();
            assert_eq!(path, dir.path().join(CONFIG_NAME));
            let config = config::load_file(&path)
                .unwrap_or_else(|e| panic!("{}: {}", provider.name(), Chain(&e)));
            let kinds: Vec<&str> = config
                .pools
                .values()
                .map(|p| p.provider.kind().name())
                .collect();
            assert!(kinds.contains(&provider.name()), "{kinds:?}");
            let text = fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("# "),
                "a starter config opens with comments"
            );
        }
    }

    #[test]
    fn an_existing_file_is_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_NAME);
        fs::write(&path, "# mine\n").unwrap();
        let err = write_starter(Provider::Docker, dir.path(), false).unwrap_err();
        assert!(matches!(err, InitError::Exists { .. }), "{err}");
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "# mine\n");
        write_starter(Provider::Docker, dir.path(), true).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            Provider::Docker.starter()
        );
    }

    #[test]
    fn a_missing_directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let path = write_starter(Provider::Local, &nested, false).unwrap();
        assert!(path.is_file());
    }

    #[test]
    fn an_unwritable_directory_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        fs::write(&file, "").unwrap();
        let err = write_starter(Provider::Local, &file.join("sub"), false).unwrap_err();
        let shown = Chain(&err).to_string();
        assert!(shown.starts_with("failed to create directory "), "{shown}");
        assert!(shown.contains("plain-file/sub"), "{shown}");
    }
}
