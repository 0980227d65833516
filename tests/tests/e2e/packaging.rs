//! Installing and running burst the way operators do: `burst init`, shell
//! completions, man pages, the systemd units (checked by systemd-analyze),
//! and `Type=notify` readiness; the master image and the Debian packages.

mod debian;
mod master_image;

use std::path::Path;
use std::time::Duration;

use burst_e2e::bins::workspace_root;
use burst_e2e::master::MasterBuilder;
use burst_e2e::{cmd, Bins};

const CLI_TIMEOUT: Duration = Duration::from_secs(60);

async fn burst(bins: &Bins, dir: &Path, args: &[&str]) -> anyhow::Result<cmd::Output> {
    let mut c = tokio::process::Command::new(&bins.burst);
    c.args(args).current_dir(dir);
    cmd::run(c, CLI_TIMEOUT).await
}

#[tokio::test]
async fn init_writes_a_config_check_accepts_for_every_provider_and_never_overwrites() {
    let bins = Bins::locate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for provider in ["local", "docker", "ec2", "ssh"] {
        let target = dir.path().join(provider);
        let target_s = target.to_string_lossy().into_owned();
        let out = burst(
            &bins,
            dir.path(),
            &["init", "--provider", provider, &target_s],
        )
        .await
        .unwrap();
        assert!(out.success(), "{provider}: {out:?}");
        assert!(out.stdout.contains("wrote "), "{out:?}");
        assert!(out.stdout.contains("checking this machine"), "{out:?}");
        assert!(out.stdout.contains("burst master --config"), "{out:?}");
        let config = target.join("burst.toml");
        let config_s = config.to_string_lossy().into_owned();
        let check = burst(&bins, dir.path(), &["config", "check", &config_s])
            .await
            .unwrap();
        assert!(check.success(), "{provider}: {check:?}");

        // A second init keeps the (edited) file and says how to replace it.
        std::fs::write(&config, "# edited by hand\n").unwrap();
        let again = burst(
            &bins,
            dir.path(),
            &["init", "--provider", provider, &target_s],
        )
        .await
        .unwrap();
        assert_eq!(again.code, Some(2), "{again:?}");
        assert!(again.stderr.contains("already exists"), "{again:?}");
        assert!(again.stderr.contains("--force"), "{again:?}");
        assert_eq!(
            std::fs::read_to_string(&config).unwrap(),
            "# edited by hand\n"
        );
        let forced = burst(
            &bins,
            dir.path(),
            &["init", "--provider", provider, "--force", &target_s],
        )
        .await
        .unwrap();
        assert!(forced.success(), "{forced:?}");
        assert_ne!(
            std::fs::read_to_string(&config).unwrap(),
            "# edited by hand\n"
        );
    }
}

#[tokio::test]
async fn init_for_ssh_names_the_missing_key_and_how_to_make_it() {
    let bins = Bins::locate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = burst(&bins, dir.path(), &["init", "--provider", "ssh"])
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    // The example's key lives in /etc/burst, which this machine lacks.
    assert!(
        out.stdout.contains("todo  ssh key /etc/burst/id_ed25519"),
        "{out:?}"
    );
    assert!(out.stdout.contains("ssh-keygen -t ed25519"), "{out:?}");
    assert!(dir.path().join("burst.toml").is_file());
}

#[tokio::test]
async fn completions_generate_for_bash_zsh_and_fish() {
    let bins = Bins::locate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = burst(&bins, dir.path(), &["completions", shell])
            .await
            .unwrap();
        assert!(out.success(), "{shell}: {out:?}");
        for sub in ["submit", "logs", "init", "token"] {
            assert!(out.stdout.contains(sub), "{shell}: no {sub}");
        }
        if shell == "bash" {
            // The script parses in the shell it is for.
            let script = dir.path().join("burst.bash");
            std::fs::write(&script, &out.stdout).unwrap();
            let mut c = tokio::process::Command::new("bash");
            c.arg("-n").arg(&script);
            let syntax = cmd::run(c, CLI_TIMEOUT).await.unwrap();
            assert!(syntax.success(), "{syntax:?}");
        }
    }
    let bad = burst(&bins, dir.path(), &["completions", "tcsh"])
        .await
        .unwrap();
    assert_eq!(bad.code, Some(2), "{bad:?}");
}

#[tokio::test]
async fn man_pages_are_written_for_every_subcommand() {
    let bins = Bins::locate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = burst(&bins, dir.path(), &["manpages", "man1"])
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    for page in [
        "burst.1",
        "burst-master.1",
        "burst-submit.1",
        "burst-init.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join("man1").join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
}

/// `systemd-analyze verify` against a throwaway root holding the units, a
/// stand-in for each binary they start, and the system's own units.
#[tokio::test]
async fn systemd_units_pass_systemd_analyze_verify() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    assert!(
        analyze.is_file(),
        "systemd-analyze is missing: run scripts/setup/10-apt.sh (package systemd)"
    );
    let root = tempfile::tempdir().unwrap();
    let units_src = workspace_root().join("packaging/systemd");
    let units = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    copy_dir(
        Path::new("/lib/systemd/system"),
        &root.path().join("usr/lib/systemd/system"),
    )
    .unwrap();
    // Every program an Exec*= line starts.
    for (bin, dir) in [
        ("burst", "usr/bin"),
        ("burst-worker", "usr/local/bin"),
        ("sh", "bin"),
        ("kill", "bin"),
    ] {
        let dir = root.path().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stand_in = dir.join(bin);
        std::fs::write(&stand_in, "#!/bin/sh\n").unwrap();
        set_executable(&stand_in).unwrap();
    }
    for unit in ["burst-master.service", "burst-worker.service"] {
        std::fs::copy(units_src.join(unit), units.join(unit)).unwrap();
        let mut c = tokio::process::Command::new(analyze);
        // --man=no: the pages in Documentation= are not installed here
        // (`man_pages_are_written_for_every_subcommand` checks them).
        c.arg("verify")
            .arg("--man=no")
            .arg(format!("--root={}", root.path().display()))
            .arg(unit);
        let out = cmd::run(c, CLI_TIMEOUT).await.unwrap();
        assert!(out.success(), "{unit}: {out:?}");
        // Unknown keys and bad values are warnings with exit 0: none allowed.
        assert_eq!(out.stderr.trim(), "", "{unit}: {out:?}");
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn set_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// Under systemd (`NOTIFY_SOCKET` set) the master says READY=1 once it
/// listens, and STOPPING=1 when a SIGTERM starts its shutdown.
#[tokio::test]
async fn the_master_notifies_systemd_when_ready_and_when_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
    let quickstart = workspace_root().join("examples/quickstart.toml");
    let mut master = MasterBuilder::config_file(quickstart)
        .env("NOTIFY_SOCKET", &path.to_string_lossy())
        .start()
        .await
        .unwrap();
    let ready = receive(&socket).await.unwrap();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(ready.contains("STATUS=API http://127.0.0.1:"), "{ready:?}");
    // The master answers by the time it says it is ready.
    let health = reqwest::get(format!("{}/healthz", master.url()))
        .await
        .unwrap();
    assert!(health.status().is_success());

    let stop = tokio::spawn(async move {
        let status = master.sigterm_and_wait(Duration::from_secs(60)).await;
        (master, status)
    });
    let stopping = receive(&socket).await.unwrap();
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let (_master, status) = stop.await.unwrap();
    assert!(status.unwrap().success());
}

async fn receive(socket: &tokio::net::UnixDatagram) -> anyhow::Result<String> {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(60), socket.recv(&mut buf))
        .await
        .map_err(|_| anyhow::anyhow!("no datagram on NOTIFY_SOCKET within 60 s"))??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
