//! Opening a host's SSH connection: one ControlMaster per host (the
//! system `ssh` client, multiplexed natively), waking the machine first
//! when it does not answer and has a `wake` command.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use backon::{ConstantBuilder, Retryable};
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};

use super::power;
use super::settings::{HostKeyCheck, HostSettings, SshSettings};
use crate::ProviderError;

/// An idle control master exits on its own after this long, so a master
/// that is killed leaves no ssh process behind for long; the provider
/// reconnects when it finds the connection gone.
const CONTROL_PERSIST_SECS: usize = 300;

/// Between connection attempts while a woken host boots.
const WAKE_POLL: Duration = Duration::from_secs(2);

fn builder(settings: &SshSettings, host: &HostSettings, control_dir: &Path) -> SessionBuilder {
    let mut b = SessionBuilder::default();
    b.port(host.port)
        .known_hosts_check(match settings.host_key_check {
            HostKeyCheck::Strict => KnownHosts::Strict,
            HostKeyCheck::AcceptNew => KnownHosts::Add,
        })
        .connect_timeout(settings.connect_timeout)
        .server_alive_interval(Duration::from_secs(15))
        .control_directory(control_dir)
        .control_persist(
            NonZeroUsize::new(CONTROL_PERSIST_SECS)
                .map_or(ControlPersist::Forever, ControlPersist::IdleFor),
        );
    if let Some(user) = &host.user {
        b.user(user.clone());
    }
    if let Some(key) = &host.key_file {
        b.keyfile(key);
    }
    if let Some(known_hosts) = &settings.known_hosts {
        b.user_known_hosts_file(known_hosts);
    }
    b
}

/// One connection attempt.
pub async fn connect(
    settings: &SshSettings,
    host: &HostSettings,
    control_dir: &Path,
) -> Result<Session, ProviderError> {
    // A destination starting with '-' would be read by ssh as an option.
    if host.address.starts_with('-')
        || host
            .address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ProviderError::permanent(format!(
            "failed to connect to ssh host {}: invalid address {:?}",
            host.name, host.address
        )));
    }
    let b = builder(settings, host, control_dir);
    // ConnectTimeout bounds the TCP connect; this bounds the handshake too.
    let limit = settings.connect_timeout * 3;
    match tokio::time::timeout(limit, b.connect_mux(&host.address)).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => Err(classify(settings, host, &error_text(&e)).with_source(e)),
        Err(_) => Err(ProviderError::transient(format!(
            "failed to connect to ssh host {} ({}): no answer within {}s",
            host.name,
            host.destination(),
            limit.as_secs()
        ))),
    }
}

/// Connects; if that fails and the host has a `wake` command, runs it and
/// keeps trying until `wake_timeout`.
pub async fn connect_or_wake(
    settings: &SshSettings,
    host: &HostSettings,
    control_dir: &Path,
) -> Result<Session, ProviderError> {
    let first = match connect(settings, host, control_dir).await {
        Ok(session) => return Ok(session),
        Err(e) => e,
    };
    if host.wake.is_empty() || first.is_permanent() {
        return Err(first);
    }
    tracing::info!(host = %host.name, error = %first, "ssh host does not answer; waking it");
    power::run("wake", &host.name, &host.wake, host.wake_timeout).await?;
    let attempts = (host.wake_timeout.as_millis() / WAKE_POLL.as_millis()).max(1) as usize;
    let retry = (|| connect(settings, host, control_dir))
        .retry(
            ConstantBuilder::default()
                .with_delay(WAKE_POLL)
                .with_max_times(attempts),
        )
        .when(|e: &ProviderError| !e.is_permanent());
    let limit = host.wake_timeout + settings.connect_timeout * 3;
    match tokio::time::timeout(limit, retry).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) if e.is_permanent() => Err(e),
        Ok(Err(e)) => Err(ProviderError::transient(format!(
            "failed to reach ssh host {} within {}s of waking it: {e}",
            host.name,
            host.wake_timeout.as_secs()
        ))),
        Err(_) => Err(ProviderError::transient(format!(
            "failed to reach ssh host {} within {}s of waking it",
            host.name,
            limit.as_secs()
        ))),
    }
}

/// The error and its sources: openssh keeps ssh's own message in the source.
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Turns ssh's stderr into a message that says what is wrong. Host key and
/// authentication problems are permanent: only a config change helps.
pub fn classify(settings: &SshSettings, host: &HostSettings, text: &str) -> ProviderError {
    let summary = summarize(text);
    let who = format!("ssh host {} ({})", host.name, host.destination());
    let host_key = [
        "Host key verification failed",
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "host key is known for",
        "Host key for",
    ]
    .iter()
    .any(|m| text.contains(m));
    if host_key {
        let file = settings.known_hosts.as_ref().map_or_else(
            || "the default known_hosts file".to_owned(),
            |p| p.display().to_string(),
        );
        let mode = match settings.host_key_check {
            HostKeyCheck::Strict => "strict",
            HostKeyCheck::AcceptNew => "accept-new",
        };
        return ProviderError::permanent(format!(
            "failed to connect to {who}: host key verification failed against {file} \
             ({mode} checking): the host's key is unknown or has changed; refusing to connect ({summary})"
        ))
        .with_code("host_key");
    }
    if text.contains("Permission denied") || text.contains("Too many authentication failures") {
        return ProviderError::permanent(format!("failed to authenticate to {who}: {summary}"))
            .with_code("auth");
    }
    if text.contains("UNPROTECTED PRIVATE KEY FILE")
        || text.contains("Load key")
        || text.contains("no such identity")
    {
        return ProviderError::permanent(format!(
            "failed to use the key file for {who}: {summary}"
        ))
        .with_code("key_file");
    }
    ProviderError::transient(format!("failed to connect to {who}: {summary}"))
}

/// The end of ssh's message, where it says what went wrong (the lines
/// before are banners and advice), on one line.
fn summarize(text: &str) -> String {
    let text = text
        .strip_prefix("failed to connect to the remote host: ")
        .unwrap_or(text);
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('@'))
        .collect();
    let last = &parts[parts.len().saturating_sub(2)..];
    power::tail(&last.join(" | "), 400).to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ssh::settings::Platform;

    fn settings() -> SshSettings {
        SshSettings {
            master_id: "m".into(),
            pool: "p".into(),
            hosts: vec![],
            known_hosts: Some("/etc/burst/known_hosts".into()),
            host_key_check: HostKeyCheck::Strict,
            connect_timeout: Duration::from_secs(5),
            stop_grace: Duration::from_secs(5),
            upload: true,
            worker_binaries: BTreeMap::new(),
            env: BTreeMap::new(),
            control_dir: "/tmp".into(),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }

    fn host() -> HostSettings {
        HostSettings {
            name: "mini".into(),
            address: "mini.lan".into(),
            port: 2222,
            user: Some("ci".into()),
            key_file: None,
            platform: Platform::Macos,
            max_workers: 1,
            install_dir: ".burst/bin".into(),
            state_dir: ".burst".into(),
            wake: vec![],
            sleep: vec![],
            wake_timeout: Duration::from_secs(1),
            price_per_hour: None,
        }
    }

    #[test]
    fn host_key_mismatch_is_permanent_and_says_so() {
        let text = "failed to connect to the remote host: @@@@@@@@@@@\n\
                    @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                    @@@@@@@@@@@\nHost key verification failed.";
        let e = classify(&settings(), &host(), text);
        assert!(e.is_permanent());
        assert_eq!(e.code.as_deref(), Some("host_key"));
        assert!(
            e.message.contains("ssh host mini (ci@mini.lan:2222)"),
            "{e}"
        );
        assert!(
            e.message.contains(
                "host key verification failed against /etc/burst/known_hosts (strict checking)"
            ),
            "{e}"
        );
        let unknown = "No ED25519 host key is known for [mini.lan]:2222 and you have requested strict checking.\nHost key verification failed.";
        assert_eq!(
            classify(&settings(), &host(), unknown).code.as_deref(),
            Some("host_key")
        );
    }

    #[test]
    fn auth_is_permanent_unreachable_is_transient() {
        let e = classify(
            &settings(),
            &host(),
            "ci@mini.lan: Permission denied (publickey).",
        );
        assert!(
            e.is_permanent() && e.message.starts_with("failed to authenticate"),
            "{e}"
        );
        let e = classify(
            &settings(),
            &host(),
            "connect to host mini.lan port 2222: Connection refused",
        );
        assert!(!e.is_permanent());
        assert!(e.message.contains("Connection refused"), "{e}");
    }

    #[tokio::test]
    async fn option_like_addresses_are_refused() {
        let mut h = host();
        h.address = "-oProxyCommand=touch /tmp/x".into();
        let e = connect(&settings(), &h, Path::new("/tmp"))
            .await
            .err()
            .map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("invalid address")));
    }
}
