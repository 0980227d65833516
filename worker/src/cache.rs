//! The built-in cache steps (`RunStep.cache`): restore a builder's cache
//! before its steps, save it after them. An archive is a zstd-compressed tar
//! whose top entries are the cache's paths by index (`0/…`, `1/…`), packed
//! and unpacked through files and pipes, never whole in memory. A cache
//! never fails its build: whatever goes wrong is a warning in the step's log
//! and the build goes on cold.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use burst_proto::worker_service_client::WorkerServiceClient;
use burst_proto::{
    CacheAuth, CacheData, CacheStep, FetchCacheRequest, OutputStream, RunStep, StepFinished,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Duration, Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::step::{StepContext, Stop, StopSignal};

/// Bytes per message of an archive sent to the master.
const CHUNK: usize = 128 * 1024;
/// How long a cache step waits for a session to the master.
const CONNECT_WAIT: Duration = Duration::from_secs(30);
/// Temporary archives, inside the work dir.
const TMP_DIR: &str = ".cache-tmp";

/// `None` when the master stopped wanting the step.
pub(crate) async fn run(
    run: &RunStep,
    spec: &CacheStep,
    ctx: &StepContext,
    stop: &mut StopSignal,
) -> Option<StepFinished> {
    let mut finished = StepFinished {
        step_run_id: run.step_run_id.clone(),
        exit_code: Some(0),
        ..Default::default()
    };
    let work = async {
        let build_dir = crate::step::step_dir(&ctx.work_dir, &run.build_key, "")?;
        if spec.save {
            save(run, spec, ctx, &build_dir).await
        } else {
            restore(run, spec, ctx, &build_dir).await
        }
    };
    let line = tokio::select! {
        r = work => match r {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(step = %run.step_run_id, "{e}");
                format!("cache: warning: {e}; the build goes on without it")
            }
        },
        why = stop.next() => match why {
            Stop::Lost => return None,
            Stop::LeaseExpired => {
                finished.lease_expired = true;
                finished.exit_code = None;
                finished.error = "the worker stopped the step: its step lease ran out".into();
                return Some(finished);
            }
            Stop::Cancel | Stop::Kill => {
                finished.cancelled = true;
                finished.exit_code = None;
                return Some(finished);
            }
        },
    };
    ctx.journal
        .append(
            &run.step_run_id,
            OutputStream::Stdout as i32,
            format!("{line}\n").into_bytes(),
        )
        .await;
    Some(finished)
}

fn auth(run: &RunStep, spec: &CacheStep) -> CacheAuth {
    CacheAuth {
        step_run_id: run.step_run_id.clone(),
        scope: spec.scope.clone(),
        token: spec.token.clone(),
    }
}

async fn client(ctx: &StepContext) -> Result<WorkerServiceClient<Channel>, String> {
    let mut rx = ctx.channel.clone();
    let deadline = Instant::now() + CONNECT_WAIT;
    loop {
        if let Some(channel) = rx.borrow_and_update().clone() {
            return Ok(WorkerServiceClient::new(channel));
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return Err("no session to the master to reach the cache".into());
        }
    }
}

/// Where the key a restore step rendered is kept for the build's save step:
/// like GitHub's, a cache is saved under the key computed before the steps
/// ran (they may change the files it hashes). Beside the build's directory,
/// not in it, and gone with it.
fn key_file(ctx: &StepContext, run: &RunStep, spec: &CacheStep) -> PathBuf {
    let id: String = Sha256::digest(spec.key.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    ctx.work_dir
        .join(TMP_DIR)
        .join(format!("{}.{id}.key", run.build_key))
}

async fn restore(
    run: &RunStep,
    spec: &CacheStep,
    ctx: &StepContext,
    build_dir: &Path,
) -> Result<String, String> {
    let started = Instant::now();
    let key = render(&spec.key, build_dir)?;
    let kept = key_file(ctx, run, spec);
    if let Some(dir) = kept.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&kept, &key) {
        tracing::warn!(step = %run.step_run_id, "failed to keep the cache key in {}: {e}", kept.display());
    }
    let restore_keys = spec
        .restore_keys
        .iter()
        .map(|k| render(k, build_dir))
        .collect::<Result<Vec<_>, _>>()?;
    let roots = roots(build_dir, &spec.paths)?;
    let mut stream = client(ctx)
        .await?
        .fetch_cache(FetchCacheRequest {
            auth: Some(auth(run, spec)),
            key: key.clone(),
            restore_keys,
            probe: false,
        })
        .await
        .map_err(|s| format!("failed to ask for cache {key}: {}", s.message()))?
        .into_inner();
    let head = stream
        .message()
        .await
        .map_err(|s| format!("failed to fetch cache {key}: {}", s.message()))?
        .ok_or_else(|| format!("failed to fetch cache {key}: the master sent nothing"))?;
    if head.key.is_empty() {
        return Ok(format!("cache: miss for {key}; the build starts cold"));
    }
    let tmp = tmp_file(ctx, run)?;
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| format!("failed to create {}: {e}", tmp.display()))?;
        let mut got = 0u64;
        while let Some(piece) = stream
            .message()
            .await
            .map_err(|s| format!("failed to fetch cache {}: {}", head.key, s.message()))?
        {
            got += piece.data.len() as u64;
            file.write_all(&piece.data)
                .await
                .map_err(|e| format!("failed to write {}: {e}", tmp.display()))?;
        }
        file.flush().await.map_err(|e| e.to_string())?;
        if got != head.size {
            return Err(format!(
                "cache {}: {got} of {} bytes arrived",
                head.key, head.size
            ));
        }
        let (archive, stage) = (tmp.clone(), build_dir.join(".burst-cache-restore"));
        tokio::task::spawn_blocking(move || unpack(&archive, &stage, &roots))
            .await
            .map_err(|e| format!("failed to unpack: {e}"))?
            .map_err(|e| format!("cache {} is unreadable ({e})", head.key))?;
        Ok::<_, String>(got)
    }
    .await;
    let _ = tokio::fs::remove_file(&tmp).await;
    let bytes = result?;
    let how = if head.exact {
        "hit".to_owned()
    } else {
        format!("partial: {key} is not saved, restored the newest with a restore key")
    };
    Ok(format!(
        "cache: restored {} ({how}), {bytes} bytes in {:.2} s",
        head.key,
        started.elapsed().as_secs_f64()
    ))
}

async fn save(
    run: &RunStep,
    spec: &CacheStep,
    ctx: &StepContext,
    build_dir: &Path,
) -> Result<String, String> {
    let started = Instant::now();
    let kept = key_file(ctx, run, spec);
    let key = match std::fs::read_to_string(&kept) {
        Ok(k) => {
            let _ = std::fs::remove_file(&kept);
            k
        }
        // The restore ran elsewhere (a retry on another worker): render now.
        Err(_) => render(&spec.key, build_dir)?,
    };
    let roots = roots(build_dir, &spec.paths)?;
    let mut client = client(ctx).await?;
    let probe = client
        .fetch_cache(FetchCacheRequest {
            // A save step's token also lets it ask whether its key is saved.
            auth: Some(auth(run, spec)),
            key: key.clone(),
            restore_keys: Vec::new(),
            probe: true,
        })
        .await;
    // A failed probe costs only the packing: the master keeps the first save.
    if let Ok(resp) = probe {
        let mut s = resp.into_inner();
        if let Ok(Some(head)) = s.message().await {
            if !head.key.is_empty() {
                return Ok(format!(
                    "cache: {key} is saved already; not saving it again"
                ));
            }
        }
    }
    if !roots.iter().any(|r| r.symlink_metadata().is_ok()) {
        return Ok(format!(
            "cache: nothing to save for {key}: none of its paths exist"
        ));
    }
    let tmp = tmp_file(ctx, run)?;
    let result = async {
        let out = tmp.clone();
        let size = tokio::task::spawn_blocking(move || pack(&roots, &out))
            .await
            .map_err(|e| format!("failed to pack: {e}"))??;
        let mut file = tokio::fs::File::open(&tmp)
            .await
            .map_err(|e| format!("failed to open {}: {e}", tmp.display()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let head = CacheData {
            auth: Some(auth(run, spec)),
            key: key.clone(),
            size,
            ..Default::default()
        };
        let feed = async move {
            if tx.send(head).await.is_err() {
                return Ok(());
            }
            let mut buf = vec![0; CHUNK];
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<(), std::io::Error>(());
                }
                let piece = CacheData {
                    data: buf[..n].to_vec(),
                    ..Default::default()
                };
                if tx.send(piece).await.is_err() {
                    return Ok(());
                }
            }
        };
        let (sent, reply) = tokio::join!(feed, client.put_cache(ReceiverStream::new(rx)));
        sent.map_err(|e| format!("failed to read {}: {e}", tmp.display()))?;
        let reply = reply.map_err(|s| format!("failed to save cache {key}: {}", s.message()))?;
        Ok::<_, String>((size, reply.into_inner().saved))
    }
    .await;
    let _ = tokio::fs::remove_file(&tmp).await;
    let (size, saved) = result?;
    Ok(if saved {
        format!(
            "cache: saved {key}, {size} bytes in {:.2} s",
            started.elapsed().as_secs_f64()
        )
    } else {
        format!("cache: {key} was saved by another build first; kept that one")
    })
}

fn tmp_file(ctx: &StepContext, run: &RunStep) -> Result<PathBuf, String> {
    let dir = ctx.work_dir.join(TMP_DIR);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
    let stem: String = run
        .step_run_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Ok(dir.join(format!("{stem}.tar.zst")))
}

/// A key template with each `{hash:PATH}` replaced by the first 16 hex
/// digits of the file's sha256 (`none` when it does not exist).
fn render(template: &str, build_dir: &Path) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{hash:") {
        out.push_str(&rest[..open]);
        let after = &rest[open + "{hash:".len()..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("cache key {template:?} has an unclosed '{{'"))?;
        let file = relative(build_dir, &after[..close])?;
        out.push_str(&match std::fs::read(&file) {
            Ok(bytes) => Sha256::digest(&bytes)
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect(),
            Err(_) => "none".to_owned(),
        });
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `path` under `base`, refusing anything that would leave it.
fn relative(base: &Path, path: &str) -> Result<PathBuf, String> {
    if path.starts_with(['/', '\\']) {
        return Err(format!(
            "cache path {path:?} must be relative, without '..'"
        ));
    }
    let mut out = base.to_path_buf();
    for part in path.split(['/', '\\']) {
        let mut parts = Path::new(part).components();
        match (parts.next(), parts.next()) {
            (None | Some(Component::CurDir), None) => {}
            (Some(Component::Normal(name)), None) => out.push(name),
            _ => {
                return Err(format!(
                    "cache path {path:?} must be relative, without '..'"
                ))
            }
        }
    }
    Ok(out)
}

/// Where each of the cache's paths is: `~/…` under the home directory,
/// the rest under the build's directory.
fn roots(build_dir: &Path, paths: &[String]) -> Result<Vec<PathBuf>, String> {
    paths
        .iter()
        .map(|p| match p.strip_prefix("~/") {
            Some(rest) => {
                let home = std::env::var_os(if cfg!(windows) { "USERPROFILE" } else { "HOME" })
                    .ok_or_else(|| format!("cache path {p:?}: the worker has no home directory"))?;
                relative(Path::new(&home), rest)
            }
            None => relative(build_dir, p),
        })
        .collect()
}

/// Tars the paths (as `0`, `1`, …) through a pipe into zstd, into `out`.
fn pack(roots: &[PathBuf], out: &Path) -> Result<u64, String> {
    let (reader, writer) = std::io::pipe().map_err(|e| format!("failed to make a pipe: {e}"))?;
    let file = File::create(out).map_err(|e| format!("failed to create {}: {e}", out.display()))?;
    std::thread::scope(|s| {
        let tar = s.spawn(move || -> std::io::Result<()> {
            let mut b = tar::Builder::new(writer);
            b.follow_symlinks(false);
            for (i, root) in roots.iter().enumerate() {
                match root.symlink_metadata() {
                    Ok(m) if m.is_dir() => b.append_dir_all(i.to_string(), root)?,
                    Ok(_) => b.append_path_with_name(root, i.to_string())?,
                    Err(_) => {}
                }
            }
            b.into_inner()?.flush()
        });
        let mut sink = Checked::new(file);
        ruzstd::encoding::compress(
            Checked::new(reader),
            &mut sink,
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let packed = tar
            .join()
            .map_err(|_| "the archiver thread failed".to_owned())?
            .map_err(|e| format!("failed to archive: {e}"));
        packed?;
        let file = sink
            .finish()
            .map_err(|e| format!("failed to write {}: {e}", out.display()))?;
        file.sync_all().map_err(|e| e.to_string())?;
        file.metadata().map(|m| m.len()).map_err(|e| e.to_string())
    })
}

/// Unpacks `archive` into `stage` (tar refuses entries that would leave it),
/// then moves each path into place, replacing what was there.
fn unpack(archive: &Path, stage: &Path, roots: &[PathBuf]) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(stage);
    std::fs::create_dir_all(stage).map_err(|e| e.to_string())?;
    let result = (|| {
        let file = File::open(archive).map_err(|e| e.to_string())?;
        let decoder = ruzstd::decoding::StreamingDecoder::new(BufReader::new(file))
            .map_err(|e| format!("not a zstd archive: {e}"))?;
        let mut ar = tar::Archive::new(decoder);
        ar.unpack(stage).map_err(|e| e.to_string())?;
        for (i, root) in roots.iter().enumerate() {
            let from = stage.join(i.to_string());
            if from.symlink_metadata().is_err() {
                continue;
            }
            match root.symlink_metadata() {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(root),
                Ok(_) => std::fs::remove_file(root),
                Err(_) => Ok(()),
            }
            .map_err(|e| format!("failed to replace {}: {e}", root.display()))?;
            if let Some(parent) = root.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::rename(&from, root)
                .or_else(|_| copy_tree(&from, root))
                .map_err(|e| format!("failed to put {} in place: {e}", root.display()))?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(stage);
    result
}

/// A copy for when a rename cannot cross file systems (`~/…` paths).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let m = from.symlink_metadata()?;
    if m.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else if m.file_type().is_symlink() {
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
        }
        #[cfg(not(unix))]
        {
            std::fs::copy(from, to).map(drop)
        }
    } else {
        std::fs::copy(from, to).map(drop)
    }
}

/// Keeps the first I/O error instead of returning it: ruzstd's encoder
/// unwraps its reader's and writer's results, so an error must not reach it.
struct Checked<T> {
    inner: T,
    error: Option<std::io::Error>,
}

impl<T> Checked<T> {
    fn new(inner: T) -> Self {
        Self { inner, error: None }
    }

    fn finish(self) -> std::io::Result<T> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.inner),
        }
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.error.is_some() {
            return Ok(0);
        }
        self.inner.read(buf).or_else(|e| {
            self.error = Some(e);
            Ok(0)
        })
    }
}

impl<W: Write> Write for Checked<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.error.is_none() {
            if let Err(e) = self.inner.write_all(buf) {
                self.error = Some(e);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_packs_and_unpacks_every_path_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let build = dir.path().join("build");
        std::fs::create_dir_all(build.join("target/debug/deps")).expect("mkdir");
        std::fs::write(build.join("target/debug/deps/lib.rlib"), vec![7u8; 300_000])
            .expect("write");
        std::fs::write(build.join("Cargo.lock"), b"lock").expect("write");
        let roots = roots(
            &build,
            &["target".into(), "Cargo.lock".into(), "missing".into()],
        )
        .expect("roots");
        let archive = dir.path().join("a.tar.zst");
        let size = pack(&roots, &archive).expect("pack");
        assert!(size > 0 && size < 300_000, "{size}");
        std::fs::remove_dir_all(&build).expect("rm");
        std::fs::create_dir_all(&build).expect("mkdir");
        unpack(&archive, &build.join(".stage"), &roots).expect("unpack");
        assert_eq!(
            std::fs::read(build.join("target/debug/deps/lib.rlib")).expect("read"),
            vec![7u8; 300_000]
        );
        assert_eq!(
            std::fs::read(build.join("Cargo.lock")).expect("read"),
            b"lock"
        );
        assert!(!build.join(".stage").exists());
    }

    #[test]
    fn a_corrupt_archive_is_an_error_and_leaves_the_paths_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let build = dir.path().join("build");
        std::fs::create_dir_all(build.join("target")).expect("mkdir");
        std::fs::write(build.join("target/keep"), b"mine").expect("write");
        let archive = dir.path().join("bad.tar.zst");
        std::fs::write(&archive, b"this is not zstd at all").expect("write");
        let roots = roots(&build, &["target".into()]).expect("roots");
        assert!(unpack(&archive, &build.join(".stage"), &roots).is_err());
        assert_eq!(
            std::fs::read(build.join("target/keep")).expect("read"),
            b"mine"
        );
    }

    #[test]
    fn keys_hash_files_of_the_build() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("Cargo.lock"), b"binary").expect("write");
        assert_eq!(
            render("cargo-{hash:Cargo.lock}-v1", dir.path()).expect("render"),
            "cargo-9a3a45d01531a20e-v1"
        );
        assert_eq!(
            render("x-{hash:nope}", dir.path()).expect("render"),
            "x-none"
        );
        assert!(render("x-{hash:../etc/passwd}", dir.path()).is_err());
        assert!(roots(dir.path(), &["/etc".into()]).is_err());
        assert!(roots(dir.path(), &["a/../../b".into()]).is_err());
    }
}
