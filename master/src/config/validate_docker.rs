//! Checks of a `[pools.NAME.docker]` section, including whether its
//! containers can reach the master at all.

use std::collections::BTreeSet;

use burst_providers::docker::{
    parse_endpoint, parse_memory, url, Endpoint, Platform, LABEL_PREFIX,
};

use super::locate::KeyPath;
use super::schema::{DockerPlatform, DockerPoolConfig, MasterConfig, PullPolicy};
use super::validate::{is_env_name, Issue};

/// The issues of one docker section at `path` (`pools.NAME.docker`).
pub(crate) fn check(path: &KeyPath, d: &DockerPoolConfig, master: &MasterConfig) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut push = |path: KeyPath, message: String| issues.push(Issue { path, message });
    let platform = match d.platform {
        DockerPlatform::Linux => Platform::Linux,
        DockerPlatform::Windows => Platform::Windows,
    };

    if d.image.trim().is_empty() {
        push(
            path.key("image"),
            "must name an image, e.g. \"burst-worker:latest\"".into(),
        );
    }
    if d.build_context.is_some() && d.pull == PullPolicy::Always {
        push(
            path.key("pull"),
            "\"always\" pulls from a registry, build_context builds locally: keep one".into(),
        );
    }
    if d.dockerfile.is_some() && d.build_context.is_none() {
        push(path.key("dockerfile"), "needs build_context".into());
    }

    let hosts = path.key("hosts");
    let mut names = BTreeSet::new();
    let mut endpoints = Vec::new();
    for (i, host) in d.hosts.iter().enumerate() {
        let host_path = hosts.index(i);
        let name = host.name(i);
        if name.is_empty() || name.contains('/') {
            push(
                host_path.key("name"),
                format!("host name {name:?} must be non-empty without '/'"),
            );
        } else if !names.insert(name.clone()) {
            push(
                host_path.key("name"),
                format!("duplicate host name {name:?}; set distinct names"),
            );
        }
        match parse_endpoint(&host.endpoint, host.tls_dir.clone()) {
            Ok(endpoint) => endpoints.push((host_path.key("endpoint"), endpoint)),
            Err(e) => push(host_path.key("endpoint"), e),
        }
        if host.capacity == Some(0) {
            push(
                host_path.key("capacity"),
                "must be at least 1 (got 0)".into(),
            );
        }
    }
    if d.hosts.is_empty() {
        endpoints.push((path.key("hosts"), Endpoint::Local));
    }

    if let Some(network) = &d.network {
        if network.trim().is_empty() {
            push(path.key("network"), "must not be empty".into());
        }
    }
    for (i, bind) in d.binds.iter().enumerate() {
        let parts = bind_parts(bind, platform);
        if parts.len() < 2 || parts.len() > 3 || parts[..2].iter().any(|p| p.is_empty()) {
            let example = match platform {
                Platform::Linux => "/srv/cache:/cache:ro",
                Platform::Windows => r"C:\cache:C:\cache:ro",
            };
            push(
                path.key("binds").index(i),
                format!("{bind:?} must be SOURCE:TARGET[:OPTIONS], e.g. {example:?}"),
            );
        }
    }
    for (i, volume) in d.volumes.iter().enumerate() {
        if !platform.is_absolute(volume) {
            push(
                path.key("volumes").index(i),
                format!("{volume:?} must be an absolute path inside the container"),
            );
        }
    }
    for name in d.env.keys().filter(|k| !is_env_name(k)) {
        push(
            path.key("env").key(name),
            format!("{name:?} must match [A-Za-z_][A-Za-z0-9_]*"),
        );
    }
    if let Some(cpus) = d.cpus {
        if !(cpus.is_finite() && cpus > 0.0) {
            push(
                path.key("cpus"),
                format!("must be greater than zero (got {cpus})"),
            );
        }
    }
    if let Some(memory) = &d.memory {
        if let Err(e) = parse_memory(memory) {
            push(path.key("memory"), e);
        }
    }
    for key in d.labels.keys() {
        if key.is_empty() || key.starts_with(LABEL_PREFIX) {
            push(
                path.key("labels").key(key),
                format!("label {key:?} is empty or reserved ({LABEL_PREFIX}* are burst's own)"),
            );
        }
    }
    for (key, value) in [("work_dir", &d.work_dir), ("worker_path", &d.worker_path)] {
        if let Some(value) = value.as_ref().filter(|v| !platform.is_absolute(v)) {
            push(
                path.key(key),
                format!("must be an absolute path in a {platform:?} container (got {value:?})"),
            );
        }
    }
    if d.privileged && platform == Platform::Windows {
        push(
            path.key("privileged"),
            "windows containers have no privileged mode: remove it or use platform = \"linux\""
                .into(),
        );
    }
    if let Some(u) = &d.master_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) || url::host_of(u).is_none() {
            push(
                path.key("master_url"),
                format!("must be http(s)://HOST:PORT (got {u:?})"),
            );
        }
    }

    // Can the containers reach the master? Only decidable without an
    // override and off the host network.
    if d.master_url.is_some() || d.network.as_deref() == Some("host") {
        return issues;
    }
    let advertised = master.advertise_url();
    if !url::needs_rewrite(&advertised) {
        return issues;
    }
    for (endpoint_path, endpoint) in &endpoints {
        if !endpoint.is_local() {
            push(
                endpoint_path.clone(),
                format!(
                    "containers on this remote host cannot reach the master at {advertised}: set \
                     master.advertise_url to an address it reaches, or {path}.master_url"
                ),
            );
        }
    }
    let local = endpoints.iter().any(|(_, e)| e.is_local());
    if local && master.grpc_listen.ip().is_loopback() {
        push(
            KeyPath::root().key("master").key("grpc_listen"),
            format!(
                "containers on a bridge network cannot reach {}: listen on an address the \
                 bridge reaches, e.g. \"0.0.0.0:{}\" or the bridge gateway (see docs/docker.md), \
                 or set {path}.master_url",
                master.grpc_listen,
                master.grpc_listen.port()
            ),
        );
    }
    issues
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
    use std::collections::BTreeMap;
    use std::path::Path;

    use crate::config::{load_str, Config, ConfigError, DockerPlatform, PullPolicy};

    const BASE: &str = r#"[master]
grpc_listen = "0.0.0.0:8481"

[pools.dock]
provider = "docker"
labels = ["linux"]

[pools.dock.docker]
pull = "never"

[[builders]]
name = "b"
labels = ["linux"]

[[builders.steps]]
name = "s"
run = "true"
"#;

    fn load(text: &str) -> Result<Config, ConfigError> {
        load_str(text, Path::new("F"), &BTreeMap::new())
    }

    /// Every problem as "F:LINE: key: message".
    fn problems(text: &str) -> Vec<String> {
        match load(text) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(ToString::to_string).collect(),
        }
    }

    fn with(extra: &str) -> String {
        BASE.replace(
            "pull = \"never\"\n",
            &format!("pull = \"never\"\n{extra}\n"),
        )
    }

    #[test]
    fn a_full_section_loads() {
        let text = with(
            r#"image = "ci/worker:1"
network = "ci-net"
binds = ["/srv/cache:/cache:ro"]
volumes = ["/scratch"]
env = { CI = "1", RUST_LOG = "info" }
cpus = 1.5
memory = "512m"
labels = { "com.example.team" = "infra" }
privileged = true
work_dir = "/build"

[[pools.dock.docker.hosts]]
capacity = 2

[[pools.dock.docker.hosts]]
name = "big"
endpoint = "tcp://127.0.0.1:2375"
capacity = 8"#,
        );
        let config = match load(&text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let d = &config.pools["dock"].docker;
        assert_eq!(d.pull, PullPolicy::Never);
        assert_eq!(d.image, "ci/worker:1");
        // Keys keep their case and their dots through the config crate.
        assert_eq!(d.env.get("RUST_LOG").map(String::as_str), Some("info"));
        assert_eq!(
            d.labels.get("com.example.team").map(String::as_str),
            Some("infra")
        );
        assert_eq!(d.hosts.len(), 2);
        assert_eq!(d.hosts[0].name(0), "local");
        assert_eq!(d.hosts[1].name(1), "big");
        assert_eq!(d.cpus, Some(1.5));
        assert!(d.privileged);
    }

    #[test]
    fn defaults() {
        let config = match load(&BASE.replace("pull = \"never\"\n", "")) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let d = &config.pools["dock"].docker;
        assert_eq!(d.image, "burst-worker:latest");
        assert_eq!(d.pull, PullPolicy::IfMissing);
        assert!(d.hosts.is_empty() && !d.privileged);
        assert_eq!(d.work_dir, None);
        assert_eq!(d.platform, DockerPlatform::Linux);
        assert_eq!(d.worker_path, None);
    }

    #[test]
    fn a_windows_section_loads() {
        let text = with(
            r#"platform = "windows"
image = "burst-worker-windows:ltsc2022"
worker_path = 'C:\tools\burst-worker.exe'
work_dir = 'D:\work'
binds = ['C:\cache:C:\cache:ro', 'cache:C:\data']
volumes = ['C:\scratch']
memory = "2g"
cpus = 2.0

[[pools.dock.docker.hosts]]
name = "win"
endpoint = "tcp://127.0.0.1:2375""#,
        );
        let config = match load(&text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let d = &config.pools["dock"].docker;
        assert_eq!(d.platform, DockerPlatform::Windows);
        assert_eq!(d.worker_path.as_deref(), Some(r"C:\tools\burst-worker.exe"));
        assert_eq!(d.work_dir.as_deref(), Some(r"D:\work"));
    }

    #[test]
    fn windows_values_name_file_line_and_key() {
        let text = with(
            r#"platform = "windows"
privileged = true
work_dir = "/work"
worker_path = 'burst-worker.exe'
volumes = ["/scratch"]
binds = ['C:\only']"#,
        );
        let found = problems(&text);
        let expect = [
            "F:11: pools.dock.docker.privileged: windows containers have no privileged mode",
            "F:12: pools.dock.docker.work_dir: must be an absolute path in a Windows container",
            "F:13: pools.dock.docker.worker_path: must be an absolute path in a Windows container",
            "F:14: pools.dock.docker.volumes[0]: \"/scratch\" must be an absolute path",
            "F:15: pools.dock.docker.binds[0]: \"C:\\\\only\" must be SOURCE:TARGET",
        ];
        for e in expect {
            assert!(
                found.iter().any(|f| f.starts_with(e)),
                "missing {e:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expect.len(), "{found:#?}");
        let unknown = problems(&with("platform = \"macos\""));
        assert!(
            unknown.len() == 1
                && unknown[0]
                    .starts_with("F:10: pools.dock.docker.platform: unknown variant `macos`"),
            "{unknown:?}"
        );
    }

    #[test]
    fn windows_binds_keep_drive_letters() {
        use super::{bind_parts, Platform};
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
    fn bad_values_name_file_line_and_key() {
        let text = with(
            r#"image = ""
memory = "lots"
cpus = 0.0
binds = ["/only-one-part"]
volumes = ["relative"]
env = { "A-B" = "1" }
labels = { "io.burst.pool" = "x" }
work_dir = "work"
master_url = "grpc://x"
dockerfile = "Dockerfile.ci"

[[pools.dock.docker.hosts]]
endpoint = "ssh://builder"
capacity = 0

[[pools.dock.docker.hosts]]
name = "a/b"
endpoint = "https://builder:2376""#,
        );
        let found = problems(&text);
        let expect = [
            "F:10: pools.dock.docker.image: must name an image",
            "F:11: pools.dock.docker.memory: invalid memory size \"lots\"",
            "F:12: pools.dock.docker.cpus: must be greater than zero (got 0)",
            "F:13: pools.dock.docker.binds[0]: \"/only-one-part\" must be SOURCE:TARGET",
            "F:14: pools.dock.docker.volumes[0]: \"relative\" must be an absolute path",
            "F:15: pools.dock.docker.env.A-B: \"A-B\" must match",
            "F:16: pools.dock.docker.labels.\"io.burst.pool\": label \"io.burst.pool\" is empty or reserved",
            "F:17: pools.dock.docker.work_dir: must be an absolute path",
            "F:18: pools.dock.docker.master_url: must be http(s)://HOST:PORT",
            "F:19: pools.dock.docker.dockerfile: needs build_context",
            "F:22: pools.dock.docker.hosts[0].endpoint: endpoint scheme \"ssh\" is not supported",
            "F:23: pools.dock.docker.hosts[0].capacity: must be at least 1",
            "F:26: pools.dock.docker.hosts[1].name: host name \"a/b\" must be non-empty without '/'",
            "F:27: pools.dock.docker.hosts[1].endpoint: endpoint \"https://builder:2376\" needs tls_dir",
        ];
        for e in expect {
            assert!(
                found.iter().any(|f| f.starts_with(e)),
                "missing {e:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expect.len(), "{found:#?}");
    }

    #[test]
    fn pull_always_conflicts_with_a_build_context() {
        let text = BASE.replace(
            "pull = \"never\"",
            "pull = \"always\"\nbuild_context = \"images/docker\"",
        );
        assert_eq!(
            problems(&text),
            ["F:9: pools.dock.docker.pull: \"always\" pulls from a registry, build_context builds locally: keep one"]
        );
        let unknown = problems(&BASE.replace("\"never\"", "\"sometimes\""));
        assert!(
            unknown.len() == 1
                && unknown[0]
                    .starts_with("F:9: pools.dock.docker.pull: unknown variant `sometimes`"),
            "{unknown:?}"
        );
    }

    #[test]
    fn duplicate_host_names() {
        let text =
            with("[[pools.dock.docker.hosts]]\n[[pools.dock.docker.hosts]]\nendpoint = \"local\"");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("hosts[1].name: duplicate host name \"local\""),
            "{found:?}"
        );
    }

    #[test]
    fn a_loopback_master_is_unreachable_from_the_bridge() {
        let text = BASE.replace("0.0.0.0:8481", "127.0.0.1:8481");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "F:2: master.grpc_listen: containers on a bridge network cannot reach 127.0.0.1:8481: \
                 listen on an address the bridge reaches, e.g. \"0.0.0.0:8481\""
            ),
            "{found:?}"
        );
        // Fixed by an override, by the host network, or by a routable listener.
        let fixes = [
            text.replace(
                "pull = \"never\"",
                "pull = \"never\"\nmaster_url = \"http://10.0.0.2:8481\"",
            ),
            text.replace("pull = \"never\"", "pull = \"never\"\nnetwork = \"host\""),
            BASE.replace("0.0.0.0:8481", "172.17.0.1:8481"),
        ];
        for fixed in fixes {
            assert_eq!(problems(&fixed), Vec::<String>::new(), "{fixed}");
        }
    }

    #[test]
    fn a_remote_host_needs_a_routable_master_url() {
        let text = with("[[pools.dock.docker.hosts]]\nendpoint = \"tcp://10.0.0.5:2375\"");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "F:11: pools.dock.docker.hosts[0].endpoint: containers on this remote host cannot reach \
                 the master at http://0.0.0.0:8481"
            ),
            "{found:?}"
        );
        let advertised = text.replace(
            "[master]\n",
            "[master]\nadvertise_url = \"http://ci.example.com:8481\"\n",
        );
        assert_eq!(problems(&advertised), Vec::<String>::new());
    }
}
