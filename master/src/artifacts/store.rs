use std::collections::HashMap;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

use super::error::ArtifactError;
use super::upload::Upload;
use crate::logs::StepRunId;
use crate::model::{ArtifactInfo, BuildId};

/// Where artifacts live. Layout, per build `B` and step run `A.S`:
/// `B/A.S/files/<path>` holds the bytes, `B/A.S/meta/<sha256 of path>.json`
/// the [`ArtifactInfo`], written after the bytes: a file is listed only once
/// it is whole.
pub struct ArtifactStore {
    objects: Arc<dyn ObjectStore>,
    /// Most bytes one build's artifacts may hold (0: no limit).
    limit: u64,
    /// Bytes each build holds or is receiving, loaded at its first upload.
    used: Mutex<HashMap<BuildId, u64>>,
    describe: String,
}

/// What [`ArtifactStore::begin`] found.
pub enum Begin {
    /// The same file is stored already (a resend after a reconnect).
    Have,
    Upload(Box<Upload>),
}

impl ArtifactStore {
    /// A directory of the master's host (created if missing).
    pub fn local(dir: &FsPath, limit: u64) -> Result<Self, ArtifactError> {
        let open = |source| ArtifactError::Open {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(open)?;
        let objects = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| open(std::io::Error::other(e)))?
            .with_automatic_cleanup(true);
        Ok(Self::new(
            Arc::new(objects),
            limit,
            dir.display().to_string(),
        ))
    }

    /// `[artifacts]`: its S3 bucket, else its directory (default under the
    /// state dir).
    pub fn from_config(
        cfg: &crate::config::ArtifactsConfig,
        state_dir: &FsPath,
    ) -> Result<Self, ArtifactError> {
        let limit = cfg.max_build_bytes.as_u64();
        match &cfg.s3 {
            Some(s3) => {
                let describe = format!("s3://{}", s3.bucket);
                let objects = super::s3::bucket(s3).map_err(|e| ArtifactError::Open {
                    dir: describe.clone(),
                    source: std::io::Error::other(e),
                })?;
                Ok(Self::new(objects, limit, describe))
            }
            None => Self::local(&cfg.dir(state_dir), limit),
        }
    }

    pub fn new(objects: Arc<dyn ObjectStore>, limit: u64, describe: String) -> Self {
        Self {
            objects,
            limit,
            used: Mutex::default(),
            describe,
        }
    }

    pub(super) fn store_error(
        &self,
        action: &'static str,
        path: &str,
        source: object_store::Error,
    ) -> ArtifactError {
        ArtifactError::Store {
            action,
            path: path.to_owned(),
            store: self.describe.clone(),
            source: Box::new(source),
        }
    }

    fn step_prefix(id: StepRunId) -> Path {
        Path::from_iter([id.build.to_string(), format!("{}.{}", id.attempt, id.index)])
    }

    pub(super) fn data_path(id: StepRunId, path: &str) -> Path {
        let mut p = Self::step_prefix(id);
        p.extend(std::iter::once("files").chain(path.split('/')));
        p
    }

    pub(super) fn meta_path(id: StepRunId, path: &str) -> Path {
        let name: String = Sha256::digest(path.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut p = Self::step_prefix(id);
        p.extend(["meta".to_owned(), format!("{name}.json")]);
        p
    }

    pub(crate) fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Every stored file of `build`, by path, then attempt and step.
    pub async fn list(&self, build: BuildId) -> Result<Vec<ArtifactInfo>, ArtifactError> {
        let prefix = Path::from(build.to_string());
        let metas: Vec<_> = self
            .objects
            .list(Some(&prefix))
            .try_filter(|m| {
                let is_meta = m
                    .location
                    .parts()
                    .nth(2)
                    .is_some_and(|p| p.as_ref() == "meta");
                std::future::ready(is_meta)
            })
            .try_collect()
            .await
            .map_err(|e| self.store_error("list the artifacts", prefix.as_ref(), e))?;
        let mut out = Vec::with_capacity(metas.len());
        for meta in metas {
            let location = meta.location.to_string();
            let bytes = self
                .objects
                .get(&meta.location)
                .await
                .map_err(|e| self.store_error("read", &location, e))?
                .bytes()
                .await
                .map_err(|e| self.store_error("read", &location, e))?;
            let info: ArtifactInfo =
                serde_json::from_slice(&bytes).map_err(|source| ArtifactError::Meta {
                    path: location.clone(),
                    source,
                })?;
            out.push(info);
        }
        out.sort_by(|a, b| (&a.path, a.attempt, a.step).cmp(&(&b.path, b.attempt, b.step)));
        Ok(out)
    }

    /// The newest copy of `path` in `build` (the last attempt's, its last
    /// step's).
    pub async fn find(
        &self,
        build: BuildId,
        path: &str,
    ) -> Result<Option<ArtifactInfo>, ArtifactError> {
        Ok(self
            .list(build)
            .await?
            .into_iter()
            .filter(|a| a.path == path)
            .max_by_key(|a| (a.attempt, a.step)))
    }

    /// The bytes of `info` in `range` (the whole file when `None`), as a
    /// stream: never all in memory.
    pub async fn open(
        &self,
        info: &ArtifactInfo,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, ArtifactError> {
        let id = StepRunId {
            build: info.build,
            attempt: info.attempt,
            index: info.step,
        };
        let options = GetOptions {
            range: range.map(Into::into),
            ..GetOptions::default()
        };
        let got = self
            .objects
            .get_opts(&Self::data_path(id, &info.path), options)
            .await
            .map_err(|e| self.store_error("read", &info.path, e))?;
        Ok(got.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// Starts receiving `path` of step run `id`: reserves `size` bytes of
    /// the build's limit, or finds the same file stored already.
    pub async fn begin(
        self: &Arc<Self>,
        id: StepRunId,
        path: &str,
        size: u64,
        sha256: &str,
    ) -> Result<Begin, ArtifactError> {
        super::path::check_path(path).map_err(|why| ArtifactError::BadPath {
            path: path.to_owned(),
            why,
        })?;
        if let Some(have) = self.stored(id, path).await? {
            if have.sha256 == sha256 && have.size == size {
                return Ok(Begin::Have);
            }
        }
        self.reserve(id.build, path, size).await?;
        match Upload::start(self.clone(), id, path, size, sha256).await {
            Ok(upload) => Ok(Begin::Upload(Box::new(upload))),
            Err(e) => {
                self.release(id.build, size);
                Err(e)
            }
        }
    }

    async fn stored(
        &self,
        id: StepRunId,
        path: &str,
    ) -> Result<Option<ArtifactInfo>, ArtifactError> {
        match self.objects.get(&Self::meta_path(id, path)).await {
            Ok(got) => {
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| self.store_error("read", path, e))?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| ArtifactError::Meta {
                        path: path.to_owned(),
                        source,
                    })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.store_error("read", path, e)),
        }
    }

    async fn reserve(&self, build: BuildId, path: &str, size: u64) -> Result<(), ArtifactError> {
        let known = self.lock_used().get(&build).copied();
        let base = match known {
            Some(_) => 0,
            None => self.list(build).await?.iter().map(|a| a.size).sum(),
        };
        let mut used = self.lock_used();
        let total = used.entry(build).or_insert(base);
        let want = total.saturating_add(size);
        if self.limit > 0 && want > self.limit {
            return Err(ArtifactError::OverLimit {
                path: path.to_owned(),
                total: want,
                limit: self.limit,
            });
        }
        *total = want;
        Ok(())
    }

    pub(super) fn release(&self, build: BuildId, size: u64) {
        if let Some(total) = self.lock_used().get_mut(&build) {
            *total = total.saturating_sub(size);
        }
    }

    fn lock_used(&self) -> std::sync::MutexGuard<'_, HashMap<BuildId, u64>> {
        // Every critical section leaves the map consistent.
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Deletes every file of `build`; returns the bytes freed.
    pub async fn delete_build(&self, build: BuildId) -> Result<u64, ArtifactError> {
        let prefix = Path::from(build.to_string());
        let all: Vec<_> = self
            .objects
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.store_error("list the artifacts", prefix.as_ref(), e))?;
        let mut freed = 0;
        for meta in all {
            match self.objects.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.store_error("delete", meta.location.as_ref(), e)),
            }
            if meta
                .location
                .parts()
                .nth(2)
                .is_some_and(|p| p.as_ref() == "files")
            {
                freed += meta.size;
            }
        }
        self.lock_used().remove(&build);
        Ok(freed)
    }

    /// Writes the record that makes a whole file listed.
    pub(super) async fn commit(&self, info: &ArtifactInfo) -> Result<(), ArtifactError> {
        let id = StepRunId {
            build: info.build,
            attempt: info.attempt,
            index: info.step,
        };
        let json = serde_json::to_vec(info).map_err(|source| ArtifactError::Meta {
            path: info.path.clone(),
            source,
        })?;
        self.objects
            .put(
                &Self::meta_path(id, &info.path),
                PutPayload::from(Bytes::from(json)),
            )
            .await
            .map_err(|e| self.store_error("record", &info.path, e))?;
        Ok(())
    }
}
