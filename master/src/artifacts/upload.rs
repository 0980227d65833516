use std::sync::Arc;

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

use super::error::ArtifactError;
use super::store::ArtifactStore;
use crate::logs::StepRunId;
use crate::model::ArtifactInfo;

/// Parts of a file in flight to the store at once: with the part size this
/// bounds the memory one upload holds.
const PARTS_IN_FLIGHT: usize = 2;
const PART_SIZE: usize = 5 * 1024 * 1024;

/// One file arriving: hashed as it comes, written in parts, listed only
/// once whole and checked.
pub struct Upload {
    store: Arc<ArtifactStore>,
    id: StepRunId,
    path: String,
    size: u64,
    sha256: String,
    received: u64,
    hasher: Sha256,
    /// `None` for an empty file (stored with one put at the end).
    writer: Option<WriteMultipart>,
}

impl Upload {
    pub(super) async fn start(
        store: Arc<ArtifactStore>,
        id: StepRunId,
        path: &str,
        size: u64,
        sha256: &str,
    ) -> Result<Self, ArtifactError> {
        let writer = if size == 0 {
            None
        } else {
            let multipart = store
                .objects()
                .put_multipart(&ArtifactStore::data_path(id, path))
                .await
                .map_err(|e| store.store_error("start storing", path, e))?;
            Some(WriteMultipart::new_with_chunk_size(multipart, PART_SIZE))
        };
        Ok(Self {
            store,
            id,
            path: path.to_owned(),
            size,
            sha256: sha256.to_owned(),
            received: 0,
            hasher: Sha256::new(),
            writer,
        })
    }

    pub fn is_whole(&self) -> bool {
        self.received == self.size
    }

    /// Takes the next piece; waits while the store is behind (the worker's
    /// stream waits with it: that is the backpressure).
    pub async fn write(&mut self, data: &[u8]) -> Result<(), ArtifactError> {
        let got = self.received + data.len() as u64;
        if got > self.size {
            return Err(ArtifactError::Size {
                path: self.path.clone(),
                got,
                want: self.size,
            });
        }
        self.hasher.update(data);
        self.received = got;
        if let Some(writer) = self.writer.as_mut() {
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|e| self.store.store_error("store", &self.path, e))?;
            writer.write(data);
        }
        Ok(())
    }

    /// The whole file arrived: checks its hash, then stores and lists it.
    pub async fn finish(mut self, created_at: i64) -> Result<ArtifactInfo, ArtifactError> {
        let got: String = std::mem::take(&mut self.hasher)
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !self.is_whole() {
            let e = ArtifactError::Size {
                path: self.path.clone(),
                got: self.received,
                want: self.size,
            };
            self.abort().await;
            return Err(e);
        }
        if got != self.sha256 {
            let e = ArtifactError::Corrupt {
                path: self.path.clone(),
                got,
                want: self.sha256.clone(),
            };
            self.abort().await;
            return Err(e);
        }
        let data = ArtifactStore::data_path(self.id, &self.path);
        let stored = match self.writer.take() {
            Some(writer) => writer.finish().await.map(drop),
            None => self
                .store
                .objects()
                .put(&data, PutPayload::from(Bytes::new()))
                .await
                .map(drop),
        };
        if let Err(e) = stored {
            self.store.release(self.id.build, self.size);
            return Err(self.store.store_error("store", &self.path, e));
        }
        let info = ArtifactInfo {
            build: self.id.build,
            path: self.path.clone(),
            size: self.size,
            sha256: got,
            attempt: self.id.attempt,
            step: self.id.index,
            step_name: None,
            created_at,
        };
        if let Err(e) = self.store.commit(&info).await {
            self.store.release(self.id.build, self.size);
            return Err(e);
        }
        Ok(info)
    }

    /// Drops what arrived and gives its bytes back to the build's limit.
    pub async fn abort(mut self) {
        if let Some(writer) = self.writer.take() {
            if let Err(e) = writer.abort().await {
                tracing::warn!(artifact = %self.path, "failed to drop a partial upload: {e}");
            }
        }
        self.store.release(self.id.build, self.size);
    }
}
