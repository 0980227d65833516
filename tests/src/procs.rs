//! Finding processes by the environment burst gave them, from `/proc`:
//! workers (and the steps they run) carry `BURST_MASTER_ID` and
//! `BURST_WORKER_ID`.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

// The launch-environment names the tests look for, in one place.
/// Every worker and step carries its master's id.
pub const MASTER_ID_VAR: &str = "BURST_MASTER_ID";
/// And its worker's id.
pub const WORKER_ID_VAR: &str = "BURST_WORKER_ID";

/// A live process that carries a burst master id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstProcess {
    pub pid: i32,
    pub worker_id: Option<String>,
    /// The command line, spaces between arguments.
    pub cmdline: String,
}

impl BurstProcess {
    /// The worker agent itself, not a step it runs.
    pub fn is_worker_agent(&self) -> bool {
        self.cmdline
            .split(' ')
            .next()
            .is_some_and(|exe| exe.ends_with("burst-worker"))
    }

    /// A process of the wine prefix itself (the wineserver, services.exe
    /// and the like): the first wine worker starts them, so they carry its
    /// environment, but every wine test of the prefix shares them.
    pub fn is_shared_wine_process(&self) -> bool {
        const PREFIX_PROCESSES: &[&str] = &[
            "services.exe",
            "explorer.exe",
            "winedevice.exe",
            "plugplay.exe",
            "svchost.exe",
            "rpcss.exe",
        ];
        let program = self
            .cmdline
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        // `/usr/lib/wine/wineserver64` on Debian.
        program
            .rsplit('/')
            .next()
            .is_some_and(|p| p.starts_with("wineserver"))
            || PREFIX_PROCESSES
                .iter()
                .any(|exe| program.ends_with(&format!("\\system32\\{exe}")))
    }
}

/// A process's initial environment; `None` when it is gone or unreadable.
pub fn environ(pid: i32) -> Option<BTreeMap<String, String>> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            })
            .collect(),
    )
}

/// Running (not zombie) processes whose environment has
/// `BURST_MASTER_ID=<master_id>`.
pub fn with_master_id(master_id: &str) -> Vec<BurstProcess> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me || !is_running(pid) {
            continue;
        }
        let Some(env) = environ(pid) else { continue };
        if env.get(MASTER_ID_VAR).map(String::as_str) != Some(master_id) {
            continue;
        }
        found.push(BurstProcess {
            pid,
            worker_id: env.get(WORKER_ID_VAR).cloned(),
            cmdline: cmdline(pid),
        });
    }
    found.sort_by_key(|p| p.pid);
    found
}

/// Whether `pid` exists and is not a zombie (a killed process whose parent
/// has not reaped it yet is gone for our purposes).
pub fn is_running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => match stat.rsplit_once(')') {
            Some((_, rest)) => !matches!(rest.trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Resident set size in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time the process used (user + system), in clock ticks (fields 14
/// and 15 of `/proc/<pid>/stat`, after the parenthesised command name).
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_comm) = stat.rsplit_once(')')?;
    let mut fields = after_comm.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Clock ticks per second of [`cpu_ticks`] (`sysconf(_SC_CLK_TCK)`, 100 on
/// Linux).
pub const TICKS_PER_SEC: u64 = 100;

pub fn sigkill(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// SIGKILLs every process carrying `master_id` (but the wine prefix's own)
/// until none is left (steps may fork while we look); bounded.
pub fn kill_all_with_master_id(master_id: &str) {
    for _ in 0..20 {
        let procs: Vec<_> = with_master_id(master_id)
            .into_iter()
            .filter(|p| !p.is_shared_wine_process())
            .collect();
        if procs.is_empty() {
            return;
        }
        for p in procs {
            sigkill(p.pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Live processes whose command line contains every one of `needles`,
/// with their command lines.
pub fn matching(needles: &[&str]) -> Vec<(i32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if pid == me || !is_running(pid) {
            continue;
        }
        let line = cmdline(pid);
        if needles.iter().all(|n| line.contains(n)) {
            found.push((pid, line));
        }
    }
    found
}

/// SIGKILLs what [`matching`] finds; a test's guard, so that what a failed
/// run started cannot outlive it and meet a later run.
pub fn kill_matching(needles: &[&str]) {
    for _ in 0..20 {
        let found = matching(needles);
        if found.is_empty() {
            return;
        }
        for (pid, _) in found {
            sigkill(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a step to write its pid (a number and a newline) to `path`.
pub async fn wait_pid_file(path: &std::path::Path, timeout: Duration) -> anyhow::Result<i32> {
    crate::wait::until(&format!("a pid in {}", path.display()), timeout, || {
        let pid = std::fs::read_to_string(path)
            .ok()
            .filter(|s| s.ends_with('\n'))
            .and_then(|s| s.trim().parse::<i32>().ok());
        async move { Ok(pid) }
    })
    .await
}

/// Waits until `pid` no longer runs.
pub async fn wait_gone(pid: i32, timeout: Duration) -> anyhow::Result<()> {
    crate::wait::until_true(
        &format!("process {pid} ({}) to be gone", cmdline(pid)),
        timeout,
        || !is_running(pid),
    )
    .await
}

/// Peak resident set size in KiB (`VmHWM`): the most the process ever held.
pub fn peak_rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
