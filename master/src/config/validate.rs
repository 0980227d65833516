//! Semantic checks serde cannot express. Every problem is collected, each
//! tied to the key it is about, so a broken config is fixed in one pass.

use std::collections::{BTreeMap, BTreeSet};

use burst_common::env_policy;
use burst_providers::config::{is_env_name, Check, Context, Scope};

use super::error::{ConfigError, Problem};
use super::labels::{placeholders, pool_for_labels, pool_summary};
use super::locate::KeyPath;
use super::matrix::{cell_count, MAX_CELLS};
use super::params::{compile, one_line, rule_broken};
use super::pool::PoolConfig;
use super::schema::{BuilderConfig, Config, MasterConfig, StepConfig};
use super::tls::TlsConfig;
use crate::tls::FileProblem;

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
        v.pool(&pools.key(name), name, pool, &config.master);
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
    v.issues.extend(super::secrets::check(config));
    v.issues.extend(super::sources::check(config));
    v.issues.extend(super::reporters::check(config));
    v.issues.extend(super::schedules::check(config));
    v.issues.extend(super::retention::check(config));
    v.issues.extend(super::artifacts::check(config));
    v.issues.extend(super::simulate::check(config));
    v.issues.extend(super::caches::check(config));
    v.issues.extend(super::github::check(config));
    v.issues.extend(super::cost::check(config));
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

/// What a pool's provider section is checked against. The master id is
/// only known to a running daemon, and no check needs it.
pub(crate) fn validation_context(name: &str, p: &PoolConfig, master: &MasterConfig) -> Context {
    Context {
        pool: name.to_owned(),
        master_id: String::new(),
        state_dir: master.state_dir.clone(),
        advertise_url: master.advertise_url(),
        grpc_listen: master.grpc_listen,
        min_idle: p.min_idle,
        backoff_min: p.backoff_min.get(),
        backoff_max: p.backoff_max,
        cache_volumes: Vec::new(),
    }
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

    /// The field's own check (see `burst_providers::config::Check`).
    fn check(&mut self, path: &KeyPath, value: &impl Check) {
        if let Some(message) = value.problem() {
            self.push(path, message);
        }
    }

    fn master(&mut self, m: &MasterConfig) {
        let path = KeyPath::root().key("master");
        if let Some(problem) = m.id.as_deref().and_then(crate::identity::problem) {
            self.push(&path.key("id"), problem);
        }
        self.check(&path.key("heartbeat_interval"), &m.heartbeat_interval);
        self.check(&path.key("heartbeat_misses"), &m.heartbeat_misses);
        self.check(&path.key("step_lease"), &m.step_lease);
        // Renewed once per heartbeat: a lease shorter than two of them would
        // run out between renewals of a healthy worker.
        if m.step_lease.get() < m.heartbeat_interval.get() * 2 {
            self.push(
                &path.key("step_lease"),
                format!(
                    "must be at least twice heartbeat_interval ({}), or healthy workers would kill their steps between renewals",
                    humantime::format_duration(m.heartbeat_interval.get())
                ),
            );
        }
        self.check(&path.key("advertise_url"), &m.advertise_url);
        self.tls(&path, m);
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

    /// The certificate files exist and fit, and the advertised URL's scheme
    /// says what the worker endpoint serves (a worker told `https://`
    /// refuses clear text, one told `http://` would send its token in it).
    fn tls(&mut self, path: &KeyPath, m: &MasterConfig) {
        if let Some(TlsConfig::Files { cert, key }) = &m.tls {
            match crate::tls::check_files(cert, key) {
                Ok(()) => {}
                Err(FileProblem::Cert(why)) => self.push(&path.key("tls").key("cert"), why),
                Err(FileProblem::Key(why)) => self.push(&path.key("tls").key("key"), why),
            }
        }
        let Some(url) = &m.advertise_url else { return };
        let url = url.to_string();
        if m.tls.is_some() && url.starts_with("http://") {
            self.push(
                &path.key("advertise_url"),
                "must be https:// when master.tls is set: workers would dial the TLS \
                 endpoint in clear text",
            );
        } else if m.tls.is_none() && url.starts_with("https://") {
            self.push(
                &path.key("advertise_url"),
                "https:// needs master.tls (e.g. tls = \"self-signed\"): the master serves \
                 the worker endpoint's TLS itself",
            );
        }
    }

    fn pool(&mut self, path: &KeyPath, name: &str, p: &PoolConfig, master: &MasterConfig) {
        if !is_name(name) {
            self.push(path, format!("pool name {name:?} must match [a-z0-9_-]+"));
        }
        self.check(&path.key("max_workers"), &p.max_workers);
        if p.min_idle > p.max_workers.get() {
            self.push(
                &path.key("min_idle"),
                format!(
                    "must not exceed max_workers (got {} > {})",
                    p.min_idle, p.max_workers
                ),
            );
        }
        self.check(&path.key("max_starting"), &p.max_starting);
        self.issues.extend(super::warm::check(path, p));
        self.issues.extend(super::cost::check_pool(path, p));
        self.check(&path.key("start_timeout"), &p.start_timeout);
        self.check(&path.key("idle_timeout"), &p.idle_timeout);
        self.check(&path.key("backoff_min"), &p.backoff_min);
        if p.backoff_min.get() > p.backoff_max {
            self.push(
                &path.key("backoff_min"),
                format!(
                    "must not exceed backoff_max (got {} > {})",
                    humantime::format_duration(p.backoff_min.get()),
                    humantime::format_duration(p.backoff_max)
                ),
            );
        }
        for (i, label) in p.labels.iter().enumerate() {
            if label.is_empty() {
                self.push(&path.key("labels").index(i), "label must not be empty");
            } else if label.starts_with("burst:") {
                self.push(
                    &path.key("labels").index(i),
                    format!("label {label:?}: labels starting with \"burst:\" are burst's own (every pool carries burst:pool=<name>)"),
                );
            }
        }
        let ctx = validation_context(name, p, master);
        for problem in p.provider.validate(&ctx) {
            let base = match problem.scope {
                Scope::Pool => path.clone(),
                Scope::Root => KeyPath::root(),
            };
            self.push(&base.join(&problem.path), problem.message);
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
        self.params(&path.key("params"), b);
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
            self.step(config, &step_path, step);
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
            } else if let Some(why) = env_policy::submit_refusal(&axis.to_uppercase()) {
                // A submit may pick an axis's value, and the axis becomes
                // an environment variable.
                self.push(&axis_path, format!("axis name {axis:?} refused: {why}"));
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

    /// Each declared param: a name a submit may set, rules that compile, and
    /// a default that follows them.
    fn params(&mut self, path: &KeyPath, b: &BuilderConfig) {
        for (name, rules) in &b.params {
            let param = path.key(name);
            if !is_env_name(name) {
                self.push(
                    &param,
                    format!("{name:?} must match [A-Za-z_][A-Za-z0-9_]*"),
                );
                continue;
            }
            if let Some(why) = env_policy::submit_refusal(name) {
                self.push(&param, why);
                continue;
            }
            if b.matrix.contains_key(name) {
                self.push(
                    &param,
                    format!("{name:?} is a matrix axis; its values are already declared there"),
                );
            }
            if rules.allowed.as_ref().is_some_and(Vec::is_empty) {
                self.push(&param.key("allowed"), "must list at least one value");
            }
            if let Some(pattern) = &rules.regex {
                if let Err(e) = compile(pattern) {
                    self.push(
                        &param.key("regex"),
                        format!("invalid regex: {}", one_line(&e)),
                    );
                    continue;
                }
            }
            if let Some(default) = &rules.default {
                if let Some(rule) = rule_broken(rules, default) {
                    self.push(&param.key("default"), format!("default {default:?} {rule}"));
                }
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
        let mut unserved: Vec<(Vec<String>, String)> = Vec::new();
        // Only axes the labels mention change the labels.
        for (cell, labels) in super::labels::label_cells(b) {
            let Ok(labels) = labels else {
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

    /// A checkout step: nothing else to run, a repository URL git may be
    /// given, a declared token.
    fn checkout_step(&mut self, config: &Config, path: &KeyPath, s: &StepConfig) {
        for (key, set) in [
            ("run", s.run.is_some()),
            ("argv", s.argv.is_some()),
            ("run_windows", s.run_windows.is_some()),
            ("shell", s.shell.is_some()),
        ] {
            if set {
                self.push(
                    &path.key(key),
                    format!("a checkout step runs git itself; {key} does not apply"),
                );
            }
        }
        if let Some(why) = s.url.as_deref().and_then(super::sources::url_problem) {
            self.push(&path.key("url"), why);
        }
        if let Some(name) = &s.token {
            if !config.secrets.contains_key(name) {
                self.push(
                    &path.key("token"),
                    format!("unknown secret {name:?} (declare it under [secrets])"),
                );
            }
        }
    }

    fn step(&mut self, config: &Config, path: &KeyPath, s: &StepConfig) {
        if s.name.is_empty() {
            self.push(&path.key("name"), "step name must not be empty");
        }
        if let Some(uses) = &s.uses {
            if uses != super::schema::USES_CHECKOUT {
                self.push(
                    &path.key("uses"),
                    format!("unknown step kind {uses:?} (the one built in is \"checkout\")"),
                );
            }
        }
        if s.is_checkout() {
            self.checkout_step(config, path, s);
        } else {
            for (key, set) in [
                ("url", s.url.is_some()),
                ("full_history", s.full_history),
                ("submodules", s.submodules),
                ("token", s.token.is_some()),
            ] {
                if set {
                    self.push(
                        &path.key(key),
                        format!("{key} applies to a checkout step only (checkout = true)"),
                    );
                }
            }
        }
        match (&s.run, &s.argv) {
            _ if s.is_checkout() => {}
            (None, None) => self.push(
                path,
                format!(
                    "step {:?} needs exactly one of run, argv or checkout = true (none is set)",
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
        self.check(&path.key("timeout"), &s.timeout);
        for name in s.env.keys() {
            let key = path.key("env").key(name);
            if !is_env_name(name) {
                self.push(&key, format!("{name:?} must match [A-Za-z_][A-Za-z0-9_]*"));
            } else if let Some(why) = env_policy::config_refusal(name) {
                self.push(&key, why);
            }
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

    fn ec2_section<'c>(config: &'c Config, pool: &str) -> &'c burst_providers::ec2::Ec2PoolConfig {
        match config.pools[pool].provider.config() {
            Some(burst_providers::ProviderConfig::Ec2(e)) => e,
            other => panic!("not an ec2 section: {other:?}"),
        }
    }

    fn ssh_section<'c>(config: &'c Config, pool: &str) -> &'c burst_providers::ssh::SshPoolConfig {
        match config.pools[pool].provider.config() {
            Some(burst_providers::ProviderConfig::Ssh(s)) => s,
            other => panic!("not an ssh section: {other:?}"),
        }
    }

    fn has(found: &[String], want: &str) -> bool {
        found.iter().any(|f| f.starts_with(want))
    }

    #[test]
    fn params_axes_and_step_env_follow_the_env_policy() {
        let text = BASE.replace(
            "name = \"b\"\n",
            "name = \"b\"\nmatrix = { path = [\"a\"], os = [\"x\"] }\n\
             params = { os = {}, MODE = { allowed = [] }, ok = { allowed = [\"1\"], default = \"2\" }, \
             \"A-B\" = {}, BASH_ENV = {} }\n",
        )
        .replace(
            "run = \"true\"",
            "run = \"true\"\nenv = { PATH = \"/opt/bin\", burst_x = \"1\", DYLD_X = \"1\" }",
        );
        let found = issues(&text);
        for want in [
            "builders[0].matrix.path: axis name \"path\" refused: PATH may not be set by a submit",
            "builders[0].params.os: \"os\" is a matrix axis",
            "builders[0].params.MODE.allowed: must list at least one value",
            "builders[0].params.ok.default: default \"2\" must be one of: 1",
            "builders[0].params.A-B: \"A-B\" must match",
            "builders[0].params.BASH_ENV: BASH_ENV may not be set by a submit",
            "builders[0].steps[0].env.burst_x: burst_x may not be set: BURST_*",
            "builders[0].steps[0].env.DYLD_X: DYLD_X may not be set: DYLD_*",
        ] {
            assert!(has(&found, want), "{want} in {found:?}");
        }
        // Config is trusted with PATH; only the labels' coverage remains.
        assert!(!found.iter().any(|f| f.contains("env.PATH")), "{found:?}");
        assert_eq!(found.len(), 8, "{found:?}");
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
    fn step_lease_is_checked() {
        let text = format!("[master]\nstep_lease = \"0s\"\n{BASE}");
        let found = issues(&text);
        assert!(
            has(&found, "master.step_lease: must be greater than zero"),
            "{found:?}"
        );
        let text = format!("[master]\nheartbeat_interval = \"10s\"\nstep_lease = \"15s\"\n{BASE}");
        let found = issues(&text);
        assert!(
            has(
                &found,
                "master.step_lease: must be at least twice heartbeat_interval (10s)"
            ),
            "{found:?}"
        );
        let text = format!("[master]\nstep_lease = \"20s\"\n{BASE}");
        assert!(issues(&text).is_empty(), "{:?}", issues(&text));
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
        let ok = format!("[master]\nadvertise_url = \"http://ci\"\nhttp_listen = \"127.0.0.1:0\"\ngrpc_listen = \"127.0.0.1:0\"\n{BASE}");
        assert_eq!(issues(&ok), Vec::<String>::new());
    }

    #[test]
    fn master_id_is_checked() {
        let bad = issues(&format!("[master]\nid = \"Not/An Id\"\n{BASE}"));
        assert!(
            has(&bad, "master.id: a master id must be 1 to 40 characters"),
            "{bad:?}"
        );
        let ok = issues(&format!("[master]\nid = \"ci-master-1\"\n{BASE}"));
        assert_eq!(ok, Vec::<String>::new());
    }

    #[test]
    fn checkout_steps_are_checked() {
        let ok = |step: &str| issues(&BASE.replace("run = \"true\"", step));
        assert_eq!(ok("checkout = true"), Vec::<String>::new());
        assert_eq!(
            ok("uses = \"checkout\"\nfull_history = true\nsubmodules = true\nurl = \"https://git.example.com/a.git\"\nworking_dir = \"src\""),
            Vec::<String>::new()
        );
        let unknown = ok("uses = \"clone\"");
        assert!(
            has(
                &unknown,
                "builders[0].steps[0].uses: unknown step kind \"clone\""
            ),
            "{unknown:?}"
        );
        let both = ok("checkout = true\nrun = \"make\"\nshell = \"bash\"");
        assert!(
            has(
                &both,
                "builders[0].steps[0].run: a checkout step runs git itself"
            ),
            "{both:?}"
        );
        assert!(
            has(
                &both,
                "builders[0].steps[0].shell: a checkout step runs git itself"
            ),
            "{both:?}"
        );
        let url = ok("checkout = true\nurl = \"https://user:pw@git.example.com/a.git\"");
        assert!(
            has(&url, "builders[0].steps[0].url: must not carry credentials"),
            "{url:?}"
        );
        let url = ok("checkout = true\nurl = \"--upload-pack=evil\"");
        assert!(has(&url, "builders[0].steps[0].url:"), "{url:?}");
        let token = ok("checkout = true\ntoken = \"NOPE\"");
        assert!(
            has(
                &token,
                "builders[0].steps[0].token: unknown secret \"NOPE\""
            ),
            "{token:?}"
        );
        let stray = ok("run = \"true\"\nsubmodules = true\ntoken = \"X\"");
        assert!(
            has(
                &stray,
                "builders[0].steps[0].submodules: submodules applies to a checkout step only"
            ),
            "{stray:?}"
        );
        assert!(
            has(
                &stray,
                "builders[0].steps[0].token: token applies to a checkout step only"
            ),
            "{stray:?}"
        );
    }

    #[test]
    fn a_checkout_step_becomes_a_checkout_command_with_its_token_as_a_secret() {
        use crate::model::{CheckoutSpec, Command};
        let step: StepConfig = toml::from_str(
            "name = \"co\"\nuses = \"checkout\"\nfull_history = true\ntoken = \"GIT_TOKEN\"",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let spec = step.to_spec();
        assert_eq!(
            spec.command,
            Command::Checkout(CheckoutSpec {
                url: None,
                full: true,
                submodules: false,
                secret: Some("GIT_TOKEN".into()),
            })
        );
        assert_eq!(spec.secrets, ["GIT_TOKEN"]);
    }

    #[test]
    fn steps_need_exactly_one_command() {
        let neither = issues(&BASE.replace("run = \"true\"", ""));
        assert_eq!(neither, ["builders[0].steps[0]: step \"s\" needs exactly one of run, argv or checkout = true (none is set)"]);
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
            pool.max_workers = 0.into();
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

    const EC2: &str = r#"
[pools.ec2]
provider = "ec2"
labels = ["linux"]

[pools.ec2.ec2]
region = "us-east-1"
ami = "ami-0123456789abcdef0"
instance_types = ["t3.small", "t3a.small"]
subnets = ["subnet-1"]
security_groups = ["sg-1"]
price_per_hour = { "t3.small" = 0.0208 }

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
    fn ec2_pool_is_valid_with_defaults() {
        assert_eq!(issues(EC2), Vec::<String>::new());
        let config: Config = toml::from_str(EC2).expect("parse");
        let ec2 = ec2_section(&config, "ec2");
        assert_eq!(ec2.market, burst_providers::ec2::Market::SpotWithFallback);
        assert_eq!(
            ec2.fallback_on,
            [
                "InsufficientInstanceCapacity",
                "SpotMaxPriceTooLow",
                "MaxSpotInstanceCountExceeded"
            ]
        );
        assert_eq!(ec2.imds_url, "http://169.254.169.254");
    }

    #[test]
    fn ec2_section_must_match_the_provider() {
        let missing = EC2.replace("[pools.ec2.ec2]", "[pools.ec2.local]").replace(
            "region = \"us-east-1\"\nami = \"ami-0123456789abcdef0\"\ninstance_types = [\"t3.small\", \"t3a.small\"]\nsubnets = [\"subnet-1\"]\nsecurity_groups = [\"sg-1\"]\nprice_per_hour = { \"t3.small\" = 0.0208 }\n",
            "",
        );
        // The empty [pools.ec2.local] left behind is now refused too: a
        // section of a provider the pool does not use.
        assert_eq!(
            issues(&missing),
            [
                "pools.ec2.local: only used when provider = \"local\"; this pool's provider is \"ec2\": \
                 remove [pools.ec2.local] or change the provider",
                "pools.ec2.provider: provider = \"ec2\" needs a [pools.ec2.ec2] section"
            ]
        );
        let stray = EC2.replace("provider = \"ec2\"", "provider = \"local\"");
        assert_eq!(
            issues(&stray),
            ["pools.ec2.ec2: only used when provider = \"ec2\"; this pool's provider is \"local\": \
              remove [pools.ec2.ec2] or change the provider"]
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

    #[cfg(unix)]
    #[test]
    fn an_unknown_local_user_names_file_line_and_key() {
        let text =
            "[pools.local]\nprovider = \"local\"\nlabels = [\"linux\"]\nkeep_workspace = true\n\n\
                    [pools.local.local]\nuser = \"no-such-burst-user\"\n";
        let err =
            crate::config::load_str(text, std::path::Path::new("local.toml"), &BTreeMap::new())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(
            err.contains(
                "local.toml:7: pools.local.local.user: no such user \"no-such-burst-user\""
            ),
            "{err}"
        );
        let bad = text.replace("keep_workspace = true", "keep_workspace = \"yes\"");
        let err =
            crate::config::load_str(&bad, std::path::Path::new("local.toml"), &BTreeMap::new())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(err.contains("local.toml:4"), "{err}");
    }

    #[test]
    fn the_ssh_example_loads() {
        let path =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/ssh.toml"));
        let config = match crate::config::load_file_with_env(path, &BTreeMap::new()) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let mac = ssh_section(&config, "mac");
        assert_eq!(mac.hosts[0].wake, ["wakeonlan", "a4:83:e7:00:00:01"]);
        assert!(mac.worker_binaries.contains_key("macos-aarch64"));
        let win = ssh_section(&config, "windows");
        assert_eq!(win.hosts[0].state_dir.as_deref(), Some("C:\\burst\\state"));
        assert_eq!(config.builders[0].name, "hello");
    }

    #[test]
    fn ec2_settings_are_checked() {
        let text = EC2
            .replace("region = \"us-east-1\"", "region = \"US East\"\nendpoint_url = \"localhost:5000\"\nmarket = \"on_demand\"\nspot_max_price = 0.1\nimds_url = \"https://x\"\nroot_volume_size = 0\nroot_volume_type = \"ssd\"\ntags = { \"burst:pool\" = \"x\" }\napi_retry_min = \"1m\"\napi_retry_max = \"1s\"")
            .replace("ami-0123456789abcdef0", "0123")
            .replace("[\"t3.small\", \"t3a.small\"]", "[\"t3.small\", \"t3.small\", \"large\"]")
            .replace("[\"subnet-1\"]", "[\"sn-1\"]")
            .replace("[\"sg-1\"]", "[\"\"]")
            .replace("\"t3.small\" = 0.0208", "\"t3.smal\" = 0.0208");
        let found = issues(&text);
        for want in [
            "pools.ec2.ec2.region: must be a region name",
            "pools.ec2.ec2.endpoint_url: must start with http:// or https://",
            "pools.ec2.ec2.ami: must be an id starting with \"ami-\"",
            "pools.ec2.ec2.instance_types[1]: duplicate entry \"t3.small\"",
            "pools.ec2.ec2.instance_types[2]: \"large\" is not an instance type",
            "pools.ec2.ec2.subnets[0]: must be an id starting with \"subnet-\"",
            "pools.ec2.ec2.security_groups[0]: must not be empty",
            "pools.ec2.ec2.root_volume_size: must be 1 to 65536 GiB",
            "pools.ec2.ec2.root_volume_type: unknown volume type \"ssd\"",
            "pools.ec2.ec2.tags.\"burst:pool\": tag key \"burst:pool\" is reserved",
            "pools.ec2.ec2.spot_max_price: only applies when market is spot",
            "pools.ec2.ec2.imds_url: must start with http://",
            "pools.ec2.ec2.price_per_hour.\"t3.smal\": \"t3.smal\" is not one of instance_types",
            "pools.ec2.ec2.api_retry_min: must not exceed api_retry_max",
        ] {
            assert!(has(&found, want), "missing {want:?} in {found:?}");
        }
        assert_eq!(found.len(), 14, "{found:?}");
    }

    #[test]
    fn ec2_needs_something_to_launch() {
        let text = EC2
            .replace("ami = \"ami-0123456789abcdef0\"\n", "")
            .replace("instance_types = [\"t3.small\", \"t3a.small\"]\n", "")
            .replace("price_per_hour = { \"t3.small\" = 0.0208 }\n", "");
        let found = issues(&text);
        assert!(
            has(&found, "pools.ec2.ec2: set ami or launch_template"),
            "{found:?}"
        );
        assert!(
            has(&found, "pools.ec2.ec2.instance_types: list at least one"),
            "{found:?}"
        );
        let lt = text.replace(
            "region = \"us-east-1\"",
            "region = \"us-east-1\"\nlaunch_template = { name = \"burst-linux\", version = \"$Latest\" }",
        );
        assert_eq!(issues(&lt), Vec::<String>::new());
        let both = text.replace(
            "region = \"us-east-1\"",
            "region = \"us-east-1\"\nlaunch_template = { id = \"lt-1\", name = \"x\" }\nroot_volume_size = 30",
        );
        let found = issues(&both);
        assert!(
            has(
                &found,
                "pools.ec2.ec2.launch_template: set exactly one of id and name"
            ),
            "{found:?}"
        );
        assert!(
            has(&found, "pools.ec2.ec2.root_device_name: is required"),
            "{found:?}"
        );
    }

    #[test]
    fn name_rules() {
        // is_env_name's rules are tested beside it, in burst_providers::config::env.
        assert!(is_name("a-b_9") && !is_name("") && !is_name("A") && !is_name("a.b"));
    }
}
