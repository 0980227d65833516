//! Making sure a host runs the master's worker: compare the sha256 of the
//! local binary for the host's OS and architecture with the installed one,
//! upload on a difference, and check the checksum again after.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use openssh::Session;
use sha2::{Digest, Sha256};

use super::commands::{parse_probe, parse_sha256};
use super::exec::{exec, Input};
use super::hosts::HostState;
use super::settings::SshSettings;
use crate::ProviderError;

const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// The worker a launch is about to start.
#[derive(Debug, Clone)]
pub struct Installed {
    /// `<os>-<arch>`, e.g. `linux-x86_64`.
    pub target: String,
    pub sha256: String,
    /// Whether this launch uploaded it.
    pub uploaded: bool,
}

/// sha256 of local files, kept while a file's size and mtime stay the same:
/// the worker binary is tens of MB and launches are frequent.
#[derive(Default)]
pub struct LocalSums {
    cache: Mutex<HashMap<PathBuf, (u64, SystemTime, String)>>,
}

impl LocalSums {
    pub async fn get(&self, path: &Path) -> Result<String, ProviderError> {
        let unreadable = |e: std::io::Error| {
            ProviderError::permanent(format!(
                "failed to read the local worker binary {}: {e}",
                path.display()
            ))
        };
        let meta = tokio::fs::metadata(path).await.map_err(unreadable)?;
        let stamp = (meta.len(), meta.modified().map_err(unreadable)?);
        if let Some((len, mtime, sum)) = self.lock().get(path) {
            if (*len, *mtime) == stamp {
                return Ok(sum.clone());
            }
        }
        let owned = path.to_owned();
        let sum = tokio::task::spawn_blocking(move || sha256_file(&owned))
            .await
            .map_err(|e| {
                ProviderError::transient(format!("failed to hash {}: {e}", path.display()))
            })?
            .map_err(unreadable)?;
        self.lock()
            .insert(path.to_owned(), (stamp.0, stamp.1, sum.clone()));
        Ok(sum)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (u64, SystemTime, String)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Probes the host and uploads the worker if it is missing or differs.
pub async fn ensure_worker(
    session: &Arc<Session>,
    host: &HostState,
    settings: &SshSettings,
    sums: &LocalSums,
) -> Result<Installed, ProviderError> {
    // One probe-and-upload per host at a time: concurrent launches then
    // upload once and the others find the new file.
    let _guard = host.upload_lock.lock().await;
    let name = host.name();
    let out = exec(
        session,
        name,
        "probe the worker binary",
        &host.remote.probe(),
        Input::Nothing,
        PROBE_TIMEOUT,
    )
    .await?;
    let probe = parse_probe(&out).ok_or_else(|| {
        ProviderError::transient(format!(
            "failed to probe the worker binary on ssh host {name}: unexpected output {:?}",
            power_tail(&out)
        ))
    })?;
    let target = format!("{}-{}", host.remote.platform(), probe.arch);
    let bin = host.remote.bin();
    let local = settings.worker_binaries.get(&target);
    let (Some(local), true) = (local, settings.upload) else {
        // Nothing to compare with (or uploads are off): use what is there.
        return match probe.sha256 {
            Some(sha256) => {
                if settings.upload {
                    tracing::warn!(host = %name, %target, "no local worker binary for this host's platform; using the installed one unchecked");
                }
                Ok(Installed { target, sha256, uploaded: false })
            }
            None if settings.upload => Err(ProviderError::permanent(format!(
                "failed to install the worker on ssh host {name}: {bin} is missing and there is no local \
                 binary for {target}; set worker_binaries.{target} in the pool's ssh section"
            ))),
            None => Err(ProviderError::permanent(format!(
                "failed to find the worker on ssh host {name}: {bin} is missing and upload = false"
            ))),
        };
    };
    let want = sums.get(local).await?;
    if probe.sha256.as_deref() == Some(want.as_str()) {
        return Ok(Installed {
            target,
            sha256: want,
            uploaded: false,
        });
    }
    tracing::info!(host = %name, %target, local = %local.display(), remote = %bin, "uploading burst-worker");
    let out = exec(
        session,
        name,
        "upload the worker binary",
        &host.remote.upload(),
        Input::File(local),
        UPLOAD_TIMEOUT,
    )
    .await?;
    match parse_sha256(&out) {
        Some(got) if got == want => {
            tracing::info!(host = %name, %target, sha256 = %want, "uploaded burst-worker");
            Ok(Installed { target, sha256: want, uploaded: true })
        }
        got => Err(ProviderError::transient(format!(
            "failed to upload the worker to ssh host {name}: sha256 after upload is {}, expected {want}",
            got.unwrap_or_else(|| "unreadable".into())
        ))),
    }
}

fn power_tail(s: &str) -> &str {
    super::power::tail(s, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_sums_match_sha256sum_and_follow_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bin");
        std::fs::write(&path, b"abc").expect("write");
        let sums = LocalSums::default();
        assert_eq!(
            sums.get(&path).await.expect("sum"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::write(&path, b"abcd").expect("write");
        assert_eq!(
            sums.get(&path).await.expect("sum"),
            "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"
        );
        let missing = sums
            .get(&dir.path().join("nope"))
            .await
            .expect_err("missing");
        assert!(missing.is_permanent());
    }
}
