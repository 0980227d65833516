//! Isolation on a local worker: owner-only work and build dirs, a build's
//! dir removed when it ends (unless the pool keeps workspaces), and steps
//! under a configured user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use burst_e2e::{wait, Master, MasterBuilder};
use burst_master::model::{Build, BuildState};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Pools `local` and `keep` (`keep_workspace = true`), one reused worker
/// each; builder `ws` on `local` and `ws-keep` on `keep` write a file and
/// list the work dir (their build dir's parent).
const POOLS: &str = r#"
[pools.keep]
provider = "local"
labels = ["keep"]
max_workers = 1
keep_workspace = true

[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1

[[builders]]
name = "ws"
labels = ["linux"]

[[builders.steps]]
name = "write"
run = 'echo data > file; echo "modes $(stat -c %a . .. | tr "\n" " ")"; echo "siblings: $(ls .. | tr "\n" " ")"'

[[builders]]
name = "ws-keep"
labels = ["keep"]

[[builders.steps]]
name = "write"
run = 'echo data > file'
"#;

async fn succeeded(master: &Master, builder: &str) -> anyhow::Result<Build> {
    let id = master.submit(builder, &[]).await?[0];
    let build = master.wait_build(id, TIMEOUT).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    Ok(build)
}

fn build_dir(master: &Master, build: &Build) -> PathBuf {
    master
        .state_dir()
        .join("workers")
        .join(&build.attempts[0].worker_id)
        .join(format!("build-{}", build.id))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn build_dirs_are_owner_only_and_removed_when_the_build_ends_unless_kept(
) -> anyhow::Result<()> {
    let master = MasterBuilder::new().section(POOLS).start().await?;

    let first = succeeded(&master, "ws").await?;
    let log = master.log_text(first.id).await?;
    // The build's dir and the worker's work dir, as the step saw them.
    assert!(log.contains("modes 700 700"), "{log}");
    let dir = build_dir(&master, &first);
    wait::until_true("build 1's dir to be removed", TIMEOUT, || !dir.exists()).await?;

    // The same worker again: nothing of build 1 is left for build 2's step.
    let second = succeeded(&master, "ws").await?;
    assert_eq!(second.attempts[0].worker_id, first.attempts[0].worker_id);
    let log = master.log_text(second.id).await?;
    assert!(
        log.contains(&format!("siblings: build-{}", second.id)),
        "{log}"
    );
    assert!(!log.contains(&format!("build-{}", first.id)), "{log}");

    // A pool that keeps workspaces keeps them, owner-only.
    let kept = succeeded(&master, "ws-keep").await?;
    let dir = build_dir(&master, &kept);
    let file = dir.join("file");
    // Asked after another build on the same worker: by then a BuildEnded
    // for the kept one would long have been handled.
    let again = succeeded(&master, "ws-keep").await?;
    assert_eq!(again.attempts[0].worker_id, kept.attempts[0].worker_id);
    assert_eq!(std::fs::read_to_string(&file)?, "data\n");
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    assert_eq!(mode(dir.parent().expect("work dir")), 0o700);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn steps_run_as_the_configured_user_and_cannot_read_the_master_or_worker(
) -> anyhow::Result<()> {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root (CI runs as root): `user` makes the master start steps as another user"
    );
    let nobody = nix::unistd::User::from_name("nobody")?
        .expect("the nobody user (every Debian image has it)");
    let config = r#"
[pools.local]
provider = "local"
labels = ["linux"]

[pools.local.local]
user = "nobody"

[[builders]]
name = "who"
labels = ["linux"]

[builders.params]
STATE = { regex = "/[A-Za-z0-9/._-]+" }

[[builders.steps]]
name = "who"
run = 'echo "uid $(id -u)"; ls "$STATE" >/dev/null 2>&1 && echo state-readable || echo state-closed; cat /proc/$PPID/environ >/dev/null 2>&1 && echo worker-readable || echo worker-closed; echo data > file && echo wrote'
"#;
    let master = MasterBuilder::new().section(config).start().await?;
    // Others may traverse the state dir's parent, so only the state dir's
    // own mode keeps the step out.
    std::fs::set_permissions(master.dir(), std::fs::Permissions::from_mode(0o755))?;
    let state = master.state_dir().display().to_string();
    let id = master.submit("who", &[("STATE", &state)]).await?[0];
    let build = master.wait_build(id, TIMEOUT).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    let log = master.log_text(build.id).await?;
    assert!(log.contains(&format!("uid {}", nobody.uid)), "{log}");
    assert!(log.contains("state-closed"), "{log}");
    assert!(log.contains("worker-closed"), "{log}");
    assert!(log.contains("wrote"), "{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_master_that_is_not_root_refuses_a_step_user_at_start() -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root (CI runs as root): it starts the master as nobody"
    );
    let nobody = nix::unistd::User::from_name("nobody")?
        .expect("the nobody user (every Debian image has it)");
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
    let config = dir.path().join("burst.toml");
    std::fs::write(
        &config,
        "[pools.local]\nprovider = \"local\"\nlabels = [\"linux\"]\n\n[pools.local.local]\nuser = \"root\"\n",
    )?;
    let burst = burst_e2e::Bins::locate()?.burst;
    let mut cmd = std::process::Command::new(&burst);
    cmd.args(["master", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env("BURST__MASTER__STATE_DIR", dir.path().join("state"))
        .env("BURST__MASTER__HTTP_LISTEN", "127.0.0.1:0")
        .env("BURST__MASTER__GRPC_LISTEN", "127.0.0.1:0")
        .uid(nobody.uid.as_raw())
        .gid(nobody.gid.as_raw());
    let out = tokio::time::timeout(TIMEOUT, tokio::process::Command::from(cmd).output())
        .await
        .map_err(|_| {
            anyhow::anyhow!("the master kept running with a step user it cannot switch to")
        })??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("only root")
            && stderr.contains("start the master as root or remove `user`"),
        "{stderr}"
    );
    Ok(())
}
