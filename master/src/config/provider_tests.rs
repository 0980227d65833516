//! A docker pool's problems as the master reports them: file, line and key.
//! The checks themselves are the docker provider's (providers/src/docker).
use std::collections::BTreeMap;
use std::path::Path;

use burst_providers::docker::{DockerPoolConfig, Platform as DockerPlatform, PullPolicy};
use burst_providers::ProviderConfig;

use crate::config::{load_str, Config, ConfigError};

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

/// The `dock` pool's docker section.
fn docker(config: &Config) -> &DockerPoolConfig {
    match config.pools["dock"].provider.config() {
        Some(ProviderConfig::Docker(d)) => d,
        other => panic!("not a docker section: {other:?}"),
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
    let d = docker(&config);
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
    let d = docker(&config);
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
    let d = docker(&config);
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
            && unknown[0].starts_with("F:10: pools.dock.docker.platform: unknown variant `macos`"),
        "{unknown:?}"
    );
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
            && unknown[0].starts_with("F:9: pools.dock.docker.pull: unknown variant `sometimes`"),
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

#[test]
fn a_section_of_another_provider_is_named_at_its_line() {
    let text = "[pools.build]\nprovider = \"ssh\"\nlabels = [\"linux\"]\n\n\
                [[pools.build.ssh.hosts]]\naddress = \"10.0.0.2\"\n\n\
                [pools.build.docker]\nimage = \"x\"\n\n\
                [[builders]]\nname = \"b\"\nlabels = [\"linux\"]\nsteps = [{ name = \"s\", run = \"true\" }]\n";
    assert_eq!(
        problems(text),
        ["F:8: pools.build.docker: only used when provider = \"docker\"; this pool's provider is \
          \"ssh\": remove [pools.build.docker] or change the provider"]
    );
}

#[test]
fn a_section_before_its_provider_key_is_still_read() {
    let text = "[pools.dock.docker]\npull = \"sometimes\"\n\n[pools.dock]\nprovider = \"docker\"\n";
    let found = problems(text);
    assert!(
        found.len() == 1
            && found[0].starts_with("F:2: pools.dock.docker.pull: unknown variant `sometimes`"),
        "{found:?}"
    );
}

#[test]
fn reserved_env_is_refused_for_docker_at_its_line() {
    let found = problems(&with("env = { BURST_TOKEN = \"x\" }"));
    assert_eq!(
        found,
        ["F:10: pools.dock.docker.env.BURST_TOKEN: BURST_TOKEN is set by burst for every worker"]
    );
}

#[test]
fn reserved_env_is_refused_for_local_at_its_line() {
    let text = "[pools.here]\nprovider = \"local\"\nlabels = [\"linux\"]\n\n[pools.here.local]\n\
                env = { BURST_LABELS = \"x\" }\n\n\
                [[builders]]\nname = \"b\"\nlabels = [\"linux\"]\nsteps = [{ name = \"s\", run = \"true\" }]\n";
    assert_eq!(
        problems(text),
        ["F:6: pools.here.local.env.BURST_LABELS: BURST_LABELS is set by burst for every worker"]
    );
}

/// The fake provider is registered like the real ones: a config naming it
/// loads, validates and builds through the registry.
#[tokio::test]
async fn a_fake_pool_loads_validates_and_builds_through_the_registry() {
    use burst_providers::fake::FakeProvider;

    let text = "[pools.fake]\nprovider = \"fake\"\nlabels = [\"linux\"]\n\n[pools.fake.fake]\n\
                step_time = \"3s\"\nexit_code = 2\n\n\
                [[builders]]\nname = \"b\"\nlabels = [\"linux\"]\nsteps = [{ name = \"s\", run = \"true\" }]\n";
    let config = match load(text) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let pool = &config.pools["fake"];
    assert_eq!(pool.provider.kind(), burst_providers::ProviderKind::Fake);
    let ctx = super::validate::validation_context("fake", pool, &config.master);
    let provider = pool.provider.build(&ctx).expect("builds");
    assert_eq!(provider.kind(), "fake");
    let fake = FakeProvider::downcast(provider).expect("the fake");
    assert_eq!(fake.config().step_time, std::time::Duration::from_secs(3));
    assert_eq!(fake.config().exit_code, 2);

    let bad = text.replace("exit_code = 2", "connect_after = \"0s\"");
    assert_eq!(
        problems(&bad),
        ["F:7: pools.fake.fake.connect_after: must be greater than zero"]
    );
}

#[test]
fn host_prices_are_read_and_a_negative_one_names_its_line() {
    let config = load(&with(
        "[[pools.dock.docker.hosts]]\nname = \"big\"\nprice_per_hour = 0.5",
    ))
    .unwrap();
    assert_eq!(docker(&config).hosts[0].price_per_hour, Some(0.5));
    let found = problems(&with("[[pools.dock.docker.hosts]]\nprice_per_hour = -0.5"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with(
            "pools.dock.docker.hosts[0].price_per_hour: must be a number at least 0 (got -0.5)"
        ),
        "{found:?}"
    );
    let ssh = "[pools.build]\nprovider = \"ssh\"\nlabels = [\"linux\"]\n\n\
               [[pools.build.ssh.hosts]]\naddress = \"10.0.0.2\"\nprice_per_hour = -1.0\n\n\
               [[builders]]\nname = \"b\"\nlabels = [\"linux\"]\nsteps = [{ name = \"s\", run = \"true\" }]\n";
    assert_eq!(
        problems(ssh),
        ["F:7: pools.build.ssh.hosts[0].price_per_hour: must be a number at least 0 (got -1)"]
    );
}
