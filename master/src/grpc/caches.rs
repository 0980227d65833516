//! `FetchCache` and `PutCache`: a running cache step reads or writes its
//! builder's caches with the capability its `RunStep` carried. A request
//! without a valid one, for a step not running, or naming a bad key is
//! refused and logged; archives stream both ways, never whole in memory.

use std::pin::Pin;
use std::sync::Arc;

use burst_proto::{CacheAuth, CacheData, FetchCacheRequest, PutCacheReply};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::hello_limits::for_log;
use crate::caches::{CacheKeys, CacheStore};
use crate::logs::{LogStore, StepRunId};
use crate::metrics::Metrics;

/// Bytes of archive per message sent to a worker.
const CHUNK: usize = 128 * 1024;

pub type CacheStream = Pin<Box<dyn Stream<Item = Result<CacheData, Status>> + Send>>;

/// What the two calls need of the service.
#[derive(Clone)]
pub struct CacheService {
    pub store: Arc<CacheStore>,
    pub keys: CacheKeys,
    pub logs: Arc<LogStore>,
    pub metrics: Arc<Metrics>,
    /// Most bytes one archive may hold (0: no limit).
    pub max_bytes: u64,
}

/// The builder a scope belongs to (`builder` or `builder@branch`).
fn builder_of(scope: &str) -> &str {
    scope.split('@').next().unwrap_or(scope)
}

impl CacheService {
    /// `modes`: the tokens accepted (read `false`, save `true`).
    fn check(&self, auth: Option<&CacheAuth>, modes: &[bool], keys: &[&str]) -> Result<(), Status> {
        let Some(auth) = auth else {
            tracing::warn!("refused a cache call without credentials");
            return Err(Status::unauthenticated(
                "a cache call needs its step's token",
            ));
        };
        let running = auth
            .step_run_id
            .parse::<StepRunId>()
            .is_ok_and(|id| self.logs.is_open(id));
        let valid = modes.iter().any(|save| {
            self.keys
                .verify(&auth.step_run_id, &auth.scope, *save, &auth.token)
        });
        if !valid || !running {
            tracing::warn!(step = %for_log(&auth.step_run_id), scope = %for_log(&auth.scope), ?modes, running, "refused a cache call: bad token or step not running");
            return Err(Status::permission_denied(
                "the cache token is not valid for this step, scope and mode, or the step is not running",
            ));
        }
        if let Some(bad) = keys.iter().find(|k| !CacheStore::key_ok(k)) {
            tracing::warn!(step = %auth.step_run_id, key = %for_log(bad), "refused a cache key");
            return Err(Status::invalid_argument(format!(
                "cache key {:?} refused: use letters, digits, '.', '_' and '-'",
                for_log(bad)
            )));
        }
        Ok(())
    }

    pub async fn fetch(&self, req: FetchCacheRequest) -> Result<CacheStream, Status> {
        let mut keys: Vec<&str> = vec![&req.key];
        keys.extend(req.restore_keys.iter().map(String::as_str));
        // A save step may ask whether its key is saved already.
        let modes: &[bool] = if req.probe { &[false, true] } else { &[false] };
        self.check(req.auth.as_ref(), modes, &keys)?;
        let scope = req
            .auth
            .as_ref()
            .map(|a| a.scope.clone())
            .unwrap_or_default();
        let builder = builder_of(&scope).to_owned();
        let restore: &[String] = if req.probe { &[] } else { &req.restore_keys };
        let found = self
            .store
            .find(&scope, &req.key, restore)
            .await
            .map_err(Status::unavailable)?;
        let (tx, rx) = mpsc::channel(4);
        let Some((record, exact)) = found else {
            if !req.probe {
                self.metrics.cache_request(&builder, "miss");
            }
            let _ = tx.try_send(Ok(CacheData::default()));
            return Ok(Box::pin(ReceiverStream::new(rx)));
        };
        let head = CacheData {
            key: record.key.clone(),
            exact,
            size: record.size,
            ..CacheData::default()
        };
        if req.probe {
            let _ = tx.try_send(Ok(head));
            return Ok(Box::pin(ReceiverStream::new(rx)));
        }
        self.metrics
            .cache_request(&builder, if exact { "hit" } else { "partial" });
        self.store.touch(&scope, &record).await;
        let mut stream = self
            .store
            .open(&scope, &record)
            .await
            .map_err(Status::unavailable)?;
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            if tx.send(Ok(head)).await.is_err() {
                return;
            }
            let mut sent = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(Status::unavailable(e))).await;
                        return;
                    }
                };
                for piece in chunk.chunks(CHUNK) {
                    let data = CacheData {
                        data: piece.to_vec(),
                        ..CacheData::default()
                    };
                    if tx.send(Ok(data)).await.is_err() {
                        return;
                    }
                    sent += piece.len() as u64;
                }
            }
            metrics.cache_restored(&builder, sent);
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    fn too_big(&self, key: &str, size: u64) -> Status {
        tracing::warn!(cache = %for_log(key), size, limit = self.max_bytes, "refused a cache archive over the limit");
        Status::resource_exhausted(format!(
            "cache {key}: {size} bytes, over the limit of {} bytes ([artifacts] max_cache_bytes); not saved",
            self.max_bytes
        ))
    }

    pub async fn put(&self, mut inbound: Streaming<CacheData>) -> Result<PutCacheReply, Status> {
        let head = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("an empty cache upload"))?;
        self.check(head.auth.as_ref(), &[true], &[&head.key])?;
        let over = |size: u64| self.max_bytes > 0 && size > self.max_bytes;
        if over(head.size) {
            return Err(self.too_big(&head.key, head.size));
        }
        let scope = head
            .auth
            .as_ref()
            .map(|a| a.scope.clone())
            .unwrap_or_default();
        let mut upload = self
            .store
            .begin(&scope, &head.key)
            .await
            .map_err(Status::unavailable)?;
        let mut first = Some(head.data);
        loop {
            let data = match first.take() {
                Some(d) => d,
                None => match inbound.message().await {
                    Ok(Some(m)) => m.data,
                    Ok(None) => break,
                    Err(status) => {
                        upload.abort().await;
                        return Err(status);
                    }
                },
            };
            let total = upload.size() + data.len() as u64;
            if over(total) {
                upload.abort().await;
                return Err(self.too_big(&head.key, total));
            }
            if let Err(e) = upload.write(&data).await {
                upload.abort().await;
                return Err(Status::unavailable(e));
            }
        }
        let size = upload.size();
        if head.size != size {
            upload.abort().await;
            return Err(Status::data_loss(format!(
                "cache {}: {size} bytes arrived, {} announced",
                head.key, head.size
            )));
        }
        let saved = upload.finish().await.map_err(Status::unavailable)?;
        if saved {
            self.metrics.cache_saved(builder_of(&scope), size);
        }
        Ok(PutCacheReply { saved })
    }
}
