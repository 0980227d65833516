//! Checks of a `[pools.NAME.docker]` section, including whether its
//! containers can reach the master at all.

use std::collections::BTreeSet;

use super::config::DockerPoolConfig;
use super::labels::LABEL_PREFIX;
use super::platform::Platform;
use super::settings::{parse_endpoint, parse_memory, Endpoint, PullPolicy};
use super::url;
use crate::config::{check_env, check_price, Context, Path, Problems};

/// Every problem of the section, at `docker.…` in the pool.
pub(super) fn check(d: &DockerPoolConfig, ctx: &Context, out: &mut Problems) {
    let path = Path::root().key("docker");
    let platform = d.platform;

    if d.image.trim().is_empty() {
        out.push(
            &path.key("image"),
            "must name an image, e.g. \"burst-worker:latest\"",
        );
    }
    if d.build_context.is_some() && d.pull == PullPolicy::Always {
        out.push(
            &path.key("pull"),
            "\"always\" pulls from a registry, build_context builds locally: keep one",
        );
    }
    if d.dockerfile.is_some() && d.build_context.is_none() {
        out.push(&path.key("dockerfile"), "needs build_context");
    }

    let hosts = path.key("hosts");
    let mut names = BTreeSet::new();
    let mut endpoints = Vec::new();
    for (i, host) in d.hosts.iter().enumerate() {
        let host_path = hosts.index(i);
        let name = host.name(i);
        if name.is_empty() || name.contains('/') {
            out.push(
                &host_path.key("name"),
                format!("host name {name:?} must be non-empty without '/'"),
            );
        } else if !names.insert(name.clone()) {
            out.push(
                &host_path.key("name"),
                format!("duplicate host name {name:?}; set distinct names"),
            );
        }
        match parse_endpoint(&host.endpoint, host.tls_dir.clone()) {
            Ok(endpoint) => endpoints.push((host_path.key("endpoint"), endpoint)),
            Err(e) => out.push(&host_path.key("endpoint"), e),
        }
        out.check(&host_path.key("capacity"), &host.capacity);
        check_price(&host_path.key("price_per_hour"), host.price_per_hour, out);
    }
    if d.hosts.is_empty() {
        endpoints.push((path.key("hosts"), Endpoint::Local));
    }

    if let Some(network) = &d.network {
        if network.trim().is_empty() {
            out.push(&path.key("network"), "must not be empty");
        }
    }
    for (i, bind) in d.binds.iter().enumerate() {
        let parts = bind_parts(bind, platform);
        if parts.len() < 2 || parts.len() > 3 || parts[..2].iter().any(|p| p.is_empty()) {
            let example = match platform {
                Platform::Linux => "/srv/cache:/cache:ro",
                Platform::Windows => r"C:\cache:C:\cache:ro",
            };
            out.push(
                &path.key("binds").index(i),
                format!("{bind:?} must be SOURCE:TARGET[:OPTIONS], e.g. {example:?}"),
            );
        }
    }
    for (i, volume) in d.volumes.iter().enumerate() {
        if !platform.is_absolute(volume) {
            out.push(
                &path.key("volumes").index(i),
                format!("{volume:?} must be an absolute path inside the container"),
            );
        }
    }
    check_env(&path.key("env"), &d.env, out);
    if let Some(cpus) = d.cpus {
        if !(cpus.is_finite() && cpus > 0.0) {
            out.push(
                &path.key("cpus"),
                format!("must be greater than zero (got {cpus})"),
            );
        }
    }
    if let Some(memory) = &d.memory {
        if let Err(e) = parse_memory(memory) {
            out.push(&path.key("memory"), e);
        }
    }
    for key in d.labels.keys() {
        if key.is_empty() || key.starts_with(LABEL_PREFIX) {
            out.push(
                &path.key("labels").key(key),
                format!("label {key:?} is empty or reserved ({LABEL_PREFIX}* are burst's own)"),
            );
        }
    }
    for (key, value) in [("work_dir", &d.work_dir), ("worker_path", &d.worker_path)] {
        if let Some(value) = value.as_ref().filter(|v| !platform.is_absolute(v)) {
            out.push(
                &path.key(key),
                format!("must be an absolute path in a {platform:?} container (got {value:?})"),
            );
        }
    }
    if d.user.as_deref().is_some_and(|u| u.trim().is_empty()) {
        out.push(
            &path.key("user"),
            "must name a user (NAME, UID or UID:GID), or be left out",
        );
    }
    if d.privileged && platform == Platform::Windows {
        out.push(
            &path.key("privileged"),
            "windows containers have no privileged mode: remove it or use platform = \"linux\"",
        );
    }
    if let Some(u) = &d.master_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) || url::host_of(u).is_none() {
            out.push(
                &path.key("master_url"),
                format!("must be http(s)://HOST:PORT (got {u:?})"),
            );
        }
    }

    // Can the containers reach the master? Only decidable without an
    // override and off the host network.
    if d.master_url.is_some() || d.network.as_deref() == Some("host") {
        return;
    }
    let advertised = &ctx.advertise_url;
    if !url::needs_rewrite(advertised) {
        return;
    }
    let section = format!("pools.{}.docker", ctx.pool);
    for (endpoint_path, endpoint) in &endpoints {
        if !endpoint.is_local() {
            out.push(
                endpoint_path,
                format!(
                    "containers on this remote host cannot reach the master at {advertised}: set \
                     master.advertise_url to an address it reaches, or {section}.master_url"
                ),
            );
        }
    }
    let local = endpoints.iter().any(|(_, e)| e.is_local());
    let listen = ctx.grpc_listen;
    if local && listen.ip().is_loopback() {
        out.push_root(
            &Path::root().key("master").key("grpc_listen"),
            format!(
                "containers on a bridge network cannot reach {listen}: listen on an address the \
                 bridge reaches, e.g. \"0.0.0.0:{}\" or the bridge gateway (see docs/docker.md), \
                 or set {section}.master_url",
                listen.port()
            ),
        );
    }
}

/// A bind's `:`-separated parts; on Windows a drive letter's colon
/// (`C:\x`, `C:/x`) stays inside its part.
fn bind_parts(bind: &str, platform: Platform) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut drive: Option<&str> = None;
    for part in bind.split(':') {
        if let Some(letter) = drive.take() {
            if part.starts_with(['\\', '/']) {
                parts.push(format!("{letter}:{part}"));
                continue;
            }
            parts.push(letter.to_owned());
        }
        let is_drive = platform == Platform::Windows
            && part.len() == 1
            && part.bytes().all(|b| b.is_ascii_alphabetic());
        if is_drive {
            drive = Some(part);
        } else {
            parts.push(part.to_owned());
        }
    }
    if let Some(letter) = drive {
        parts.push(letter.to_owned());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_binds_keep_drive_letters() {
        assert_eq!(
            bind_parts(r"C:\src:C:\dst:ro", Platform::Windows),
            [r"C:\src", r"C:\dst", "ro"]
        );
        assert_eq!(
            bind_parts("cache:c:/data", Platform::Windows),
            ["cache", "c:/data"]
        );
        assert_eq!(bind_parts("/a:/b:ro", Platform::Linux), ["/a", "/b", "ro"]);
        assert_eq!(bind_parts("C:x", Platform::Windows), ["C", "x"]);
    }

    #[test]
    fn reserved_env_is_refused() {
        let d: DockerPoolConfig =
            toml::from_str("env = { BURST_MASTER_URL = \"http://x\" }").expect("parses");
        let mut ctx = Context::for_pool("p");
        ctx.grpc_listen = ([0, 0, 0, 0], 8481).into();
        ctx.advertise_url = "http://10.0.0.1:8481".into();
        let mut out = Problems::new();
        check(&d, &ctx, &mut out);
        let found = out.lines();
        assert_eq!(
            found,
            ["docker.env.BURST_MASTER_URL: BURST_MASTER_URL is set by burst for every worker"]
        );
    }
}
