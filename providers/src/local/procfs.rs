//! Finding and stopping local worker processes through `/proc` and signals.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use burst_common::launch_env;

use crate::{ListedInstance, ProviderError};

/// A process's initial environment, NUL-separated; `None` once it is gone.
fn environ(pid: i32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/environ")).ok()
}

/// One variable of an environment read by [`environ`].
fn var<'a>(environ: &'a [u8], name: &str) -> Option<&'a str> {
    environ
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Reads one variable from a process's initial environment.
fn environ_var(pid: i32, name: &str) -> Option<String> {
    var(&environ(pid)?, name).map(str::to_owned)
}

/// Every pid in `/proc`.
fn pids() -> Result<impl Iterator<Item = i32>, ProviderError> {
    let entries = std::fs::read_dir("/proc")
        .map_err(|e| ProviderError::transient(format!("failed to read /proc: {e}")))?;
    Ok(entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok()))
}

/// The burst worker id a live process was launched with, if any. Zombies
/// have an empty environ, so they read as gone.
pub fn worker_id_of(pid: i32) -> Option<String> {
    environ_var(pid, launch_env::WORKER_ID)
}

/// When the process started, in clock ticks since boot (field 22 of
/// `/proc/PID/stat`, counted after the parenthesised command name, which may
/// hold spaces).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_comm) = stat.rsplit_once(')')?;
    // After ")" come field 3 (state) onwards; start time is field 22.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// Worker processes launched by this master for this pool. Only the leader
/// of each process group counts: a worker's children inherit its environment.
/// Some lead groups of their own with that environment (a step's process
/// group; under wine every Windows child, and the wineserver the first
/// worker starts, runs in a session of its own), so per worker id only the
/// process that started first counts: the worker itself.
pub fn find_workers(master_id: &str, pool: &str) -> Result<Vec<ListedInstance>, ProviderError> {
    // worker id -> (start time, pid)
    let mut found: BTreeMap<String, (u64, i32)> = BTreeMap::new();
    // The group check first: a syscall, cheaper than reading a file.
    for pid in pids()?.filter(|&pid| is_group_leader(pid)) {
        let Some(env) = environ(pid) else {
            continue;
        };
        if var(&env, launch_env::MASTER_ID) != Some(master_id)
            || var(&env, launch_env::POOL) != Some(pool)
        {
            continue;
        }
        let (Some(worker_id), Some(started)) = (var(&env, launch_env::WORKER_ID), start_time(pid))
        else {
            continue;
        };
        let entry = found.entry(worker_id.to_owned()).or_insert((started, pid));
        if (started, pid) < *entry {
            *entry = (started, pid);
        }
    }
    Ok(found
        .into_iter()
        .map(|(worker_id, (_, pid))| ListedInstance {
            worker_id,
            provider_id: pid.to_string(),
        })
        .collect())
}

/// Leaders of the process groups of steps this master's workers ran, by
/// worker id, in one pass over `/proc`: the master gives every step
/// `BURST_BUILD_ID`, which a worker itself (and anything it starts on its
/// own, like a wineserver) does not carry. A step that left its worker's
/// tree (its worker was SIGKILLed, or it started a session of its own) is
/// still found: the environment is inherited.
pub fn step_groups_by_worker(master_id: &str) -> Result<HashMap<String, Vec<i32>>, ProviderError> {
    let mut found: HashMap<String, Vec<i32>> = HashMap::new();
    for pid in pids()?.filter(|&pid| is_group_leader(pid)) {
        let Some(env) = environ(pid) else {
            continue;
        };
        if var(&env, launch_env::MASTER_ID) != Some(master_id) || var(&env, STEP_BUILD_ID).is_none()
        {
            continue;
        }
        if let Some(worker_id) = var(&env, launch_env::WORKER_ID) {
            found.entry(worker_id.to_owned()).or_default().push(pid);
        }
    }
    Ok(found)
}

/// Set by the master in every step's environment.
const STEP_BUILD_ID: &str = "BURST_BUILD_ID";

#[cfg(unix)]
fn is_group_leader(pid: i32) -> bool {
    nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid)))
        .map(|g| g.as_raw() == pid)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_group_leader(_pid: i32) -> bool {
    true
}

/// SIGTERM the process group, then SIGKILL whatever is left after `grace`.
#[cfg(unix)]
pub async fn stop_group(pid: i32, grace: Duration) -> Result<(), ProviderError> {
    use nix::errno::Errno;
    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;

    let group = Pid::from_raw(pid);
    match killpg(group, Signal::SIGTERM) {
        Ok(()) => {}
        Err(Errno::ESRCH) => return Ok(()),
        Err(e) => {
            return Err(ProviderError::transient(format!(
                "failed to signal worker group {pid}: {e}"
            )))
        }
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        // Signal 0 probes the group; ESRCH means every member is gone.
        if killpg(group, None) == Err(Errno::ESRCH) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match killpg(group, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(ProviderError::transient(format!(
            "failed to kill worker group {pid}: {e}"
        ))),
    }
}

#[cfg(not(unix))]
pub async fn stop_group(pid: i32, _grace: Duration) -> Result<(), ProviderError> {
    Err(ProviderError::permanent(format!(
        "failed to stop local worker {pid}: the local provider supports Unix masters only"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_matches_whole_names_only() {
        let env = b"BURST_POOL_X=no\0BURST_POOL=local\0EMPTY=\0";
        assert_eq!(var(env, "BURST_POOL"), Some("local"));
        assert_eq!(var(env, "EMPTY"), Some(""));
        assert_eq!(var(env, "BURST"), None);
    }

    #[test]
    fn start_time_reads_field_22() {
        let me = i32::try_from(std::process::id()).expect("pid");
        let mine = start_time(me).expect("own start time");
        // pid 1 started before this test.
        assert!(start_time(1).is_none_or(|init| init <= mine));
        assert_eq!(start_time(-1), None);
    }
}
