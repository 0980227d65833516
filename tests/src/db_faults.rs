//! Faults of a master's database, made for real: the files made immutable
//! (`chattr +i`, which stops even root, and even writes to files already
//! open, on ext4 and xfs), or a stopped master's database damaged.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;

/// The database and its WAL companions in a state dir.
pub fn db_files(state_dir: &Path) -> [PathBuf; 3] {
    ["burst.db", "burst.db-wal", "burst.db-shm"].map(|f| state_dir.join(f))
}

fn chattr(flag: &str, path: &Path) -> anyhow::Result<()> {
    let out = Command::new("chattr")
        .arg(flag)
        .arg(path)
        .output()
        .context("failed to run chattr (scripts/setup installs e2fsprogs)")?;
    if !out.status.success() {
        bail!(
            "chattr {flag} {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Files made immutable until dropped. Fails (naming the setup step) where
/// the filesystem would let writes to open files through.
pub struct Immutable {
    paths: Vec<PathBuf>,
}

impl Immutable {
    pub fn new(paths: &[PathBuf]) -> anyhow::Result<Immutable> {
        let dir = paths
            .first()
            .and_then(|p| p.parent())
            .context("no files to make immutable")?;
        check_immutable_stops_writes(dir)?;
        let mut guard = Immutable { paths: Vec::new() };
        for path in paths.iter().filter(|p| p.exists()) {
            chattr("+i", path)?;
            guard.paths.push(path.clone());
        }
        Ok(guard)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = chattr("-i", path);
        }
    }
}

/// `chattr +i` must stop a write through a descriptor opened before it, as
/// the master's database connections are.
fn check_immutable_stops_writes(dir: &Path) -> anyhow::Result<()> {
    let probe = dir.join("immutable-probe");
    let mut file = std::fs::File::create(&probe).context("failed to create the probe file")?;
    chattr("+i", &probe)?;
    let wrote = file.write_all(b"x").and_then(|()| file.sync_all()).is_ok();
    chattr("-i", &probe)?;
    let _ = std::fs::remove_file(&probe);
    if wrote {
        bail!(
            "{} is on a filesystem where chattr +i does not stop writes to open files \
             (tmpfs?); run the e2e tests with TMPDIR on ext4 or xfs",
            dir.display()
        );
    }
    Ok(())
}

/// One connection (a pool's second one would hold the file open while the
/// journal mode changes).
async fn raw_connection(state_dir: &Path) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::new()
        .filename(state_dir.join("burst.db"))
        .busy_timeout(Duration::from_secs(10));
    SqliteConnection::connect_with(&options)
        .await
        .context("failed to open the stopped master's database")
}

/// Folds the WAL of a SIGKILLed master into the database file and removes
/// it, so that damage to the file is all there is.
pub async fn checkpoint(state_dir: &Path) -> anyhow::Result<()> {
    let mut conn = raw_connection(state_dir).await?;
    // Leaving WAL mode checkpoints the WAL into the file and removes it.
    sqlx::query("PRAGMA journal_mode = DELETE")
        .execute(&mut conn)
        .await
        .context("failed to leave WAL mode")?;
    conn.close().await?;
    for path in &db_files(state_dir)[1..] {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Cuts the database file to a third, as a full disk or a bad copy would.
pub async fn truncate(state_dir: &Path) -> anyhow::Result<PathBuf> {
    checkpoint(state_dir).await?;
    let path = state_dir.join("burst.db");
    let len = std::fs::metadata(&path)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)?
        .set_len(len / 3)?;
    Ok(path)
}

/// Replaces the database with bytes that are no database.
pub fn garbage(state_dir: &Path) -> anyhow::Result<PathBuf> {
    for path in db_files(state_dir) {
        let _ = std::fs::remove_file(path);
    }
    let path = state_dir.join("burst.db");
    std::fs::write(&path, vec![0x5a; 64 * 1024])?;
    Ok(path)
}

/// Records a migration this burst does not know, as a newer burst would.
pub async fn from_the_future(state_dir: &Path) -> anyhow::Result<PathBuf> {
    let mut conn = raw_connection(state_dir).await?;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (999, 'from a newer burst', 1, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .context("failed to record a future migration")?;
    conn.close().await?;
    Ok(state_dir.join("burst.db"))
}

/// Deletes the database and its WAL, as an operator cleaning up would.
pub fn delete(state_dir: &Path) -> anyhow::Result<()> {
    for path in db_files(state_dir) {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("failed to delete {}", path.display()))
            }
        }
    }
    Ok(())
}
