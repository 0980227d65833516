//! A step that prints far more than the master reads must not grow the
//! worker's memory: the step blocks on its pipe instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use burst_proto::worker_message;

use crate::support::{self, FakeMaster};

const TOTAL: u64 = 50_000_000;
/// Bounded, the worker peaks near 24 MB (512 KiB messages, a 4-message
/// outbox, the 4 MiB in-memory journal); buffering everything shows ~58 MB.
const RSS_LIMIT_KB: u64 = 32 * 1024;

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_master_bounds_worker_memory() {
    let mut master = FakeMaster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = support::spawn_binary(&master.url, dir.path(), &[]);
    let pid = child.id().expect("pid");
    let mut conn = master.accept().await;
    conn.welcome("resume-1").await;

    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let peak = peak.clone();
        async move {
            while let Some(kb) = rss_kb(pid) {
                peak.fetch_max(kb, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });

    conn.run(support::script(
        "big",
        &format!("head -c {TOTAL} /dev/zero"),
    ))
    .await;

    // Read nothing for a while, then slowly, then at full speed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut received = 0u64;
    let mut messages = 0u64;
    let finished = loop {
        match conn.recv_no_heartbeat().await {
            worker_message::Msg::Output(o) => {
                assert_eq!(o.offset, received);
                assert!(o.data.iter().all(|&b| b == 0));
                received += o.data.len() as u64;
                messages += 1;
                if messages < 200 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            worker_message::Msg::Finished(f) => break f,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(finished.exit_code, Some(0), "{finished:?}");
    assert_eq!(received, TOTAL);

    let peak_kb = peak.load(Ordering::Relaxed);
    eprintln!("worker RSS peak: {peak_kb} kB");
    assert!(peak_kb > 0, "failed to sample the worker's RSS");
    assert!(
        peak_kb < RSS_LIMIT_KB,
        "worker RSS peaked at {peak_kb} kB (limit {RSS_LIMIT_KB} kB)"
    );

    conn.shutdown(false).await;
    assert_eq!(support::exit_code(&mut child, dir.path()).await, 0);
    sampler.abort();
}
