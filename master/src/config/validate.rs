//! Semantic checks serde cannot express. Every problem is collected, each
//! tied to the key it is about, so a broken config is fixed in one pass.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::error::{ConfigError, Problem};
use super::labels::{cell_labels, placeholders, pool_for_labels, pool_summary};
use super::locate::KeyPath;
use super::matrix::{cell_count, cells, MAX_CELLS};
use super::schema::{
    BuilderConfig, Config, MasterConfig, PoolConfig, ProviderKind, SshPlatform, SshPoolConfig,
    StepConfig,
};
use super::validate_docker;

/// Shells a worker knows how to run a script with.
pub const SHELLS: &[&str] = &["sh", "bash", "cmd", "powershell", "pwsh"];

/// One semantic problem, before it is tied to a file line or variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    pub(crate) path: KeyPath,
    pub(crate) message: String,
}

/// Checks a config built in code (problems carry keys but no origin). Files
/// are checked by `load_file`, which also names the line.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let issues = check(config);
    if issues.is_empty() {
        return Ok(());
    }
    Err(ConfigError::Invalid(
        issues
            .into_iter()
            .map(|i| Problem {
                origin: None,
                key: i.path.to_string(),
                message: i.message,
            })
            .collect(),
    ))
}

pub(crate) fn check(config: &Config) -> Vec<Issue> {
    let mut v = Checker::default();
    v.master(&config.master);
    let pools = KeyPath::root().key("pools");
    if config.pools.is_empty() {
        v.push(
            &pools,
            "at least one pool is required, e.g. [pools.local] with provider = \"local\"",
        );
    }
    for (name, pool) in &config.pools {
        v.pool(&pools.key(name), name, pool);
        if pool.provider == ProviderKind::Docker {
            let found = validate_docker::check(
                &pools.key(name).key("docker"),
                &pool.docker,
                &config.master,
            );
            v.issues.extend(found);
        }
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, builder) in config.builders.iter().enumerate() {
        let path = KeyPath::root().key("builders").index(i);
        if let Some(first) = seen.insert(&builder.name, i) {
            v.push(
                &path.key("name"),
                format!(
                    "duplicate builder name {:?} (also builders[{first}])",
                    builder.name
                ),
            );
        }
        v.builder(config, &path, builder);
    }
    v.issues
}

/// `[a-z0-9_-]+`: pool and builder names appear in URLs, paths and logs.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `[a-z0-9_]+`: axis names become environment variable names.
fn is_axis_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `[A-Za-z_][A-Za-z0-9_]*`: a portable environment variable name.
pub(crate) fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Variables the ssh provider sets for every worker itself.
const RESERVED_ENV: &[&str] = &[
    "BURST_MASTER_URL",
    "BURST_WORKER_ID",
    "BURST_TOKEN",
    "BURST_LABELS",
    "BURST_WORK_DIR",
    "BURST_MASTER_ID",
    "BURST_POOL",
];

/// ssh splits option values on whitespace and expands `%` tokens in file
/// paths, so such paths would silently name another file.
fn ssh_path_problem(p: &str) -> Option<&'static str> {
    if p.is_empty() {
        Some("must not be empty")
    } else if p
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '%'))
    {
        Some("must not contain whitespace, quotes or '%' (ssh would read the path differently)")
    } else {
        None
    }
}

/// Relative and inside the workspace, for Unix and Windows workers alike.
fn working_dir_problem(dir: &str) -> Option<&'static str> {
    let drive =
        dir.len() >= 2 && dir.as_bytes()[0].is_ascii_alphabetic() && dir.as_bytes()[1] == b':';
    if dir.starts_with(['/', '\\']) || drive {
        return Some("must be a relative path");
    }
    if dir.split(['/', '\\']).any(|part| part == "..") {
        return Some("must not contain '..'");
    }
    None
}

#[derive(Default)]
struct Checker {
    issues: Vec<Issue>,
}

impl Checker {
    fn push(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.clone(),
            message: message.into(),
        });
    }

    fn at_least_one(&mut self, path: &KeyPath, value: u32) {
        if value < 1 {
            self.push(path, format!("must be at least 1 (got {value})"));
        }
    }

    fn positive(&mut self, path: &KeyPath, value: Duration) {
        if value.is_zero() {
            self.push(path, "must be greater than zero");
        }
    }

    fn master(&mut self, m: &MasterConfig) {
        let path = KeyPath::root().key("master");
        self.positive(&path.key("heartbeat_interval"), m.heartbeat_interval);
        self.at_least_one(&path.key("heartbeat_misses"), m.heartbeat_misses);
        if let Some(url) = &m.advertise_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                self.push(
                    &path.key("advertise_url"),
                    format!("must start with http:// or https:// (got {url:?})"),
                );
            }
        }
        // Port 0 on both is fine: each gets its own ephemeral port.
        if m.http_listen == m.grpc_listen && m.http_listen.port() != 0 {
            self.push(
                &path.key("grpc_listen"),
                format!(
                    "must differ from master.http_listen (both are {})",
                    m.grpc_listen
                ),
            );
        }
    }

    fn pool(&mut self, path: &KeyPath, name: &str, p: &PoolConfig) {
        if !is_name(name) {
            self.push(path, format!("pool name {name:?} must match [a-z0-9_-]+"));
        }
        self.at_least_one(&path.key("max_workers"), p.max_workers);
        if p.min_idle > p.max_workers {
            self.push(
                &path.key("min_idle"),
                format!(
                    "must not exceed max_workers (got {} > {})",
                    p.min_idle, p.max_workers
                ),
            );
        }
        self.at_least_one(&path.key("max_starting"), p.max_starting);
        self.positive(&path.key("start_timeout"), p.start_timeout);
        self.positive(&path.key("idle_timeout"), p.idle_timeout);
        // A zero backoff would retry a failing launch in a tight loop.
        self.positive(&path.key("backoff_min"), p.backoff_min);
        if p.backoff_min > p.backoff_max {
            self.push(
                &path.key("backoff_min"),
                format!(
                    "must not exceed backoff_max (got {} > {})",
                    humantime::format_duration(p.backoff_min),
                    humantime::format_duration(p.backoff_max)
                ),
            );
        }
        for (i, label) in p.labels.iter().enumerate() {
            if label.is_empty() {
                self.push(&path.key("labels").index(i), "label must not be empty");
            }
        }
        match (p.provider, &p.ssh) {
            (ProviderKind::Ssh, Some(ssh)) => self.ssh(path, p, ssh),
            (ProviderKind::Ssh, None) => self.push(
                &path.key("ssh"),
                "required when provider = \"ssh\": add [pools.NAME.ssh] and at least one [[pools.NAME.ssh.hosts]]",
            ),
            (_, Some(_)) => self.push(&path.key("ssh"), "only used when provider = \"ssh\""),
            (_, None) => {}
        }
    }

    fn ssh(&mut self, pool: &KeyPath, p: &PoolConfig, ssh: &SshPoolConfig) {
        let path = &pool.key("ssh");
        let hosts = path.key("hosts");
        if ssh.hosts.is_empty() {
            self.push(&hosts, "an ssh pool needs at least one host");
        }
        self.positive(&path.key("connect_timeout"), ssh.connect_timeout);
        if let Some(file) = &ssh.known_hosts {
            if let Some(why) = ssh_path_problem(&file.to_string_lossy()) {
                self.push(&path.key("known_hosts"), why);
            }
        }
        for target in ssh.worker_binaries.keys() {
            let ok = target.split_once('-').is_some_and(|(os, arch)| {
                matches!(os, "linux" | "macos" | "windows")
                    && !arch.is_empty()
                    && arch
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
            if !ok {
                self.push(
                    &path.key("worker_binaries").key(target),
                    format!("{target:?} must be <os>-<arch> with os linux, macos or windows (e.g. linux-x86_64, macos-aarch64)"),
                );
            }
        }
        for name in ssh.env.keys() {
            let key = path.key("env").key(name);
            if !is_env_name(name) {
                self.push(&key, format!("{name:?} must match [A-Za-z_][A-Za-z0-9_]*"));
            } else if RESERVED_ENV.contains(&name.as_str()) {
                self.push(&key, format!("{name} is set by burst for every worker"));
            }
        }
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut capacity = 0u32;
        for (i, h) in ssh.hosts.iter().enumerate() {
            let hp = hosts.index(i);
            capacity = capacity.saturating_add(h.max_workers);
            let name = h.display_name();
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
            if !name_ok {
                self.push(
                    &hp.key("name"),
                    format!("host name {name:?} must match [A-Za-z0-9._:-]+"),
                );
            } else if let Some(first) = names.insert(name.clone(), i) {
                self.push(
                    &hp.key("name"),
                    format!(
                        "duplicate host name {name:?} (also hosts[{first}]); set a distinct name"
                    ),
                );
            }
            if h.address.is_empty()
                || h.address.starts_with('-')
                || h.address
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                self.push(
                    &hp.key("address"),
                    format!("{:?} is not a host name or address", h.address),
                );
            }
            if h.port == 0 {
                self.push(&hp.key("port"), "must be between 1 and 65535");
            }
            if let Some(user) = &h.user {
                if user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    self.push(&hp.key("user"), format!("{user:?} is not a user name"));
                }
            }
            if let Some(key) = &h.key_file {
                if let Some(why) = ssh_path_problem(&key.to_string_lossy()) {
                    self.push(&hp.key("key_file"), why);
                }
            }
            self.at_least_one(&hp.key("max_workers"), h.max_workers);
            let windows = h.platform == SshPlatform::Windows;
            for (key, dir) in [("install_dir", &h.install_dir), ("state_dir", &h.state_dir)] {
                let Some(dir) = dir else { continue };
                if dir.is_empty() {
                    self.push(&hp.key(key), "must not be empty");
                } else if dir.chars().any(char::is_control) {
                    self.push(&hp.key(key), "must not contain control characters");
                } else if windows && key == "state_dir" {
                    if let Some(why) = burst_providers::ssh::windows_path_problem(dir) {
                        self.push(&hp.key(key), why);
                    }
                }
            }
            for key in ["wake", "sleep"] {
                let argv = if key == "wake" { &h.wake } else { &h.sleep };
                if argv.first().is_some_and(String::is_empty) {
                    self.push(
                        &hp.key(key).index(0),
                        "must name a program (argv[0] is empty)",
                    );
                }
            }
            self.positive(&hp.key("wake_timeout"), h.wake_timeout);
        }
        if !ssh.hosts.is_empty() && p.min_idle > capacity {
            self.push(
                &pool.key("min_idle"),
                format!(
                    "must not exceed the ssh hosts' total max_workers (got {} > {capacity})",
                    p.min_idle
                ),
            );
        }
    }

    fn builder(&mut self, config: &Config, path: &KeyPath, b: &BuilderConfig) {
        if !is_name(&b.name) {
            self.push(
                &path.key("name"),
                format!("builder name {:?} must match [a-z0-9_-]+", b.name),
            );
        }
        let matrix_ok = self.matrix(&path.key("matrix"), b);
        let labels_ok = self.labels(&path.key("labels"), b);
        if matrix_ok && labels_ok && !config.pools.is_empty() {
            self.coverage(config, &path.key("labels"), b);
        }
        let steps = path.key("steps");
        if b.steps.is_empty() {
            self.push(&steps, "a builder needs at least one step");
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, step) in b.steps.iter().enumerate() {
            let step_path = steps.index(i);
            if let Some(first) = names.insert(&step.name, i) {
                self.push(
                    &step_path.key("name"),
                    format!(
                        "duplicate step name {:?} in builder {:?} (also steps[{first}])",
                        step.name, b.name
                    ),
                );
            }
            self.step(&step_path, step);
        }
    }

    /// Returns whether cells can be computed from the matrix.
    fn matrix(&mut self, path: &KeyPath, b: &BuilderConfig) -> bool {
        let mut ok = true;
        for (axis, values) in &b.matrix {
            let axis_path = path.key(axis);
            if !is_axis_name(axis) {
                self.push(
                    &axis_path,
                    format!("axis name {axis:?} must match [a-z0-9_]+"),
                );
            }
            if values.is_empty() {
                self.push(&axis_path, "an axis needs at least one value");
                ok = false;
            }
            let mut seen = BTreeSet::new();
            for (i, value) in values.iter().enumerate() {
                if value.is_empty() {
                    self.push(&axis_path.index(i), "matrix value must not be empty");
                } else if !seen.insert(value) {
                    self.push(
                        &axis_path.index(i),
                        format!("duplicate matrix value {value:?}"),
                    );
                }
            }
        }
        match cell_count(&b.matrix) {
            Some(n) if n <= MAX_CELLS => ok,
            n => {
                let got = n.map_or_else(|| "too many to count".to_owned(), |n| n.to_string());
                self.push(
                    path,
                    format!("the matrix has more than {MAX_CELLS} cells ({got})"),
                );
                false
            }
        }
    }

    /// Returns whether every label's placeholders name an axis.
    fn labels(&mut self, path: &KeyPath, b: &BuilderConfig) -> bool {
        let mut ok = true;
        for (i, label) in b.labels.iter().enumerate() {
            let label_path = path.index(i);
            if label.is_empty() {
                self.push(&label_path, "label must not be empty");
                continue;
            }
            match placeholders(label) {
                Err(e) => {
                    self.push(&label_path, e);
                    ok = false;
                }
                Ok(names) => {
                    for name in names.into_iter().filter(|n| !b.matrix.contains_key(*n)) {
                        let axes: Vec<&str> = b.matrix.keys().map(String::as_str).collect();
                        let axes = if axes.is_empty() {
                            "(none)".to_owned()
                        } else {
                            axes.join(", ")
                        };
                        self.push(
                            &label_path,
                            format!(
                                "{{{name}}} is not a matrix axis of builder {:?} (axes: {axes})",
                                b.name
                            ),
                        );
                        ok = false;
                    }
                }
            }
        }
        ok
    }

    /// Every cell's labels must be served by some pool, else its builds
    /// would wait forever.
    fn coverage(&mut self, config: &Config, path: &KeyPath, b: &BuilderConfig) {
        // Only axes the labels mention change the labels.
        let used: BTreeSet<&str> = b
            .labels
            .iter()
            .flat_map(|l| placeholders(l).unwrap_or_default())
            .collect();
        let sub = b
            .matrix
            .iter()
            .filter(|(a, _)| used.contains(a.as_str()))
            .map(|(a, v)| (a.clone(), v.clone()))
            .collect();
        let mut unserved: Vec<(Vec<String>, String)> = Vec::new();
        for cell in cells(&sub) {
            let Ok(labels) = cell_labels(&b.labels, &cell) else {
                continue;
            };
            if pool_for_labels(config, &labels).is_some()
                || unserved.iter().any(|(l, _)| *l == labels)
            {
                continue;
            }
            let desc = cell
                .iter()
                .map(|(a, v)| format!("{a}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            unserved.push((labels, desc));
        }
        if unserved.is_empty() {
            return;
        }
        let sets = unserved
            .iter()
            .map(|(labels, cell)| {
                let cell = if cell.is_empty() {
                    String::new()
                } else {
                    format!(" (cell {cell})")
                };
                format!("[{}]{cell}", labels.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ");
        let pools = pool_summary(config)
            .into_iter()
            .map(|(name, labels)| format!("{name} [{}]", labels.join(", ")))
            .collect::<Vec<_>>()
            .join(", ");
        self.push(
            path,
            format!(
                "no pool serves builder {:?} labels {sets}; pools: {pools}",
                b.name
            ),
        );
    }

    fn step(&mut self, path: &KeyPath, s: &StepConfig) {
        if s.name.is_empty() {
            self.push(&path.key("name"), "step name must not be empty");
        }
        match (&s.run, &s.argv) {
            (None, None) => self.push(
                path,
                format!(
                    "step {:?} needs exactly one of run or argv (neither is set)",
                    s.name
                ),
            ),
            (Some(_), Some(_)) => self.push(
                &path.key("argv"),
                format!("step {:?} sets both run and argv; keep one", s.name),
            ),
            (Some(run), None) if run.trim().is_empty() => {
                self.push(&path.key("run"), "must not be empty")
            }
            (None, Some(argv)) if argv.first().is_none_or(String::is_empty) => self.push(
                &path.key("argv"),
                "must name a program (argv[0] is missing or empty)",
            ),
            _ => {}
        }
        if let Some(shell) = &s.shell {
            if !SHELLS.contains(&shell.as_str()) {
                self.push(
                    &path.key("shell"),
                    format!("unknown shell {shell:?} (one of {})", SHELLS.join(", ")),
                );
            }
        }
        if let Some(dir) = &s.working_dir {
            if let Some(why) = working_dir_problem(dir) {
                self.push(&path.key("working_dir"), format!("{why} (got {dir:?})"));
            }
        }
        if let Some(timeout) = s.timeout {
            self.positive(&path.key("timeout"), timeout);
        }
        for name in s.env.keys().filter(|k| !is_env_name(k)) {
            self.push(
                &path.key("env").key(name),
                format!("{name:?} must match [A-Za-z_][A-Za-z0-9_]*"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[pools.local]
provider = "local"
labels = ["linux", "local"]

[[builders]]
name = "b"
labels = ["linux"]

[[builders.steps]]
name = "s"
run = "true"
"#;

    /// The issues of `BASE` plus `extra` TOML, as "key: message" lines.
    fn issues(text: &str) -> Vec<String> {
        let config: Config = match toml::from_str(text) {
            Ok(c) => c,
            Err(e) => panic!("test config does not parse: {e}"),
        };
        check(&config)
            .into_iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect()
    }

    fn has(found: &[String], want: &str) -> bool {
        found.iter().any(|f| f.starts_with(want))
    }

    #[test]
    fn base_is_valid() {
        assert_eq!(issues(BASE), Vec::<String>::new());
    }

    #[test]
    fn needs_a_pool() {
        let found = issues("");
        assert!(
            has(&found, "pools: at least one pool is required"),
            "{found:?}"
        );
    }

    #[test]
    fn names_are_checked() {
        let text = BASE
            .replace("[pools.local]", "[pools.Local]")
            .replace("name = \"b\"", "name = \"\"");
        let found = issues(&text);
        assert!(
            has(&found, "pools.Local: pool name \"Local\" must match"),
            "{found:?}"
        );
        assert!(
            has(&found, "builders[0].name: builder name \"\" must match"),
            "{found:?}"
        );
    }

    #[test]
    fn builder_names_are_unique() {
        let text = format!(
            "{BASE}\n[[builders]]\nname = \"b\"\nsteps = [{{ name = \"s\", run = \"x\" }}]\n"
        );
        let found = issues(&text);
        assert_eq!(
            found,
            ["builders[1].name: duplicate builder name \"b\" (also builders[0])"]
        );
    }

    #[test]
    fn pool_bounds() {
        let text = BASE.replace(
            "provider = \"local\"",
            "provider = \"local\"\nmax_workers = 0\nmin_idle = 1\nmax_starting = 0\nstart_timeout = \"0s\"\n\
             idle_timeout = \"0s\"\nbackoff_min = \"10s\"\nbackoff_max = \"1s\"",
        );
        let found = issues(&text);
        assert!(
            has(
                &found,
                "pools.local.max_workers: must be at least 1 (got 0)"
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "pools.local.min_idle: must not exceed max_workers (got 1 > 0)"
            ),
            "{found:?}"
        );
        assert!(
            has(&found, "pools.local.max_starting: must be at least 1"),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "pools.local.start_timeout: must be greater than zero"
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "pools.local.idle_timeout: must be greater than zero"
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "pools.local.backoff_min: must not exceed backoff_max (got 10s > 1s)"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn master_bounds() {
        let text = format!(
            "[master]\nheartbeat_interval = \"0s\"\nheartbeat_misses = 0\nadvertise_url = \"grpc://x\"\n\
             http_listen = \"127.0.0.1:9\"\ngrpc_listen = \"127.0.0.1:9\"\n{BASE}"
        );
        let found = issues(&text);
        assert!(
            has(
                &found,
                "master.heartbeat_interval: must be greater than zero"
            ),
            "{found:?}"
        );
        assert!(
            has(&found, "master.heartbeat_misses: must be at least 1"),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "master.advertise_url: must start with http:// or https://"
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "master.grpc_listen: must differ from master.http_listen"
            ),
            "{found:?}"
        );
        let ok = format!("[master]\nadvertise_url = \"https://ci\"\nhttp_listen = \"127.0.0.1:0\"\ngrpc_listen = \"127.0.0.1:0\"\n{BASE}");
        assert_eq!(issues(&ok), Vec::<String>::new());
    }

    #[test]
    fn steps_need_exactly_one_command() {
        let neither = issues(&BASE.replace("run = \"true\"", ""));
        assert_eq!(neither, ["builders[0].steps[0]: step \"s\" needs exactly one of run or argv (neither is set)"]);
        let both = issues(&BASE.replace("run = \"true\"", "run = \"true\"\nargv = [\"true\"]"));
        assert!(
            has(
                &both,
                "builders[0].steps[0].argv: step \"s\" sets both run and argv"
            ),
            "{both:?}"
        );
        let empty = issues(&BASE.replace("run = \"true\"", "argv = []"));
        assert!(
            has(&empty, "builders[0].steps[0].argv: must name a program"),
            "{empty:?}"
        );
        let blank = issues(&BASE.replace("run = \"true\"", "run = \"  \""));
        assert!(
            has(&blank, "builders[0].steps[0].run: must not be empty"),
            "{blank:?}"
        );
    }

    #[test]
    fn step_fields() {
        let text = BASE.replace(
            "name = \"s\"\nrun = \"true\"",
            "name = \"s\"\nrun = \"true\"\nshell = \"fish\"\nworking_dir = \"/abs\"\ntimeout = \"0s\"\nenv = { \"A-B\" = \"1\", OK_1 = \"2\" }\n\n\
             [[builders.steps]]\nname = \"s\"\nrun = \"x\"\nworking_dir = 'a\\..\\b'\n\n\
             [[builders.steps]]\nname = \"\"\nargv = [\"x\"]\nworking_dir = 'C:\\x'",
        );
        let found = issues(&text);
        assert!(
            has(&found, "builders[0].steps[0].shell: unknown shell \"fish\""),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "builders[0].steps[0].working_dir: must be a relative path"
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "builders[0].steps[0].timeout: must be greater than zero"
            ),
            "{found:?}"
        );
        assert!(
            has(&found, "builders[0].steps[0].env.A-B: \"A-B\" must match"),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "builders[0].steps[1].name: duplicate step name \"s\""
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "builders[0].steps[1].working_dir: must not contain '..'"
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "builders[0].steps[2].name: step name must not be empty"
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "builders[0].steps[2].working_dir: must be a relative path"
            ),
            "{found:?}"
        );
        assert_eq!(found.len(), 8, "{found:?}");
        let fine = BASE.replace(
            "run = \"true\"",
            "run = \"true\"\nshell = \"pwsh\"\nworking_dir = \"a/b..c/./d\"",
        );
        assert_eq!(issues(&fine), Vec::<String>::new());
    }

    #[test]
    fn builder_needs_steps() {
        let text = BASE.replace(
            "[[builders.steps]]\nname = \"s\"\nrun = \"true\"\n",
            "steps = []\n",
        );
        assert_eq!(
            issues(&text),
            ["builders[0].steps: a builder needs at least one step"]
        );
    }

    #[test]
    fn matrix_shape() {
        let text = BASE.replace(
            "labels = [\"linux\"]",
            "labels = [\"linux\"]\nmatrix = { OS = [\"a\"], empty = [], vals = [\"x\", \"\", \"x\"] }",
        );
        let found = issues(&text);
        assert!(
            has(
                &found,
                "builders[0].matrix.OS: axis name \"OS\" must match [a-z0-9_]+"
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "builders[0].matrix.empty: an axis needs at least one value"
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "builders[0].matrix.vals[1]: matrix value must not be empty"
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "builders[0].matrix.vals[2]: duplicate matrix value \"x\""
            ),
            "{found:?}"
        );
    }

    #[test]
    fn huge_matrix_is_refused_not_expanded() {
        let values: Vec<String> = (0..100).map(|i| format!("\"v{i}\"")).collect();
        let axis = format!("[{}]", values.join(", "));
        let text = BASE.replace(
            "labels = [\"linux\"]",
            &format!("labels = [\"linux\"]\nmatrix = {{ a = {axis}, b = {axis}, c = {axis}, d = {axis}, e = {axis} }}"),
        );
        let found = issues(&text);
        assert_eq!(
            found,
            ["builders[0].matrix: the matrix has more than 1024 cells (10000000000)"]
        );
    }

    #[test]
    fn placeholders_must_name_axes() {
        let text = BASE.replace(
            "labels = [\"linux\"]",
            "labels = [\"{os}\", \"{arch\", \"\"]",
        );
        let found = issues(&text);
        assert!(
            has(
                &found,
                "builders[0].labels[0]: {os} is not a matrix axis of builder \"b\" (axes: (none))"
            ),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                "builders[0].labels[1]: label \"{arch\" has an unclosed '{'"
            ),
            "{found:?}"
        );
        assert!(
            has(&found, "builders[0].labels[2]: label must not be empty"),
            "{found:?}"
        );
    }

    #[test]
    fn every_cell_must_have_a_pool() {
        let text = BASE.replace(
            "labels = [\"linux\"]",
            "labels = [\"{os}\", \"local\"]\nmatrix = { os = [\"linux\", \"windows\", \"mac\"], n = [\"1\", \"2\"] }",
        );
        let found = issues(&text);
        assert_eq!(
            found,
            ["builders[0].labels: no pool serves builder \"b\" labels [local, windows] (cell os=windows); \
              [local, mac] (cell os=mac); pools: local [linux, local]"]
        );
        let served = format!("{text}\n[pools.win]\nprovider = \"local\"\nlabels = [\"windows\", \"mac\", \"local\"]\n");
        assert_eq!(issues(&served), Vec::<String>::new());
    }

    #[test]
    fn validate_reports_keys_without_origin() {
        let mut config: Config = match toml::from_str(BASE) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert!(validate(&config).is_ok());
        if let Some(pool) = config.pools.get_mut("local") {
            pool.max_workers = 0;
        }
        let err = validate(&config).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("pools.local.max_workers: must be at least 1 (got 0)")
        );
    }

    const SSH: &str = r#"
[pools.ssh]
provider = "ssh"
labels = ["linux"]

[pools.ssh.ssh]
known_hosts = "/etc/burst/known_hosts"

[[pools.ssh.ssh.hosts]]
address = "10.0.0.2"

[[builders]]
name = "b"
labels = ["linux"]

[[builders.steps]]
name = "s"
run = "true"
"#;

    #[test]
    fn ssh_pool_is_valid() {
        assert_eq!(issues(SSH), Vec::<String>::new());
    }

    #[test]
    fn ssh_section_must_match_the_provider() {
        let missing = SSH.replace(
            "[pools.ssh.ssh]\nknown_hosts = \"/etc/burst/known_hosts\"\n\n[[pools.ssh.ssh.hosts]]\naddress = \"10.0.0.2\"\n",
            "",
        );
        let found = issues(&missing);
        assert!(
            has(&found, "pools.ssh.ssh: required when provider = \"ssh\""),
            "{found:?}"
        );
        let stray = SSH.replace("provider = \"ssh\"", "provider = \"local\"");
        let found = issues(&stray);
        assert!(
            has(&found, "pools.ssh.ssh: only used when provider = \"ssh\""),
            "{found:?}"
        );
    }

    #[test]
    fn ssh_hosts_are_checked() {
        let text = SSH.replace(
            "[[pools.ssh.ssh.hosts]]\naddress = \"10.0.0.2\"\n",
            "host_key_check = \"accept-new\"\nenv = { BURST_TOKEN = \"x\", \"A-B\" = \"y\" }\n\
             worker_binaries = { \"solaris-sparc\" = \"/x\", \"macos-aarch64\" = \"/y\" }\n\n\
             [[pools.ssh.ssh.hosts]]\naddress = \"10.0.0.2\"\n\n\
             [[pools.ssh.ssh.hosts]]\naddress = \"10.0.0.2\"\nmax_workers = 0\nkey_file = \"/my keys/id\"\n\n\
             [[pools.ssh.ssh.hosts]]\nname = \"win\"\naddress = \"-oProxyCommand=x\"\nport = 0\nplatform = \"windows\"\n\
             state_dir = 'C:\\%TEMP%'\ninstall_dir = \"\"\nwake = [\"\"]\nwake_timeout = \"0s\"\n",
        );
        let found = issues(&text);
        for want in [
            "pools.ssh.ssh.env.BURST_TOKEN: BURST_TOKEN is set by burst",
            "pools.ssh.ssh.env.A-B: \"A-B\" must match",
            "pools.ssh.ssh.worker_binaries.solaris-sparc: \"solaris-sparc\" must be <os>-<arch>",
            "pools.ssh.ssh.hosts[1].name: duplicate host name \"10.0.0.2\" (also hosts[0])",
            "pools.ssh.ssh.hosts[1].max_workers: must be at least 1",
            "pools.ssh.ssh.hosts[1].key_file: must not contain whitespace",
            "pools.ssh.ssh.hosts[2].address: \"-oProxyCommand=x\" is not a host name",
            "pools.ssh.ssh.hosts[2].port: must be between 1 and 65535",
            "pools.ssh.ssh.hosts[2].state_dir: must not contain '\"', '%' or '!'",
            "pools.ssh.ssh.hosts[2].install_dir: must not be empty",
            "pools.ssh.ssh.hosts[2].wake[0]: must name a program",
            "pools.ssh.ssh.hosts[2].wake_timeout: must be greater than zero",
        ] {
            assert!(has(&found, want), "missing {want:?} in {found:?}");
        }
        assert_eq!(found.len(), 12, "{found:?}");
        let min_idle = SSH.replace(
            "labels = [\"linux\"]\n\n[pools",
            "labels = [\"linux\"]\nmin_idle = 2\n\n[pools",
        );
        assert!(has(
            &issues(&min_idle),
            "pools.ssh.min_idle: must not exceed the ssh hosts' total max_workers (got 2 > 1)"
        ));
    }

    #[test]
    fn ssh_problems_name_file_and_line() {
        let text = SSH.replace(
            "address = \"10.0.0.2\"",
            "address = \"10.0.0.2\"\nmax_workers = 0",
        );
        let err =
            crate::config::load_str(&text, std::path::Path::new("ssh.toml"), &BTreeMap::new())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(
            err.contains(
                "ssh.toml:11: pools.ssh.ssh.hosts[0].max_workers: must be at least 1 (got 0)"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_ssh_example_loads() {
        let path =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/ssh.toml"));
        let config = match crate::config::load_file_with_env(path, &BTreeMap::new()) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let mac = config.pools["mac"].ssh.as_ref().expect("ssh section");
        assert_eq!(mac.hosts[0].wake, ["wakeonlan", "a4:83:e7:00:00:01"]);
        assert!(mac.worker_binaries.contains_key("macos-aarch64"));
        let win = config.pools["windows"].ssh.as_ref().expect("ssh section");
        assert_eq!(win.hosts[0].state_dir.as_deref(), Some("C:\\burst\\state"));
        assert_eq!(config.builders[0].name, "hello");
    }

    #[test]
    fn name_rules() {
        assert!(is_name("a-b_9") && !is_name("") && !is_name("A") && !is_name("a.b"));
        assert!(
            is_env_name("_A1")
                && is_env_name("ab")
                && !is_env_name("1A")
                && !is_env_name("")
                && !is_env_name("A-B")
        );
    }
}
