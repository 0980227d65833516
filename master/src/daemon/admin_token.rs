//! The first admin token. By default it is generated once into
//! `<state_dir>/admin.token` (mode 0600, the state dir 0700); a config may
//! name a file or an environment variable instead. Its path is logged, never
//! its value. Each start stores its hash under the name `admin`, replacing
//! the previous one, so the file stays the source of truth.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::api::credentials;
use crate::config::Config;
use crate::model::{now_millis, Role, TokenRecord};
use crate::store::Store;

pub const FILE: &str = "admin.token";
pub const NAME: &str = "admin";
/// Shorter tokens from a file or the environment are refused as guessable.
const MIN_LEN: usize = 32;

/// Where the admin token came from, for run.json and the log.
pub enum Source {
    File(PathBuf),
    Env(String),
}

pub async fn install(config: &Config, store: &dyn Store) -> anyhow::Result<Source> {
    let state_dir = &config.master.state_dir;
    restrict_dir(state_dir)?;
    let (token, source) = if let Some(var) = &config.master.admin_token_env {
        let token = std::env::var(var).with_context(|| {
            format!("failed to read the admin token from ${var} (master.admin_token_env)")
        })?;
        (token.trim().to_owned(), Source::Env(var.clone()))
    } else if let Some(path) = &config.master.admin_token_file {
        let token = std::fs::read_to_string(path).with_context(|| {
            format!(
                "failed to read the admin token from {} (master.admin_token_file)",
                path.display()
            )
        })?;
        (token.trim().to_owned(), Source::File(path.clone()))
    } else {
        let path = state_dir.join(FILE);
        let token = read_or_create(&path)?;
        // Absolute, so a CLI in another directory can follow run.json to it.
        (
            token,
            Source::File(std::path::absolute(&path).unwrap_or(path)),
        )
    };
    if token.len() < MIN_LEN {
        anyhow::bail!(
            "failed to install the admin token: it has {} characters, fewer than {MIN_LEN}",
            token.len()
        );
    }
    let hash = credentials::hash(&token);
    let current = store.token_by_hash(&hash).await?;
    if current.as_ref().map(|t| (t.name.as_str(), t.role)) != Some((NAME, Role::Admin)) {
        if let Some(other) = current {
            // The same value under another name: drop it so `admin` can hold it.
            store.revoke_token(&other.name).await?;
        }
        store.revoke_token(NAME).await?;
        let record = TokenRecord {
            name: NAME.to_owned(),
            hash,
            role: Role::Admin,
            created_at: now_millis(),
            created_by: None,
        };
        if !store.insert_token(&record).await? {
            anyhow::bail!("failed to store the admin token: the name was taken meanwhile");
        }
        tracing::info!(target: "audit", token = NAME, role = "admin", "admin token installed");
    }
    match &source {
        Source::File(path) => {
            tracing::info!(path = %path.display(), "admin API token (role admin) is in this file")
        }
        Source::Env(var) => {
            tracing::info!(var = %var, "admin API token (role admin) read from the environment")
        }
    }
    Ok(source)
}

/// The state dir holds the database and the admin token: owner only.
fn restrict_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create the state dir {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("failed to make {} private (mode 0700)", dir.display()))?;
    }
    Ok(())
}

fn read_or_create(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            restrict_file(path)?;
            return Ok(text.trim().to_owned());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("failed to read {}", path.display()));
        }
    }
    let token = credentials::new_token();
    let mut options = std::fs::OpenOptions::new();
    // create_new: never follow a planted file or symlink.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    writeln!(file, "{token}")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(token)
}

fn restrict_file(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("failed to make {} private (mode 0600)", path.display()))?;
    }
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::MemoryStore;

    fn config(dir: &Path) -> Config {
        Config {
            master: crate::config::MasterConfig {
                state_dir: dir.join("state"),
                ..Default::default()
            },
            pools: Default::default(),
            builders: Vec::new(),
            secrets: Default::default(),
            sources: Vec::new(),
            rules: Vec::new(),
            reporters: Vec::new(),
            schedules: Vec::new(),
            retention: Default::default(),
            artifacts: Default::default(),
            github: None,
            budget: Default::default(),
            simulate: Default::default(),
            secret_values: Default::default(),
        }
    }

    #[tokio::test]
    async fn generated_once_private_and_stored_as_admin() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let store = MemoryStore::new();
        install(&c, &store).await.unwrap();
        let path = c.master.state_dir.join(FILE);
        let token = std::fs::read_to_string(&path).unwrap().trim().to_owned();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&c.master.state_dir), 0o700);
        }
        let found = store
            .token_by_hash(&credentials::hash(&token))
            .await
            .unwrap();
        assert_eq!(
            found.map(|t| (t.name, t.role)),
            Some((NAME.to_owned(), Role::Admin))
        );
        // A second start keeps the same token.
        install(&c, &store).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
        assert_eq!(store.list_tokens().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_named_file_replaces_the_generated_one_and_short_tokens_fail() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        let file = dir.path().join("mine");
        std::fs::write(&file, "x".repeat(40)).unwrap();
        c.master.admin_token_file = Some(file);
        let store = MemoryStore::new();
        install(&c, &store).await.unwrap();
        assert!(!c.master.state_dir.join(FILE).exists());
        let found = store
            .token_by_hash(&credentials::hash(&"x".repeat(40)))
            .await;
        assert!(found.unwrap().is_some());

        // An environment variable wins over the file.
        let var = "BURST_TEST_ADMIN_TOKEN_7f3a";
        std::env::set_var(var, format!("  {}\n", "y".repeat(40)));
        c.master.admin_token_env = Some(var.to_owned());
        install(&c, &store).await.unwrap();
        let tokens = store.list_tokens().await.unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].hash, credentials::hash(&"y".repeat(40)));
        std::env::remove_var(var);
        c.master.admin_token_env = None;

        let short = dir.path().join("short");
        std::fs::write(&short, "abc").unwrap();
        c.master.admin_token_file = Some(short);
        let err = install(&c, &store).await.err().unwrap().to_string();
        assert!(err.contains("fewer than"), "{err}");
    }
}
