//! What the master keeps per build besides its store rows. Each kind of
//! per-build data (step logs here
//! and artifacts, `crate::artifacts`; caches when they come) implements `BuildData` and is handed to the `Janitor`, which deletes it
//! with its build, before the build's rows (so a failure leaves the row,
//! and the next pass tries again, rather than files nobody can find).

use async_trait::async_trait;

use crate::artifacts::ArtifactStore;
use crate::logs::LogStore;
use crate::model::BuildId;

#[async_trait]
pub trait BuildData: Send + Sync {
    /// What `burst gc` calls it ("logs").
    fn name(&self) -> &'static str;

    /// Bytes the build's data takes on disk (what a dry run shows).
    async fn usage(&self, build: BuildId) -> u64;

    /// Deletes the build's data; returns the bytes freed. Data that is not
    /// there is not an error.
    async fn delete(&self, build: BuildId) -> std::io::Result<u64>;
}

#[async_trait]
impl BuildData for LogStore {
    fn name(&self) -> &'static str {
        "logs"
    }

    async fn usage(&self, build: BuildId) -> u64 {
        self.build_usage(build).await
    }

    async fn delete(&self, build: BuildId) -> std::io::Result<u64> {
        self.delete_build(build).await
    }
}

#[async_trait]
impl BuildData for ArtifactStore {
    fn name(&self) -> &'static str {
        "artifacts"
    }

    async fn usage(&self, build: BuildId) -> u64 {
        match self.list(build).await {
            Ok(all) => all.iter().map(|a| a.size).sum(),
            Err(e) => {
                tracing::warn!(build, error = %burst_common::error_chain::Chain(&e), "failed to measure a build's artifacts");
                0
            }
        }
    }

    async fn delete(&self, build: BuildId) -> std::io::Result<u64> {
        self.delete_build(build)
            .await
            .map_err(|e| std::io::Error::other(burst_common::error_chain::Chain(&e).to_string()))
    }
}
