//! A store in plain maps behind a `std::sync::Mutex`. Nothing here awaits
//! another thread, so it is safe under tokio's paused clock, where the
//! scheduler's virtual-time tests run. It mirrors `SqliteStore` exactly:
//! ids from 1, the same orderings, the same checks.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::cost::WorkerAttempt;
use crate::model::{
    now_millis, Build, BuildId, BuildQuery, BuildState, BuildSummary, ExpiredBuild, IdempotencyKey,
    Instance, Millis, NewBuild, RetentionRule, SubmitOnce, TokenRecord, KEY_TTL_MILLIS,
};

mod triggers;

use super::check::check_build;
use super::ids::new_master_id;
use super::{Store, StoreError, StoreResult};

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Set by tests: every write fails, as on a read-only filesystem.
    fail_writes: AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    master_id: Option<String>,
    /// The last id given out; 0 before the first build, as in SQLite.
    last_build_id: BuildId,
    builds: BTreeMap<BuildId, Build>,
    instances: HashMap<String, LedgerRow>,
    /// Stands in for SQLite's rowid: orders same-millisecond launches.
    last_seq: u64,
    /// API tokens by name.
    tokens: BTreeMap<String, TokenRecord>,
    /// Idempotent submits by (scope, key).
    keys: HashMap<(String, String), KeyRow>,
    /// What triggers and reporters keep (`triggers.rs`).
    triggers: triggers::Tables,
    /// The builds (and their states) of each `save_builds` call that
    /// succeeded, in order: the scheduler tests' view of its group commits.
    batches: Vec<Vec<(BuildId, BuildState)>>,
}

#[derive(Debug)]
struct KeyRow {
    request_hash: String,
    submit_id: String,
    builds: Vec<BuildId>,
    created_at: i64,
}

#[derive(Debug)]
struct LedgerRow {
    seq: u64,
    instance: Instance,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every write fail (true) or work again (false): the store
    /// fault tests' stand-in for a read-only or full filesystem.
    pub fn fail_writes(&self, on: bool) {
        self.fail_writes.store(on, Ordering::SeqCst);
    }

    /// The builds of every successful `save_builds`, oldest first.
    pub fn saved_batches(&self) -> Vec<Vec<(BuildId, BuildState)>> {
        self.lock().batches.clone()
    }

    fn check_write(&self, action: &'static str) -> StoreResult<()> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::Query {
                action,
                source: sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ReadOnlyFilesystem,
                    "injected write fault",
                )),
            });
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock, and the maps stay whole
        // between statements, so a poisoned lock still holds good data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// Ledger rows matching `keep`, by (launched_at, insertion order).
    fn instances_sorted(&self, keep: impl Fn(&Instance) -> bool) -> Vec<&LedgerRow> {
        let mut rows: Vec<&LedgerRow> = self
            .instances
            .values()
            .filter(|row| keep(&row.instance))
            .collect();
        rows.sort_by_key(|row| (row.instance.launched_at, row.seq));
        rows
    }
}

/// How `SqliteStore` reads a build back: attempts by number, steps by index.
fn normalized(build: &Build) -> Build {
    let mut build = build.clone();
    build.attempts.sort_by_key(|a| a.number);
    for attempt in &mut build.attempts {
        attempt.steps.sort_by_key(|s| s.index);
    }
    build
}

fn take_limit(limit: u32) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

#[async_trait]
impl Store for MemoryStore {
    async fn master_id(&self) -> StoreResult<String> {
        let mut inner = self.lock();
        let id = inner.master_id.get_or_insert_with(new_master_id);
        Ok(id.clone())
    }

    async fn probe(&self) -> StoreResult<()> {
        self.check_write("write to the database")
    }

    async fn insert_builds(&self, builds: Vec<NewBuild>) -> StoreResult<Vec<Build>> {
        self.check_write("insert builds")?;
        let created_at = now_millis();
        let mut inner = self.lock();
        let mut inserted = Vec::with_capacity(builds.len());
        for new in builds {
            inner.last_build_id += 1;
            let build = new.into_build(inner.last_build_id, created_at);
            inner.builds.insert(build.id, build.clone());
            inner.triggers.inserted(&build, created_at);
            inserted.push(build);
        }
        Ok(inserted)
    }

    async fn insert_builds_once(
        &self,
        builds: Vec<NewBuild>,
        key: &IdempotencyKey,
    ) -> StoreResult<SubmitOnce> {
        self.check_write("begin an idempotent submit")?;
        let now = now_millis();
        let mut inner = self.lock();
        inner
            .keys
            .retain(|_, row| row.created_at > now - KEY_TTL_MILLIS);
        if let Some(row) = inner.keys.get(&(key.scope.clone(), key.key.clone())) {
            if row.request_hash != key.request_hash {
                return Ok(SubmitOnce::Conflict);
            }
            return Ok(SubmitOnce::Replayed {
                submit_id: row.submit_id.clone(),
                builds: row.builds.clone(),
            });
        }
        let submit_id = builds
            .first()
            .map(|b| b.submit_id.clone())
            .unwrap_or_default();
        let mut inserted = Vec::with_capacity(builds.len());
        for new in builds {
            inner.last_build_id += 1;
            let build = new.into_build(inner.last_build_id, now);
            inner.builds.insert(build.id, build.clone());
            inner.triggers.inserted(&build, now);
            inserted.push(build);
        }
        let row = KeyRow {
            request_hash: key.request_hash.clone(),
            submit_id,
            builds: inserted.iter().map(|b| b.id).collect(),
            created_at: now,
        };
        inner.keys.insert((key.scope.clone(), key.key.clone()), row);
        Ok(SubmitOnce::Created(inserted))
    }

    async fn save_build(&self, build: &Build) -> StoreResult<()> {
        check_build(build)?;
        self.check_write("save a build")?;
        let mut inner = self.lock();
        let slot = inner
            .builds
            .get_mut(&build.id)
            .ok_or(StoreError::UnknownBuild(build.id))?;
        *slot = normalized(build);
        inner.triggers.saved(build, now_millis());
        Ok(())
    }

    async fn save_builds(&self, builds: &[&Build]) -> StoreResult<()> {
        // A real store's write lets other tasks run while it is under way:
        // so does this one, so a reply sent before its write is seen first.
        tokio::task::yield_now().await;
        for build in builds {
            check_build(build)?;
        }
        self.check_write("save builds")?;
        let mut inner = self.lock();
        // All or none: every build must exist before any is replaced.
        if let Some(missing) = builds.iter().find(|b| !inner.builds.contains_key(&b.id)) {
            return Err(StoreError::UnknownBuild(missing.id));
        }
        let now = now_millis();
        for build in builds {
            inner.builds.insert(build.id, normalized(build));
            inner.triggers.saved(build, now);
        }
        inner
            .batches
            .push(builds.iter().map(|b| (b.id, b.state)).collect());
        Ok(())
    }

    async fn get_build(&self, id: BuildId) -> StoreResult<Option<Build>> {
        Ok(self.lock().builds.get(&id).cloned())
    }

    async fn list_builds(&self, limit: u32) -> StoreResult<Vec<Build>> {
        let inner = self.lock();
        Ok(inner
            .builds
            .values()
            .rev()
            .take(take_limit(limit))
            .cloned()
            .collect())
    }

    async fn query_builds(&self, query: &BuildQuery) -> StoreResult<Vec<Build>> {
        let inner = self.lock();
        let below = query.before.unwrap_or(BuildId::MAX);
        Ok(inner
            .builds
            .range(..below)
            .rev()
            .map(|(_, b)| b)
            .filter(|b| query.matches(b))
            .take(take_limit(query.limit))
            .cloned()
            .collect())
    }

    async fn recent_submits(&self, per_builder: u32) -> StoreResult<Vec<BuildSummary>> {
        let inner = self.lock();
        // Newest first: a builder's submits are taken in the order their
        // last build appears, which is their first build's order too, as
        // a submit's ids are consecutive.
        let mut kept: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut out = Vec::new();
        for b in inner.builds.values().rev() {
            let submits = kept.entry(b.builder.as_str()).or_default();
            if !submits.contains(&b.submit_id.as_str()) {
                if submits.len() >= take_limit(per_builder) {
                    continue;
                }
                submits.push(b.submit_id.as_str());
            }
            out.push(BuildSummary {
                id: b.id,
                submit_id: b.submit_id.clone(),
                builder: b.builder.clone(),
                cell: b.cell.clone(),
                state: b.state,
                reason: b.reason.clone(),
                created_at: b.created_at,
                finished_at: b.finished_at,
            });
        }
        Ok(out)
    }

    async fn unfinished_builds(&self) -> StoreResult<Vec<Build>> {
        let inner = self.lock();
        Ok(inner
            .builds
            .values()
            .filter(|b| !b.state.is_finished())
            .cloned()
            .collect())
    }

    async fn expired_builds(
        &self,
        rule: &RetentionRule,
        limit: u32,
    ) -> StoreResult<Vec<ExpiredBuild>> {
        if rule.keeps_everything() {
            return Ok(Vec::new());
        }
        let inner = self.lock();
        // Newest first, to rank each builder's finished builds.
        let mut newer: HashMap<&str, u32> = HashMap::new();
        let mut out = Vec::new();
        for b in inner.builds.values().rev() {
            if !b.state.is_finished() {
                continue;
            }
            let rank = newer.entry(b.builder.as_str()).or_default();
            *rank += 1;
            let finished_at = b.finished_at.unwrap_or(b.created_at);
            let old = rule.finished_before.is_none_or(|t| finished_at < t);
            let beyond = rule.keep_last.is_none_or(|n| *rank > n);
            if old && beyond {
                out.push(ExpiredBuild {
                    id: b.id,
                    builder: b.builder.clone(),
                    state: b.state,
                    finished_at,
                });
            }
        }
        out.reverse();
        out.truncate(take_limit(limit));
        Ok(out)
    }

    async fn delete_builds(&self, ids: &[BuildId]) -> StoreResult<u64> {
        self.check_write("delete builds")?;
        let mut inner = self.lock();
        let mut deleted = 0;
        for id in ids {
            if inner.builds.get(id).is_some_and(|b| b.state.is_finished()) {
                inner.builds.remove(id);
                inner.triggers.forget_build(*id);
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    async fn save_instance(&self, instance: &Instance) -> StoreResult<()> {
        self.check_write("save an instance")?;
        let mut inner = self.lock();
        if let Some(row) = inner.instances.get_mut(&instance.worker_id) {
            row.instance = instance.clone();
            return Ok(());
        }
        inner.last_seq += 1;
        let row = LedgerRow {
            seq: inner.last_seq,
            instance: instance.clone(),
        };
        inner.instances.insert(instance.worker_id.clone(), row);
        Ok(())
    }

    async fn get_instance(&self, worker_id: &str) -> StoreResult<Option<Instance>> {
        let inner = self.lock();
        Ok(inner
            .instances
            .get(worker_id)
            .map(|row| row.instance.clone()))
    }

    async fn live_instances(&self) -> StoreResult<Vec<Instance>> {
        let inner = self.lock();
        let rows = inner.instances_sorted(|i| i.state.is_live());
        Ok(rows.into_iter().map(|row| row.instance.clone()).collect())
    }

    async fn list_instances(&self, limit: u32) -> StoreResult<Vec<Instance>> {
        let inner = self.lock();
        let rows = inner.instances_sorted(|_| true);
        Ok(rows
            .into_iter()
            .rev()
            .take(take_limit(limit))
            .map(|row| row.instance.clone())
            .collect())
    }

    async fn instances_since(&self, since: Millis) -> StoreResult<Vec<Instance>> {
        let inner = self.lock();
        let rows = inner.instances_sorted(|i| i.terminated_at.is_none_or(|t| t >= since));
        Ok(rows.into_iter().map(|row| row.instance.clone()).collect())
    }

    async fn attempts_on(&self, workers: &[String]) -> StoreResult<Vec<WorkerAttempt>> {
        let inner = self.lock();
        let mut out = Vec::new();
        for b in inner.builds.values() {
            for a in b.attempts.iter().filter(|a| workers.contains(&a.worker_id)) {
                out.push(WorkerAttempt {
                    build: b.id,
                    builder: b.builder.clone(),
                    labels: b.labels.clone(),
                    worker_id: a.worker_id.clone(),
                    started_at: a.started_at,
                    finished_at: a.finished_at,
                });
            }
        }
        Ok(out)
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<bool> {
        let mut inner = self.lock();
        // Names and hashes are both unique, as in SQLite.
        let taken = inner.tokens.contains_key(&token.name)
            || inner.tokens.values().any(|t| t.hash == token.hash);
        if taken {
            return Ok(false);
        }
        inner.tokens.insert(token.name.clone(), token.clone());
        Ok(true)
    }

    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let inner = self.lock();
        Ok(inner.tokens.values().find(|t| t.hash == hash).cloned())
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        Ok(self.lock().tokens.values().cloned().collect())
    }

    async fn revoke_token(&self, name: &str) -> StoreResult<bool> {
        Ok(self.lock().tokens.remove(name).is_some())
    }
}
