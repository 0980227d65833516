//! The wine fixture: where the cross-built worker and its test helpers are,
//! pool sections of wine workers for the one [`MasterBuilder`], and the
//! processes of the tests in `tests/tests/e2e/windows.rs`.
//!
//! Everything here comes from `scripts/setup/build-windows-worker.sh` (the
//! Windows side) and `cargo build --workspace --bins` (the master and the
//! Linux worker); a missing piece fails the test with the command to run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::{procs, toml_text, Bins, MasterBuilder};

const BUILD_SCRIPT: &str = "scripts/setup/build-windows-worker.sh";

/// The binaries and the wine prefix the Windows tests use.
#[derive(Debug, Clone)]
pub struct WineSetup {
    /// `burst` (the master and CLI) and the Linux `burst-worker`.
    pub bins: Bins,
    /// `burst-worker.exe`.
    pub worker_exe: PathBuf,
    /// `echoargs.exe`: prints each argument as `<arg>` on its own line.
    pub echoargs: PathBuf,
    pub prefix: PathBuf,
}

impl WineSetup {
    /// Finds everything, or fails naming the step that makes what is missing.
    pub fn require() -> Result<Self> {
        let target = target_dir()?;
        let win = target.join("x86_64-pc-windows-gnu").join("debug");
        let setup = Self {
            bins: Bins::locate()?,
            worker_exe: win.join("burst-worker.exe"),
            echoargs: win.join("echoargs.exe"),
            prefix: target.join("wineprefix"),
        };
        if find_on_path("wine").is_none() {
            bail!("wine is not installed: run scripts/setup/10-apt.sh, then {BUILD_SCRIPT}");
        }
        let shim = win.join("bcryptprimitives.dll");
        for file in [&setup.worker_exe, &shim, &setup.echoargs] {
            if !file.is_file() {
                bail!("{} missing: run {BUILD_SCRIPT}", file.display());
            }
        }
        if !setup.prefix.join("system.reg").is_file() {
            bail!(
                "wine prefix {} is not initialised: run {BUILD_SCRIPT}",
                setup.prefix.display()
            );
        }
        Ok(setup)
    }

    /// A `[pools.NAME]` section for a local pool of wine workers.
    pub fn windows_pool(&self, name: &str, labels: &[&str]) -> String {
        format!(
            "[pools.{name}]\nprovider = \"local\"\nlabels = {labels}\nmax_workers = 2\n\
             idle_timeout = \"60s\"\n# wine is slow to start.\nstart_timeout = \"60s\"\n\
             backoff_min = \"1s\"\nbackoff_max = \"2s\"\n\n\
             [pools.{name}.local]\ncommand = [\"wine\", {exe}]\n\
             env = {{ WINEPREFIX = {prefix}, WINEDEBUG = \"-all\", BURST_TEST_CASE = \"outer\" }}\n\n",
            labels = toml_text::list(labels),
            exe = toml_text::quote(&self.worker_exe.to_string_lossy()),
            prefix = toml_text::quote(&self.prefix.to_string_lossy()),
        )
    }

    /// A `[pools.NAME]` section for a local pool of Linux workers.
    pub fn linux_pool(&self, name: &str, labels: &[&str]) -> String {
        format!(
            "[pools.{name}]\nprovider = \"local\"\nlabels = {labels}\nmax_workers = 2\n\
             idle_timeout = \"60s\"\nstart_timeout = \"30s\"\n\n\
             [pools.{name}.local]\ncommand = [{exe}]\n\n",
            labels = toml_text::list(labels),
            exe = toml_text::quote(&self.bins.worker.to_string_lossy()),
        )
    }
}

/// `$CARGO_TARGET_DIR`, found from this test binary
/// (`<target>/debug/deps/e2e-…`).
fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to locate the test binary")?;
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("failed to find the target dir above {}", exe.display()))
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The path wine shows a Unix path under (its `Z:` drive).
pub fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.to_string_lossy().replace('/', "\\"))
}

impl WineSetup {
    /// A master for wine pools: add [`WineSetup::windows_pool`] and
    /// builders with [`MasterBuilder::section`]. Dropping it stops the
    /// master gracefully, so it stops its workers and they their jobs.
    pub fn master(&self) -> MasterBuilder {
        MasterBuilder::new()
            .master_toml("shutdown_grace = \"2s\"\nheartbeat_interval = \"5s\"")
            .bins(self.bins.clone())
            .stop_gracefully(Duration::from_secs(30))
    }
}

/// Pids of the `burst-worker.exe` processes launched by master `master_id`
/// (found by the environment the local provider gave them).
pub fn worker_pids(master_id: &str) -> Vec<u32> {
    let want = format!("BURST_MASTER_ID={master_id}");
    procs::matching(&["burst-worker.exe"])
        .into_iter()
        .filter_map(|(pid, _)| u32::try_from(pid).ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == want.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}
