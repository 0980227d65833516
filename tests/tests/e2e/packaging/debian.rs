//! The Debian packages `burst` and `burst-worker`
//! (scripts/setup/build-packages.sh; what they hold is listed in
//! docs/packages.md): file lists, control fields, conffiles and maintainer
//! scripts from `dpkg-deb`, the packaged files themselves, and lintian.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use burst_e2e::bins::workspace_root;
use burst_e2e::cmd;

const TIMEOUT: Duration = Duration::from_secs(120);

/// `$CARGO_TARGET_DIR/debian`: this test binary lives in
/// `<target>/<profile>/deps`.
fn debs_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .map(|target| target.join("debian"))
        .expect("a target dir above the test binary")
}

/// The one `NAME_*.deb` there, or a failure naming the setup step.
fn deb(name: &str) -> PathBuf {
    let dir = debs_dir();
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let file = p.file_name().unwrap_or_default().to_string_lossy();
                    file.starts_with(&format!("{name}_")) && file.ends_with("_amd64.deb")
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        found.len() == 1,
        "expected one {name}_*_amd64.deb in {} (found {found:?}): run scripts/setup/build-packages.sh",
        dir.display()
    );
    found.into_iter().next().unwrap_or_default()
}

async fn run(program: &str, args: &[&str]) -> cmd::Output {
    let mut c = tokio::process::Command::new(program);
    c.args(args);
    let out = cmd::run(c, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("failed to run {program} {args:?}: {e:#}"));
    assert!(out.success(), "{program} {args:?}: {out:?}");
    out
}

/// Every path the package installs, without the leading `.`.
async fn contents(deb: &Path) -> BTreeSet<String> {
    let out = run("dpkg-deb", &["--contents", &deb.to_string_lossy()]).await;
    out.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').trim_end_matches('/').to_owned())
        .collect()
}

/// The control area (`control`, `conffiles`, maintainer scripts) and the
/// files, unpacked into `dir`.
async fn unpack(deb: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let (control, root) = (dir.join("DEBIAN"), dir.join("root"));
    let d = deb.to_string_lossy();
    run("dpkg-deb", &["--control", &d, &control.to_string_lossy()]).await;
    run("dpkg-deb", &["--extract", &d, &root.to_string_lossy()]).await;
    (control, root)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn the_burst_package_holds_the_master_its_unit_config_man_pages_and_completions() {
    let deb = deb("burst");
    let files = contents(&deb).await;
    for path in [
        "/usr/bin/burst",
        "/etc/burst/burst.toml",
        "/usr/lib/systemd/system/burst-master.service",
        "/usr/share/man/man1/burst.1.gz",
        "/usr/share/man/man1/burst-master.1.gz",
        "/usr/share/man/man1/burst-submit.1.gz",
        "/usr/share/man/man1/burst-init.1.gz",
        "/usr/share/bash-completion/completions/burst",
        "/usr/share/zsh/vendor-completions/_burst",
        "/usr/share/fish/vendor_completions.d/burst.fish",
        "/usr/share/doc/burst/copyright",
        "/usr/share/doc/burst/README.md",
    ] {
        assert!(files.contains(path), "{path} not in {files:#?}");
    }
    // The state dir is the unit's StateDirectory (DynamicUser): systemd
    // makes /var/lib/burst at first start, so the package must not own it.
    assert!(
        !files.iter().any(|f| f.starts_with("/var/lib")),
        "{files:#?}"
    );

    let info = run("dpkg-deb", &["--info", &deb.to_string_lossy()]).await;
    for field in [
        "Package: burst\n",
        "Depends: burst-worker\n",
        "Architecture: amd64\n",
    ] {
        assert!(info.stdout.contains(field), "{field:?} in {info:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let (control, root) = unpack(&deb, dir.path()).await;
    assert_eq!(
        read(&control.join("conffiles")).trim(),
        "/etc/burst/burst.toml"
    );
    // The unit is installed and systemd told, but not enabled or started:
    // the starter config wants editing first.
    let postinst = read(&control.join("postinst"));
    assert!(postinst.contains("daemon-reload"), "{postinst}");
    assert!(
        postinst.contains("deb-systemd-helper update-state burst-master.service"),
        "{postinst}"
    );
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");
    assert!(!postinst.contains("#DEBHELPER#"), "{postinst}");
    let prerm = read(&control.join("prerm"));
    assert!(
        prerm.contains("deb-systemd-invoke stop burst-master.service"),
        "{prerm}"
    );
    let postrm = read(&control.join("postrm"));
    assert!(
        postrm.contains("deb-systemd-helper purge burst-master.service"),
        "{postrm}"
    );

    // The files are the repository's, and the binary and config work.
    let repo = workspace_root();
    assert_eq!(
        read(&root.join("usr/lib/systemd/system/burst-master.service")),
        read(&repo.join("packaging/systemd/burst-master.service"))
    );
    assert_eq!(
        read(&root.join("etc/burst/burst.toml")),
        read(&repo.join("examples/quickstart.toml"))
    );
    let burst = root.join("usr/bin/burst").to_string_lossy().into_owned();
    let config = root
        .join("etc/burst/burst.toml")
        .to_string_lossy()
        .into_owned();
    run(&burst, &["config", "check", &config]).await;
    let version = run(&burst, &["--version"]).await;
    assert!(version.stdout.starts_with("burst "), "{version:?}");
    let bash = read(&root.join("usr/share/bash-completion/completions/burst"));
    assert!(
        bash.contains("submit") && bash.contains("healthcheck"),
        "bash completion"
    );
}

#[tokio::test]
async fn the_burst_worker_package_holds_the_worker_and_its_unit_pointed_at_usr_bin() {
    let deb = deb("burst-worker");
    let files = contents(&deb).await;
    for path in [
        "/usr/bin/burst-worker",
        "/usr/lib/systemd/system/burst-worker.service",
        "/usr/lib/systemd/system/burst-worker.service.d/package.conf",
        "/usr/share/doc/burst-worker/copyright",
    ] {
        assert!(files.contains(path), "{path} not in {files:#?}");
    }
    let info = run("dpkg-deb", &["--info", &deb.to_string_lossy()]).await;
    assert!(info.stdout.contains("Package: burst-worker\n"), "{info:?}");
    let dir = tempfile::tempdir().unwrap();
    let (control, root) = unpack(&deb, dir.path()).await;
    let postinst = read(&control.join("postinst"));
    assert!(postinst.contains("daemon-reload"), "{postinst}");
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");
    let worker = root
        .join("usr/bin/burst-worker")
        .to_string_lossy()
        .into_owned();
    let version = run(&worker, &["--version"]).await;
    assert!(version.stdout.starts_with("burst-worker "), "{version:?}");

    // With the drop-in, the packaged unit starts the packaged binary:
    // systemd-analyze checks the unit in the unpacked tree (plus the
    // system's units, and a stand-in `sh` for ExecStopPost).
    let analyze = Path::new("/usr/bin/systemd-analyze");
    assert!(
        analyze.is_file(),
        "systemd-analyze is missing: run scripts/setup/10-apt.sh (package systemd)"
    );
    super::copy_dir(
        Path::new("/lib/systemd/system"),
        &root.join("usr/lib/systemd/system"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/sh", root.join("bin/sh")).unwrap();
    let mut c = tokio::process::Command::new(analyze);
    c.arg("verify")
        .arg("--man=no")
        .arg(format!("--root={}", root.display()))
        .arg("burst-worker.service");
    let out = cmd::run(c, TIMEOUT).await.unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stderr.trim(), "", "{out:?}");
    // `verify` found the ExecStart binary in the tree: only
    // /usr/bin/burst-worker is there, so the drop-in replaced the unit's own
    // (`systemctl cat` refuses --root). It resets the list, then sets it.
    let drop_in = read(&root.join("usr/lib/systemd/system/burst-worker.service.d/package.conf"));
    assert!(
        drop_in.contains("ExecStart=\nExecStart=/usr/bin/burst-worker\n"),
        "{drop_in}"
    );
    assert!(!root.join("usr/local/bin/burst-worker").exists());
}

/// lintian (Debian's package checker, from 10-apt.sh) finds no error and
/// no warning; the overrides each package carries are for its static
/// linking, on purpose, and say why (packaging/debian/*/lintian-overrides).
#[tokio::test]
async fn the_debian_packages_pass_lintian() {
    let lintian = Path::new("/usr/bin/lintian");
    assert!(
        lintian.is_file(),
        "lintian is missing: run scripts/setup/10-apt.sh (package lintian)"
    );
    for name in ["burst", "burst-worker"] {
        let deb = deb(name);
        let mut c = tokio::process::Command::new(lintian);
        c.args(["--fail-on", "error,warning", "--no-tag-display-limit"])
            .arg(&deb);
        let out = cmd::run(c, Duration::from_secs(300)).await.unwrap();
        assert!(out.success(), "{name}: {out:?}");
    }
}
