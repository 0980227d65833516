use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};

use crate::model::{now_millis, Millis};

/// Longest key a worker may name (the config's templates, rendered).
const MAX_KEY: usize = 256;
const PART_SIZE: usize = 5 * 1024 * 1024;

/// A saved archive. Layout per scope `S` (a builder, or `builder@branch`):
/// `caches/S/keys/<key>.json` (this record, written once, first saver wins)
/// and `caches/S/data/<key>.<random>.tar.zst`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub key: String,
    pub size: u64,
    pub created_at: Millis,
    /// The data object's name under `data/`.
    pub data: String,
    /// The last restore of it (0: never restored).
    #[serde(default)]
    pub used_at: Millis,
}

impl CacheRecord {
    /// When it was last saved or restored.
    pub fn last_use(&self) -> Millis {
        self.created_at.max(self.used_at)
    }
}

pub struct CacheStore {
    objects: Arc<dyn ObjectStore>,
}

/// A cache store error, with what it was doing and where.
pub type CacheResult<T> = Result<T, String>;

impl CacheStore {
    pub fn new(objects: Arc<dyn ObjectStore>) -> Self {
        Self { objects }
    }

    /// A key a worker may ask for or save under: what the config's
    /// templates render to (no `/`, nothing that could leave the scope).
    pub fn key_ok(key: &str) -> bool {
        !key.is_empty()
            && key.len() <= MAX_KEY
            && key != "."
            && key != ".."
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    }

    fn dir(scope: &str, kind: &str) -> Path {
        Path::from_iter(["caches", scope, kind])
    }

    fn record_path(scope: &str, key: &str) -> Path {
        let mut p = Self::dir(scope, "keys");
        p.extend([format!("{key}.json")]);
        p
    }

    fn data_path(scope: &str, data: &str) -> Path {
        let mut p = Self::dir(scope, "data");
        p.extend([data]);
        p
    }

    async fn record(&self, scope: &str, key: &str) -> CacheResult<Option<CacheRecord>> {
        match self.objects.get(&Self::record_path(scope, key)).await {
            Ok(got) => {
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| format!("failed to read cache {key}: {e}"))?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| format!("cache {key}: its record is unreadable: {e}"))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(format!("failed to read cache {key}: {e}")),
        }
    }

    /// `key` itself, else the newest key starting with the first restore
    /// key that has one, and whether it was `key` itself.
    pub async fn find(
        &self,
        scope: &str,
        key: &str,
        restore_keys: &[String],
    ) -> CacheResult<Option<(CacheRecord, bool)>> {
        if let Some(r) = self.record(scope, key).await? {
            return Ok(Some((r, true)));
        }
        if restore_keys.is_empty() {
            return Ok(None);
        }
        let dir = Self::dir(scope, "keys");
        let names: Vec<String> = self
            .objects
            .list(Some(&dir))
            .map_ok(|m| m.location.filename().unwrap_or_default().to_owned())
            .try_collect()
            .await
            .map_err(|e| format!("failed to list the caches of {scope}: {e}"))?;
        for prefix in restore_keys {
            let mut newest: Option<CacheRecord> = None;
            for name in &names {
                let Some(k) = name
                    .strip_suffix(".json")
                    .filter(|k| k.starts_with(prefix.as_str()))
                else {
                    continue;
                };
                if let Some(r) = self.record(scope, k).await? {
                    if newest.as_ref().is_none_or(|n| r.created_at > n.created_at) {
                        newest = Some(r);
                    }
                }
            }
            if let Some(r) = newest {
                return Ok(Some((r, false)));
            }
        }
        Ok(None)
    }

    /// The archive's bytes, streamed.
    pub async fn open(
        &self,
        scope: &str,
        r: &CacheRecord,
    ) -> CacheResult<BoxStream<'static, CacheResult<Bytes>>> {
        let got = self
            .objects
            .get(&Self::data_path(scope, &r.data))
            .await
            .map_err(|e| format!("failed to read cache {}: {e}", r.key))?;
        let key = r.key.clone();
        Ok(got
            .into_stream()
            .map_err(move |e| format!("failed to read cache {key}: {e}"))
            .boxed())
    }

    pub async fn begin(self: &Arc<Self>, scope: &str, key: &str) -> CacheResult<CacheUpload> {
        let mut tag = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut tag);
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let data = format!("{key}.{tag}.tar.zst");
        let upload = self
            .objects
            .put_multipart(&Self::data_path(scope, &data))
            .await
            .map_err(|e| format!("failed to start saving cache {key}: {e}"))?;
        Ok(CacheUpload {
            store: self.clone(),
            scope: scope.to_owned(),
            key: key.to_owned(),
            data,
            size: 0,
            writer: Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)),
        })
    }

    /// Records a restore of `r`, so the janitor keeps a cache in use. A
    /// failure only costs the record its freshness.
    pub async fn touch(&self, scope: &str, r: &CacheRecord) {
        let touched = CacheRecord {
            used_at: now_millis(),
            ..r.clone()
        };
        let Ok(json) = serde_json::to_vec(&touched) else {
            return;
        };
        if let Err(e) = self
            .objects
            .put(
                &Self::record_path(scope, &r.key),
                PutPayload::from(Bytes::from(json)),
            )
            .await
        {
            tracing::warn!(cache = %r.key, "failed to record a cache restore: {e}");
        }
    }

    /// Removes every cache, in every scope, last saved or restored before
    /// `before`: its record first (so nothing lists it), then its data.
    /// Returns `scope/key` of each.
    pub async fn expire(&self, before: Millis) -> CacheResult<Vec<String>> {
        let all: Vec<_> = self
            .objects
            .list(Some(&Path::from("caches")))
            .try_collect()
            .await
            .map_err(|e| format!("failed to list the caches: {e}"))?;
        let mut gone = Vec::new();
        for m in all {
            let parts: Vec<String> = m.location.parts().map(|p| p.as_ref().to_owned()).collect();
            let [_, scope, kind, name] = parts.as_slice() else {
                continue;
            };
            let Some(key) = name.strip_suffix(".json").filter(|_| kind == "keys") else {
                continue;
            };
            // Scopes are stored encoded; the record's own path decodes them.
            let scope = percent_decode(scope);
            let Some(r) = self.record(&scope, key).await? else {
                continue;
            };
            if r.last_use() >= before {
                continue;
            }
            self.objects
                .delete(&Self::record_path(&scope, key))
                .await
                .map_err(|e| format!("failed to delete cache {key}: {e}"))?;
            drop_data(self, &scope, &r.data, key).await;
            gone.push(format!("{scope}/{key}"));
        }
        gone.sort();
        Ok(gone)
    }

    /// Deletes every cache of `scope`; returns how many keys went.
    #[cfg(test)]
    pub async fn delete_scope(&self, scope: &str) -> CacheResult<usize> {
        let all: Vec<_> = self
            .objects
            .list(Some(&Path::from_iter(["caches", scope])))
            .try_collect()
            .await
            .map_err(|e| format!("failed to list the caches of {scope}: {e}"))?;
        let mut keys = 0;
        for m in all {
            keys += usize::from(
                m.location
                    .parts()
                    .nth(2)
                    .is_some_and(|p| p.as_ref() == "keys"),
            );
            self.objects
                .delete(&m.location)
                .await
                .map_err(|e| format!("failed to delete {}: {e}", m.location))?;
        }
        Ok(keys)
    }
}

/// One archive arriving.
pub struct CacheUpload {
    store: Arc<CacheStore>,
    scope: String,
    key: String,
    data: String,
    size: u64,
    writer: Option<WriteMultipart>,
}

impl CacheUpload {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub async fn write(&mut self, data: &[u8]) -> CacheResult<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Err("the upload is over".into());
        };
        writer
            .wait_for_capacity(2)
            .await
            .map_err(|e| format!("failed to save cache {}: {e}", self.key))?;
        writer.write(data);
        self.size += data.len() as u64;
        Ok(())
    }

    /// Stores the archive, then its record, unless another save of the key
    /// won: then this one's data is dropped and `Ok(false)` returned.
    pub async fn finish(mut self) -> CacheResult<bool> {
        let Some(writer) = self.writer.take() else {
            return Err("the upload is over".into());
        };
        writer
            .finish()
            .await
            .map_err(|e| format!("failed to save cache {}: {e}", self.key))?;
        let record = CacheRecord {
            key: self.key.clone(),
            size: self.size,
            created_at: now_millis(),
            data: self.data.clone(),
            used_at: 0,
        };
        let json = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
        let put = self
            .store
            .objects
            .put_opts(
                &CacheStore::record_path(&self.scope, &self.key),
                PutPayload::from(Bytes::from(json)),
                PutOptions::from(PutMode::Create),
            )
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => {
                drop_data(&self.store, &self.scope, &self.data, &self.key).await;
                Ok(false)
            }
            Err(e) => {
                drop_data(&self.store, &self.scope, &self.data, &self.key).await;
                Err(format!("failed to record cache {}: {e}", self.key))
            }
        }
    }

    pub async fn abort(mut self) {
        if let Some(w) = self.writer.take() {
            let _ = w.abort().await;
        }
    }
}

/// A path part as object_store encodes it (`%XX`), decoded.
fn percent_decode(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn drop_data(store: &CacheStore, scope: &str, data: &str, key: &str) {
    let path = CacheStore::data_path(scope, data);
    if let Err(e) = store.objects.delete(&path).await {
        tracing::warn!(cache = %key, "failed to drop an archive: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<CacheStore>) {
        let dir = tempfile::tempdir().unwrap();
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        (dir, Arc::new(CacheStore::new(Arc::new(fs))))
    }

    async fn save(store: &Arc<CacheStore>, key: &str, data: &[u8]) -> bool {
        let mut up = store.begin("b", key).await.unwrap();
        up.write(data).await.unwrap();
        up.finish().await.unwrap()
    }

    async fn read(store: &CacheStore, r: &CacheRecord) -> Vec<u8> {
        let mut s = store.open("b", r).await.unwrap();
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn an_exact_key_wins_then_the_newest_with_a_restore_prefix() {
        let (_d, store) = store();
        assert!(save(&store, "cargo-aaa", b"old").await);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(save(&store, "cargo-bbb", b"new").await);
        assert!(save(&store, "npm-x", b"npm").await);
        let (r, exact) = store
            .find("b", "cargo-aaa", &["cargo-".into()])
            .await
            .unwrap()
            .unwrap();
        assert!(exact);
        assert_eq!(read(&store, &r).await, b"old");
        let (r, exact) = store
            .find("b", "cargo-zzz", &["nope-".into(), "cargo-".into()])
            .await
            .unwrap()
            .unwrap();
        assert!(!exact);
        assert_eq!(read(&store, &r).await, b"new");
        assert!(store.find("b", "cargo-zzz", &[]).await.unwrap().is_none());
        assert!(store
            .find("other", "cargo-aaa", &["cargo-".into()])
            .await
            .unwrap()
            .is_none());
        // Restoring a key keeps it; the others expire.
        let (r, _) = store.find("b", "cargo-bbb", &[]).await.unwrap().unwrap();
        let cut = now_millis() + 1;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        store.touch("b", &r).await;
        assert!(save(&store, "other-scope", b"x").await);
        let gone = store.expire(cut).await.unwrap();
        assert_eq!(gone, ["b/cargo-aaa", "b/npm-x"]);
        assert!(store.find("b", "cargo-aaa", &[]).await.unwrap().is_none());
        assert!(store.find("b", "cargo-bbb", &[]).await.unwrap().is_some());
        assert_eq!(store.delete_scope("b").await.unwrap(), 2);
        assert!(store.find("b", "cargo-aaa", &[]).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn concurrent_saves_of_one_key_keep_the_first_whole() {
        let (_d, store) = store();
        let mut a = store.begin("b", "k").await.unwrap();
        let mut b = store.begin("b", "k").await.unwrap();
        a.write(b"from a").await.unwrap();
        b.write(b"from b, longer").await.unwrap();
        assert!(b.finish().await.unwrap());
        assert!(!a.finish().await.unwrap());
        let (r, _) = store.find("b", "k", &[]).await.unwrap().unwrap();
        assert_eq!(read(&store, &r).await, b"from b, longer");
        // The loser's data is gone: one data object left.
        let data: Vec<_> = store
            .objects
            .list(Some(&CacheStore::dir("b", "data")))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(data.len(), 1);
    }

    #[tokio::test]
    async fn a_branch_scope_round_trips_through_its_encoded_path() {
        let (_d, store) = store();
        let mut up = store.begin("web@feature/x", "k").await.unwrap();
        up.write(b"data").await.unwrap();
        assert!(up.finish().await.unwrap());
        assert!(store
            .find("web@feature/x", "k", &[])
            .await
            .unwrap()
            .is_some());
        assert!(store.find("web", "k", &[]).await.unwrap().is_none());
        let gone = store.expire(now_millis() + 1).await.unwrap();
        assert_eq!(gone, ["web@feature/x/k"]);
        assert!(store
            .find("web@feature/x", "k", &[])
            .await
            .unwrap()
            .is_none());
    }

    #[test]
    fn keys_are_plain() {
        assert!(CacheStore::key_ok("cargo-0123abcd"));
        for bad in ["", "..", "a/b", "a b", "k\0"] {
            assert!(!CacheStore::key_ok(bad), "{bad:?}");
        }
    }
}
