//! One worker session's artifact uploads: the chunks of a file in order,
//! one file at a time, straight into the store (the session's reader awaits
//! each write, so a slow store slows the worker, not memory). A step whose
//! upload went wrong has its result turned into a failure that says why.

use std::collections::HashMap;
use std::sync::Arc;

use burst_common::error_chain::Chain;
use burst_proto::ArtifactChunk;

use super::error::ArtifactError;
use super::store::{ArtifactStore, Begin};
use super::upload::Upload;
use crate::logs::StepRunId;
use crate::model::now_millis;

pub struct Intake {
    store: Arc<ArtifactStore>,
    current: Option<Current>,
    /// Steps whose upload failed, and why.
    failed: HashMap<String, String>,
}

struct Current {
    step: String,
    path: String,
    size: u64,
    sha256: String,
    received: u64,
    /// `None`: the file is stored already; its chunks are counted, not kept.
    upload: Option<Box<Upload>>,
}

impl Intake {
    pub fn new(store: Arc<ArtifactStore>) -> Self {
        Self {
            store,
            current: None,
            failed: HashMap::new(),
        }
    }

    /// Takes a chunk of a step this session runs (the caller checked).
    pub async fn chunk(&mut self, id: StepRunId, c: ArtifactChunk) {
        if self.failed.contains_key(&c.step_run_id) {
            return;
        }
        if c.offset == 0 {
            if let Some(cur) = self.current.take() {
                let step = cur.step.clone();
                let path = cur.path.clone();
                drop_upload(cur).await;
                self.fail(&step, format!("artifact {path}: arrived incomplete"));
                if step == c.step_run_id {
                    return;
                }
            }
            match self.store.begin(id, &c.path, c.size, &c.sha256).await {
                Ok(begin) => {
                    self.current = Some(Current {
                        step: c.step_run_id.clone(),
                        path: c.path.clone(),
                        size: c.size,
                        sha256: c.sha256.clone(),
                        received: 0,
                        upload: match begin {
                            Begin::Have => None,
                            Begin::Upload(u) => Some(u),
                        },
                    });
                }
                Err(e) => {
                    let why = Chain(&e).to_string();
                    return self.fail_with(&c.step_run_id, why).await;
                }
            }
        }
        let in_order = self.current.as_ref().is_some_and(|cur| {
            cur.step == c.step_run_id
                && cur.path == c.path
                && cur.size == c.size
                && cur.sha256 == c.sha256
                && cur.received == c.offset
        });
        if !in_order {
            let why = format!("artifact {}: a piece arrived out of order", c.path);
            return self.fail_with(&c.step_run_id, why).await;
        }
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let got = cur.received + c.data.len() as u64;
        let result = match cur.upload.as_mut() {
            Some(upload) => upload.write(&c.data).await,
            None if got > cur.size => Err(ArtifactError::Size {
                path: cur.path.clone(),
                got,
                want: cur.size,
            }),
            None => Ok(()),
        };
        if let Err(e) = result {
            let why = Chain(&e).to_string();
            return self.fail_with(&c.step_run_id, why).await;
        }
        cur.received = got;
        if cur.received == cur.size {
            let Some(done) = self.current.take() else {
                return;
            };
            if let Some(upload) = done.upload {
                match upload.finish(now_millis()).await {
                    Ok(info) => {
                        tracing::debug!(step = %done.step, artifact = %info.path, size = info.size, "artifact stored")
                    }
                    Err(e) => {
                        let why = Chain(&e).to_string();
                        self.fail(&done.step, why)
                    }
                }
            }
        }
    }

    /// The step's result arrived: `Some(why)` if its artifacts did not all
    /// arrive whole.
    pub async fn finished(&mut self, step: &str) -> Option<String> {
        if self.current.as_ref().is_some_and(|c| c.step == step) {
            if let Some(cur) = self.current.take() {
                let path = cur.path.clone();
                drop_upload(cur).await;
                self.fail(step, format!("artifact {path}: arrived incomplete"));
            }
        }
        self.failed.remove(step)
    }

    /// The session ended: a file half received is dropped (the worker sends
    /// it again on its next session).
    pub async fn end(mut self) {
        if let Some(cur) = self.current.take() {
            drop_upload(cur).await;
        }
    }

    async fn fail_with(&mut self, step: &str, why: String) {
        if let Some(cur) = self.current.take() {
            drop_upload(cur).await;
        }
        self.fail(step, why);
    }

    fn fail(&mut self, step: &str, why: String) {
        tracing::warn!(step, "{why}");
        self.failed.entry(step.to_owned()).or_insert(why);
    }
}

async fn drop_upload(cur: Current) {
    if let Some(upload) = cur.upload {
        upload.abort().await;
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    fn sha(data: &[u8]) -> String {
        Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    const STEP: &str = "7.1.0";

    fn id() -> StepRunId {
        STEP.parse().unwrap()
    }

    fn chunk(path: &str, whole: &[u8], offset: usize, len: usize) -> ArtifactChunk {
        ArtifactChunk {
            step_run_id: STEP.into(),
            path: path.into(),
            size: whole.len() as u64,
            sha256: sha(whole),
            offset: offset as u64,
            data: whole[offset..offset + len].to_vec(),
        }
    }

    async fn send(intake: &mut Intake, path: &str, whole: &[u8]) {
        let mut at = 0;
        loop {
            let len = (whole.len() - at).min(3);
            intake.chunk(id(), chunk(path, whole, at, len)).await;
            at += len;
            if at >= whole.len() {
                break;
            }
        }
    }

    fn store(limit: u64) -> (tempfile::TempDir, Arc<ArtifactStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ArtifactStore::local(&dir.path().join("a"), limit).unwrap());
        (dir, store)
    }

    #[tokio::test]
    async fn whole_files_are_stored_listed_and_a_resend_is_kept_once() {
        let (_dir, store) = store(0);
        let mut intake = Intake::new(store.clone());
        send(&mut intake, "out/app", b"hello world").await;
        send(&mut intake, "empty", b"").await;
        assert_eq!(intake.finished(STEP).await, None);
        let list = store.list(7).await.unwrap();
        let got: Vec<(&str, u64)> = list.iter().map(|a| (a.path.as_str(), a.size)).collect();
        assert_eq!(got, [("empty", 0), ("out/app", 11)]);
        // A new session sends it again: the stored copy stands, no failure.
        let mut again = Intake::new(store.clone());
        send(&mut again, "out/app", b"hello world").await;
        assert_eq!(again.finished(STEP).await, None);
        assert_eq!(store.list(7).await.unwrap().len(), 2);
        let info = store.find(7, "out/app").await.unwrap().unwrap();
        let mut stream = store.open(&info, Some(6..11)).await.unwrap();
        let mut bytes = Vec::new();
        while let Some(c) = futures::StreamExt::next(&mut stream).await {
            bytes.extend_from_slice(&c.unwrap());
        }
        assert_eq!(bytes, b"world");
        assert_eq!(store.delete_build(7).await.unwrap(), 11);
        assert!(store.list(7).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_corrupt_file_fails_the_step_and_is_not_listed() {
        let (_dir, store) = store(0);
        let mut intake = Intake::new(store.clone());
        let mut c = chunk("x", b"abcdef", 0, 6);
        c.data = b"abcdeX".to_vec();
        intake.chunk(id(), c).await;
        let why = intake.finished(STEP).await.unwrap();
        assert!(why.contains("sha256 on arrival"), "{why}");
        assert!(store.list(7).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn paths_out_of_place_are_refused() {
        let (dir, store) = store(0);
        for bad in ["../../escaped", "/etc/x", "a/../../b", "a\\b"] {
            let mut intake = Intake::new(store.clone());
            intake.chunk(id(), chunk(bad, b"data", 0, 4)).await;
            let why = intake.finished(STEP).await.unwrap();
            assert!(why.contains("refused"), "{bad}: {why}");
        }
        assert!(!dir.path().join("escaped").exists());
        assert!(store.list(7).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_file_cut_short_or_out_of_order_fails_the_step() {
        let (_dir, store) = store(0);
        let mut intake = Intake::new(store.clone());
        intake.chunk(id(), chunk("x", b"abcdef", 0, 3)).await;
        let why = intake.finished(STEP).await.unwrap();
        assert!(why.contains("arrived incomplete"), "{why}");
        let mut intake = Intake::new(store.clone());
        intake.chunk(id(), chunk("x", b"abcdef", 0, 2)).await;
        intake.chunk(id(), chunk("x", b"abcdef", 3, 3)).await;
        let why = intake.finished(STEP).await.unwrap();
        assert!(why.contains("out of order"), "{why}");
        assert!(store.list(7).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_build_limit_counts_every_step_and_gives_back_failed_uploads() {
        let (_dir, store) = store(10);
        let mut intake = Intake::new(store.clone());
        send(&mut intake, "a", b"123456").await;
        assert_eq!(intake.finished(STEP).await, None);
        // 6 + 5 > 10.
        send(&mut intake, "b", b"12345").await;
        let why = intake.finished(STEP).await.unwrap();
        assert!(
            why.contains("would total 11 bytes, over the limit of 10"),
            "{why}"
        );
        // A failed upload takes nothing of the limit.
        let mut c = chunk("c", b"1234", 0, 4);
        c.data = b"XXXX".to_vec();
        intake.chunk(id(), c).await;
        assert!(intake.finished(STEP).await.is_some());
        send(&mut intake, "d", b"1234").await;
        assert_eq!(intake.finished(STEP).await, None);
    }

    #[tokio::test]
    async fn concurrent_sessions_saving_the_same_file_store_one_whole_copy() {
        let (_dir, store) = store(0);
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let store = store.clone();
            let data = data.clone();
            tasks.push(tokio::spawn(async move {
                let mut intake = Intake::new(store);
                let mut at = 0;
                while at < data.len() {
                    let len = (data.len() - at).min(64 * 1024);
                    intake.chunk(id(), chunk("same", &data, at, len)).await;
                    at += len;
                    tokio::task::yield_now().await;
                }
                intake.finished(STEP).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), None);
        }
        let list = store.list(7).await.unwrap();
        assert_eq!(list.len(), 1);
        let mut stream = store.open(&list[0], None).await.unwrap();
        let mut bytes = Vec::new();
        while let Some(c) = futures::StreamExt::next(&mut stream).await {
            bytes.extend_from_slice(&c.unwrap());
        }
        assert_eq!(bytes, data);
    }
}
