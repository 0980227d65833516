//! Where the `burst` and `burst-worker` binaries under test are.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// Set to a directory holding `burst` and `burst-worker` to test those
/// (the benchmark points it at `target/release`).
pub const BIN_DIR_VAR: &str = "BURST_E2E_BIN_DIR";

/// The binaries one run drives.
#[derive(Debug, Clone)]
pub struct Bins {
    pub burst: PathBuf,
    pub worker: PathBuf,
}

impl Bins {
    /// Finds both binaries: `$BURST_E2E_BIN_DIR`, then the profile directory
    /// this test binary was built into, then `$CARGO_TARGET_DIR/debug`, then
    /// `<workspace>/target/debug`.
    pub fn locate() -> anyhow::Result<Bins> {
        if let Some(dir) = std::env::var_os(BIN_DIR_VAR) {
            let dir = PathBuf::from(dir);
            return match Bins::in_dir(&dir) {
                Some(bins) => Ok(bins),
                None => bail!(
                    "{BIN_DIR_VAR}={} holds no burst and burst-worker binaries",
                    dir.display()
                ),
            };
        }
        let candidates = candidate_dirs();
        for dir in &candidates {
            if let Some(bins) = Bins::in_dir(dir) {
                return Ok(bins);
            }
        }
        let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
        bail!(
            "burst and burst-worker binaries not found (looked in {}): \
             run `cargo build --workspace --bins` first (scripts/test does it)",
            looked.join(", ")
        )
    }

    fn in_dir(dir: &Path) -> Option<Bins> {
        let exe = |name: &str| dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        let (burst, worker) = (exe("burst"), exe("burst-worker"));
        (burst.is_file() && worker.is_file()).then_some(Bins { burst, worker })
    }
}

fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // Test binaries live in <target>/<profile>/deps, other bins in <target>/<profile>.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            if dir.file_name().is_some_and(|n| n == "deps") {
                dirs.extend(dir.parent().map(Path::to_path_buf));
            } else {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(target).join("debug"));
    }
    dirs.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("debug"),
    );
    dirs
}

/// The repository's root (examples live there).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
