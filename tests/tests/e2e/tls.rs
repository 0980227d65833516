//! TLS on both endpoints: a self-signed master runs builds over https for
//! the CLI and its local workers, keeps its CA (and so the workers' pin)
//! across restarts, and workers that would talk clear text or meet the
//! wrong certificate never reach it. Off loopback, TLS is required.

use std::time::Duration;

use burst_e2e::{cmd, wait, Master, MasterBuilder};

const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1

[[builders]]
name = "hello"
labels = ["linux"]

[[builders.steps]]
name = "greet"
run = "echo hello over tls"
"#;

/// A pool whose one "worker" never dials in: a real worker id stays
/// launching, for hand-started workers to try to claim.
const SLEEPING: &str = burst_e2e::fake_worker::SLEEPING_POOL;

/// A worker started by hand, with `vars` on top of a bare launch
/// environment.
async fn worker(
    master: &Master,
    worker_id: &str,
    vars: &[(&str, &str)],
) -> anyhow::Result<cmd::Output> {
    let work = tempfile::tempdir()?;
    let mut c = tokio::process::Command::new(&master.bins.worker);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BURST_WORKER_ID", worker_id)
        .env("BURST_TOKEN", "not-the-token")
        .env("BURST_WORK_DIR", work.path())
        .env("BURST_MAX_DISCONNECTED", "3s")
        .env("BURST_RECONNECT_MAX", "500ms")
        .env("NO_COLOR", "1");
    for (k, v) in vars {
        c.env(k, v);
    }
    cmd::run(c, Duration::from_secs(60)).await
}

async fn launching_worker_id(master: &Master) -> anyhow::Result<String> {
    let w = wait::until("a launching worker", Duration::from_secs(30), || async {
        let workers = master.workers().await?;
        Ok(workers
            .into_iter()
            .find(|w| w.state == "launching" || w.state == "connecting"))
    })
    .await?;
    Ok(w.worker_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn self_signed_master_builds_over_tls_and_keeps_its_pin() -> anyhow::Result<()> {
    let mut master = MasterBuilder::config(CONFIG)
        .tls_self_signed()
        .start()
        .await?;
    assert!(master.url().starts_with("https://"), "{}", master.url());
    assert!(
        master.worker_url().starts_with("https://"),
        "{}",
        master.worker_url()
    );
    let pin = master.pin().expect("a TLS master has a pin");

    // As a user on the master's machine would: no token, no CA given; the
    // CLI finds both through the state dir.
    let mut c = master.cli_command(&["submit", "hello", "--follow"]);
    c.env_remove("BURST_TOKEN")
        .env_remove("BURST_CA_FILE")
        .env("BURST__MASTER__STATE_DIR", master.state_dir());
    let out = cmd::run(c, Duration::from_secs(120)).await?;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("hello over tls"), "{out:?}");

    // The local worker was handed the pin next to its token.
    let workers = master.worker_processes();
    let env = workers
        .iter()
        .find_map(|p| burst_e2e::procs::environ(p.pid))
        .expect("the local worker's environment");
    assert_eq!(env.get("BURST_MASTER_PIN"), Some(&pin), "{env:?}");
    assert!(env["BURST_MASTER_URL"].starts_with("https://"), "{env:?}");

    // Keys are the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let tls_dir = master.state_dir().join("tls");
    for key in ["ca.key", "server.key"] {
        let mode = std::fs::metadata(tls_dir.join(key))?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let ca_before = std::fs::read(tls_dir.join("ca.pem"))?;
    let cert_before = std::fs::read(tls_dir.join("server.pem"))?;

    master.sigterm_and_wait(Duration::from_secs(60)).await?;
    master.restart().await?;
    assert_eq!(
        master.pin().as_ref(),
        Some(&pin),
        "the pin survives a restart"
    );
    assert_eq!(std::fs::read(tls_dir.join("ca.pem"))?, ca_before);
    assert_eq!(std::fs::read(tls_dir.join("server.pem"))?, cert_before);
    let out = master
        .cli_timeout(&["submit", "hello", "--follow"], Duration::from_secs(120))
        .await?;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("hello over tls"), "{out:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cli_that_cannot_verify_the_master_refuses_with_exit_3() -> anyhow::Result<()> {
    let master = MasterBuilder::config(CONFIG)
        .tls_self_signed()
        .start()
        .await?;
    // Neither --ca-file nor the state dir: only the system's roots, which
    // know nothing of this master's CA.
    let mut c = master.cli_command(&["builds"]);
    c.env_remove("BURST_CA_FILE");
    let out = cmd::run(c, Duration::from_secs(60)).await?;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains("failed to verify the TLS certificate"),
        "{out:?}"
    );
    assert!(out.stderr.contains("--ca-file"), "{out:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plaintext_worker_never_reaches_a_tls_master() -> anyhow::Result<()> {
    let master = MasterBuilder::config(SLEEPING)
        .tls_self_signed()
        .start()
        .await?;
    let worker_id = launching_worker_id(&master).await?;
    let ids = master.submit("hello", &[]).await?;

    let plain = master.worker_url().replacen("https://", "http://", 1);
    let out = worker(&master, &worker_id, &[("BURST_MASTER_URL", &plain)]).await?;
    assert_eq!(out.code, Some(3), "gives up as orphaned: {out:?}");
    assert!(out.stderr.contains("failed to reach the master"), "{out:?}");
    wait::until_true(
        "the master to log the failed handshake",
        Duration::from_secs(10),
        || master.log().contains("TLS handshake failed"),
    )
    .await?;

    // It never got as far as a hello: the worker is still launching and
    // the build was not run.
    let workers = master.workers().await?;
    let w = workers.iter().find(|w| w.worker_id == worker_id);
    assert!(
        w.is_some_and(|w| w.state == "launching" || w.state == "connecting"),
        "{workers:?}"
    );
    let build = master.build_json(ids[0]).await?;
    assert_eq!(build["state"], "queued", "{build}");
    assert!(!master.log().contains("wrong launch token"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_shown_the_wrong_certificate_refuses_and_says_why() -> anyhow::Result<()> {
    let master = MasterBuilder::config(SLEEPING)
        .tls_self_signed()
        .start()
        .await?;
    let worker_id = launching_worker_id(&master).await?;
    let url = master.worker_url();
    let real = master.pin().expect("pin");
    let wrong = format!("sha256:{}", "ab".repeat(32));

    let out = worker(
        &master,
        &worker_id,
        &[("BURST_MASTER_URL", &url), ("BURST_MASTER_PIN", &wrong)],
    )
    .await?;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("refusing to connect to the master"),
        "{out:?}"
    );
    assert!(out.stderr.contains(&format!("expected {wrong}")), "{out:?}");
    assert!(
        out.stderr.contains(&real),
        "names the CA it was shown: {out:?}"
    );
    assert!(
        !master.log().contains("wrong launch token"),
        "it sent no hello"
    );

    // A pin with an http:// URL, or https:// with nothing to check: refused
    // before dialing.
    let plain = url.replacen("https://", "http://", 1);
    let out = worker(
        &master,
        &worker_id,
        &[("BURST_MASTER_URL", &plain), ("BURST_MASTER_PIN", &real)],
    )
    .await?;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("never falls back to clear text"),
        "{out:?}"
    );
    let out = worker(&master, &worker_id, &[("BURST_MASTER_URL", &url)]).await?;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("BURST_MASTER_PIN"), "{out:?}");

    // The right pin gets as far as the master's own checks.
    let out = worker(
        &master,
        &worker_id,
        &[("BURST_MASTER_URL", &url), ("BURST_MASTER_PIN", &real)],
    )
    .await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("wrong launch token"), "{out:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn off_loopback_without_tls_refuses_naming_master_tls() -> anyhow::Result<()> {
    let refused = MasterBuilder::config(CONFIG)
        .env("BURST__MASTER__HTTP_LISTEN", "0.0.0.0:0")
        .quiet()
        .start()
        .await;
    let err = match refused {
        Ok(_) => "it started".to_owned(),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("set master.tls"), "{err}");
    // And it names the escape hatch, for a master behind a TLS proxy.
    assert!(err.contains("master.allow_insecure_http"), "{err}");

    let master = MasterBuilder::config(CONFIG)
        .env("BURST__MASTER__HTTP_LISTEN", "0.0.0.0:0")
        .tls_self_signed()
        .start()
        .await?;
    let out = master.cli(&["builds"]).await?;
    assert!(out.success(), "{out:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_files_pin_the_server_certificate() -> anyhow::Result<()> {
    // Files from a self-signed master: a server certificate signed by a CA,
    // which the second master serves from `tls = { cert, key }`.
    let first = MasterBuilder::config(CONFIG)
        .tls_self_signed()
        .start()
        .await?;
    let tls_dir = first.state_dir().join("tls");
    let files = tempfile::tempdir()?;
    let (cert, key, ca) = (
        files.path().join("server.pem"),
        files.path().join("server.key"),
        files.path().join("ca.pem"),
    );
    std::fs::copy(tls_dir.join("server.pem"), &cert)?;
    std::fs::copy(tls_dir.join("server.key"), &key)?;
    std::fs::copy(tls_dir.join("ca.pem"), &ca)?;
    let ca_pin = first.pin().expect("pin");
    drop(first);

    let master = MasterBuilder::config(SLEEPING)
        .master_toml(&format!(
            "tls = {{ cert = {:?}, key = {:?} }}",
            cert.display().to_string(),
            key.display().to_string()
        ))
        .trust_ca(&ca)
        .start()
        .await?;
    let pin = master.pin().expect("pin");
    assert_ne!(pin, ca_pin, "files pin the server certificate, not its CA");
    // cli_command passes the CA as BURST_CA_FILE.
    let out = master.cli(&["builds"]).await?;
    assert!(out.success(), "the CLI trusts the CA file: {out:?}");

    // A worker checks the server certificate's pin, or the CA file (with
    // names): both get as far as the master's own token check.
    let worker_id = launching_worker_id(&master).await?;
    let url = master.worker_url();
    let ca_text = ca.display().to_string();
    for trust in [
        ("BURST_MASTER_PIN", pin.as_str()),
        ("BURST_MASTER_CA", ca_text.as_str()),
    ] {
        let out = worker(&master, &worker_id, &[("BURST_MASTER_URL", &url), trust]).await?;
        assert_eq!(out.code, Some(2), "{trust:?}: {out:?}");
        assert!(
            out.stderr.contains("wrong launch token"),
            "{trust:?}: {out:?}"
        );
    }
    // The CA's pin works too: the chain in the file ends with that CA, and
    // it did sign the server certificate.
    let out = worker(
        &master,
        &worker_id,
        &[("BURST_MASTER_URL", &url), ("BURST_MASTER_PIN", &ca_pin)],
    )
    .await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_client_is_dropped_before_its_tls_handshake() -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let master = MasterBuilder::config(CONFIG)
        .tls_self_signed()
        .start()
        .await?;
    let strip = |url: String| {
        url.split_once("://")
            .map(|(_, a)| a.to_owned())
            .unwrap_or(url)
    };
    // Both endpoints: a connection that never sends its ClientHello is
    // closed by the handshake deadline (10 s), not held for ever.
    for addr in [strip(master.url()), strip(master.worker_url())] {
        let mut stream = tokio::net::TcpStream::connect(addr.as_str()).await?;
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "{addr}: the master kept a silent connection open: {read:?}"
        );
    }
    // And the endpoint still serves.
    let out = master.cli(&["builds"]).await?;
    assert!(out.success(), "{out:?}");
    Ok(())
}
