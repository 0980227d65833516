//! Reading a config: the TOML text, then environment overrides, then the
//! semantic checks. Every error names the file and line, or the variable.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use config::{Environment, File, FileFormat};

use super::error::{ConfigError, Origin, Problem};
use super::locate::{KeyPath, Locator};
use super::schema::Config;
use super::validate::check;

/// Environment overrides: `BURST__MASTER__HTTP_LISTEN` sets `master.http_listen`.
pub const ENV_PREFIX: &str = "BURST";
pub const ENV_SEPARATOR: &str = "__";

/// Loads `path` with the process's `BURST__*` overrides applied, and checks it.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_with_env(path, &env_overrides())
}

/// Like `load_file`, with the overrides given instead of read from the
/// process environment.
pub fn load_file_with_env(
    path: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    load_str(&text, path, env)
}

/// Loads config text; `name` is what errors call the file. `env` holds
/// `BURST__*` overrides (variable name -> value); other names are ignored.
/// `[secrets]` are read from their files and from the process environment.
pub fn load_str(
    text: &str,
    name: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Config, ConfigError> {
    load_str_with_secret_env(text, name, env, &|var| std::env::var_os(var))
}

/// Like `load_str`, with `{ env = "…" }` secrets looked up in `secret_env`.
pub(crate) fn load_str_with_secret_env(
    text: &str,
    name: &Path,
    env: &BTreeMap<String, String>,
    secret_env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, ConfigError> {
    let locator = Locator::new(text);
    let file_problem = |line: Option<usize>, key: String, message: String| Problem {
        origin: Some(Origin::File {
            path: name.to_owned(),
            line,
        }),
        key,
        message,
    };

    // Strictly first: toml knows where things are, the config crate does not.
    if let Err(e) = toml::from_str::<Config>(text) {
        let offset = e.span().map(|s| s.start);
        let key = offset
            .and_then(|o| locator.key_at(o))
            .map(|k| k.to_string())
            .unwrap_or_default();
        let line = offset.map(|o| locator.line_at(o));
        // One problem per line: fold toml's multi-line messages.
        let message = e.message().trim_end().replace('\n', "; ");
        return Err(ConfigError::Invalid(vec![file_problem(line, key, message)]));
    }

    let mut config = match merge(text, env) {
        Ok(config) => config,
        Err(e) => {
            // Without overrides the file alone is at fault (toml accepted it,
            // so the two parsers disagree).
            if let Err(e) = merge(text, &BTreeMap::new()) {
                let message = format!("failed to load: {}", plain_message(&e));
                let problem = file_problem(None, config_key(&e), message);
                return Err(ConfigError::Invalid(vec![problem]));
            }
            return Err(ConfigError::Invalid(blame_env(text, env, &e)));
        }
    };

    let overrides: Vec<(KeyPath, &String)> = env.keys().map(|var| (env_key(var), var)).collect();
    let mut issues = check(&config);
    let (secrets, unreadable) = super::secrets::read(&config, secret_env);
    issues.extend(unreadable);
    config.secret_values = secrets;
    let problems: Vec<Problem> = issues
        .into_iter()
        .map(|issue| {
            let found = locator.find(&issue.path);
            let in_file = found.map_or(0, |(depth, _)| depth);
            // Blame a variable that sets this very key, or one that names a
            // section the file lacks (a pool only the environment defines).
            let var = overrides.iter().find(|(key, _)| {
                let common = key.common_len(&issue.path);
                common == key.len() || (common >= 2 && common > in_file)
            });
            let origin = match var {
                Some((_, var)) => Origin::Env {
                    var: (*var).clone(),
                },
                None => Origin::File {
                    path: name.to_owned(),
                    line: found.map(|(_, line)| line),
                },
            };
            Problem {
                origin: Some(origin),
                key: issue.path.to_string(),
                message: issue.message,
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// The process's `BURST__*` variables (matched case-insensitively, as the
/// config crate does).
pub fn env_overrides() -> BTreeMap<String, String> {
    let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}").to_lowercase();
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            // A non-UTF-8 value is kept (lossily) rather than silently dropped.
            k.to_lowercase()
                .starts_with(&prefix)
                .then(|| (k, v.to_string_lossy().into_owned()))
        })
        .collect()
}

/// The file plus overrides, through the config crate.
fn merge(text: &str, env: &BTreeMap<String, String>) -> Result<Config, config::ConfigError> {
    let vars: config::Map<String, String> =
        env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    config::Config::builder()
        .add_source(File::from_str(text, FileFormat::Toml))
        .add_source(
            Environment::with_prefix(ENV_PREFIX)
                .separator(ENV_SEPARATOR)
                // Variables are strings; parsed so numbers reach integer fields.
                .try_parsing(true)
                .source(Some(vars)),
        )
        .build()?
        .try_deserialize()
}

/// The key a variable sets: `BURST__POOLS__LOCAL__MAX_WORKERS` →
/// `pools.local.max_workers`.
fn env_key(var: &str) -> KeyPath {
    let lower = var.to_lowercase();
    let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}").to_lowercase();
    let rest = lower.strip_prefix(&prefix).unwrap_or(&lower);
    KeyPath::from_keys(rest.split(ENV_SEPARATOR))
}

/// Finds which overrides break the merge by trying each alone; the config
/// crate's own error names the key but not the variable.
fn blame_env(
    text: &str,
    env: &BTreeMap<String, String>,
    all: &config::ConfigError,
) -> Vec<Problem> {
    let blamed: Vec<Problem> = env
        .iter()
        .filter_map(|(var, value)| {
            let one = BTreeMap::from([(var.clone(), value.clone())]);
            let e = merge(text, &one).err()?;
            Some(Problem {
                origin: Some(Origin::Env { var: var.clone() }),
                key: env_key(var).to_string(),
                message: format!("{} (value {value:?})", plain_message(&e)),
            })
        })
        .collect();
    if !blamed.is_empty() {
        return blamed;
    }
    // Only a combination fails: name them all.
    let vars = env.keys().cloned().collect::<Vec<_>>().join(", ");
    vec![Problem {
        origin: None,
        key: config_key(all),
        message: format!(
            "failed to apply environment overrides {vars}: {}",
            plain_message(all)
        ),
    }]
}

/// The config crate's message without its " for key ... in ..." suffix.
fn plain_message(e: &config::ConfigError) -> String {
    match e {
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => {
            format!("invalid type: {unexpected}, expected {expected}")
        }
        config::ConfigError::At { error, .. } => plain_message(error),
        config::ConfigError::NotFound(key) => format!("missing field {key:?}"),
        other => other.to_string(),
    }
}

fn config_key(e: &config::ConfigError) -> String {
    match e {
        config::ConfigError::Type { key, .. } | config::ConfigError::At { key, .. } => {
            key.clone().unwrap_or_default()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const GOOD: &str = r#"
[master]
http_listen = "127.0.0.1:8480"

[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 4

[[builders]]
name = "b"
labels = ["linux"]

[[builders.steps]]
name = "s"
run = "true"
"#;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Loads `text` from a file and returns the error's display, which must
    /// start with the file's name.
    fn load_err(text: &str, vars: &[(&str, &str)]) -> (String, Vec<Problem>) {
        let file = write(text);
        let err = load_file_with_env(file.path(), &env(vars)).unwrap_err();
        let shown = err.to_string();
        let name = file.path().display().to_string();
        (shown.replace(&name, "FILE"), err.problems().to_vec())
    }

    #[test]
    fn good_file_loads() {
        let file = write(GOOD);
        let config = load_file_with_env(file.path(), &BTreeMap::new()).unwrap();
        assert_eq!(config.pools["local"].max_workers, 4);
        assert_eq!(config.builders[0].steps[0].run.as_deref(), Some("true"));
    }

    #[test]
    fn load_file_reads_the_quickstart() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/quickstart.toml"
        ));
        let config = load_file(path).unwrap();
        assert_eq!(config.builders[0].name, "hello");
    }

    #[test]
    fn load_file_reads_the_ec2_example() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/ec2.toml"));
        let config = load_file(path).unwrap();
        let Some(burst_providers::ProviderConfig::Ec2(ec2)) = config.pools["ec2"].provider.config()
        else {
            panic!("not an ec2 section")
        };
        assert_eq!(ec2.market, burst_providers::ec2::Market::SpotWithFallback);
        assert_eq!(config.builders[0].name, "hello");
    }

    #[test]
    fn missing_file_names_it() {
        let err =
            load_file_with_env(Path::new("/no/such/burst.toml"), &BTreeMap::new()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("failed to read config file /no/such/burst.toml: "),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("max_workers = 4", "max_wokers = 4");
        let (shown, problems) = load_err(&text, &[]);
        assert!(
            shown.starts_with("FILE:8: pools.local.max_wokers: unknown field `max_wokers`"),
            "{shown}"
        );
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn ec2_problems_name_file_line_and_key() {
        let text = "[pools.ec2]\nprovider = \"ec2\"\n\n[pools.ec2.ec2]\nregion = \"us-east-1\"\n\
                    ami = \"ami-1\"\ninstance_types = [\"t3.micro\"]\nsubnets = [\"net-1\"]\n\
                    market = \"sometimes\"\n";
        let (shown, _) = load_err(text, &[]);
        assert!(
            shown.starts_with("FILE:9: pools.ec2.ec2.market: unknown variant `sometimes`"),
            "{shown}"
        );
        let (shown, _) = load_err(&text.replace("market = \"sometimes\"\n", ""), &[]);
        assert!(
            shown.starts_with(
                "FILE:8: pools.ec2.ec2.subnets[0]: must be an id starting with \"subnet-\""
            ),
            "{shown}"
        );
    }

    #[test]
    fn unknown_key_in_a_step() {
        let text = GOOD.replace("run = \"true\"", "run = \"true\"\nshel = \"bash\"");
        let (shown, _) = load_err(&text, &[]);
        assert!(
            shown.starts_with("FILE:17: builders[0].steps[0].shel: unknown field `shel`"),
            "{shown}"
        );
    }

    #[test]
    fn wrong_type_names_line_and_key() {
        let text = GOOD.replace("max_workers = 4", "max_workers = \"x\"");
        let (shown, _) = load_err(&text, &[]);
        assert!(
            shown.starts_with("FILE:8: pools.local.max_workers: invalid type: string \"x\""),
            "{shown}"
        );
    }

    #[test]
    fn bad_duration_names_line_and_key() {
        let text = GOOD.replace("max_workers = 4", "idle_timeout = \"soon\"");
        let (shown, _) = load_err(&text, &[]);
        assert!(
            shown.starts_with("FILE:8: pools.local.idle_timeout: "),
            "{shown}"
        );
    }

    #[test]
    fn syntax_error_names_line() {
        let text = GOOD.replace("max_workers = 4", "max_workers = ");
        let (shown, _) = load_err(&text, &[]);
        assert!(shown.starts_with("FILE:8: "), "{shown}");
        assert_eq!(shown.lines().count(), 1, "{shown}");
    }

    #[test]
    fn missing_required_key_names_its_table() {
        let text = GOOD.replace("provider = \"local\"\n", "");
        let (shown, _) = load_err(&text, &[]);
        assert!(
            shown.starts_with("FILE:5: pools.local: missing field `provider`"),
            "{shown}"
        );
    }

    #[test]
    fn zero_max_workers_names_line_key_and_bound() {
        let text = GOOD.replace("max_workers = 4", "max_workers = 0");
        let (shown, _) = load_err(&text, &[]);
        assert_eq!(
            shown,
            "FILE:8: pools.local.max_workers: must be at least 1 (got 0)"
        );
    }

    #[test]
    fn min_idle_above_max_workers() {
        let text = GOOD.replace("max_workers = 4", "max_workers = 2\nmin_idle = 3");
        let (shown, _) = load_err(&text, &[]);
        assert_eq!(
            shown,
            "FILE:9: pools.local.min_idle: must not exceed max_workers (got 3 > 2)"
        );
    }

    #[test]
    fn step_without_run_or_argv() {
        let text = GOOD.replace("run = \"true\"", "");
        let (shown, _) = load_err(&text, &[]);
        assert_eq!(shown, "FILE:14: builders[0].steps[0]: step \"s\" needs exactly one of run, argv or checkout = true (none is set)");
    }

    #[test]
    fn builder_labels_no_pool_serves() {
        let text = GOOD.replace(
            "labels = [\"linux\"]\n\n[[builders.steps]]",
            "labels = [\"windows\"]\n\n[[builders.steps]]",
        );
        let (shown, _) = load_err(&text, &[]);
        assert_eq!(
            shown,
            "FILE:12: builders[0].labels: no pool serves builder \"b\" labels [windows]; pools: local [linux]"
        );
    }

    #[test]
    fn bad_param_declarations_and_step_env_name_line_and_key() {
        let text = GOOD
            .replace(
                "labels = [\"linux\"]\n\n[[builders.steps]]",
                "labels = [\"linux\"]\n\n[builders.params]\nPATH = {}\n\
                 REF = { default = \"x y\", regex = \"[a-z]+\" }\nBAD = { regex = \"(\" }\n\n\
                 [[builders.steps]]",
            )
            .replace(
                "run = \"true\"",
                "run = \"true\"\nenv = { LD_PRELOAD = \"x.so\" }",
            );
        let (shown, _) = load_err(&text, &[]);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(
            lines,
            [
                "FILE:17: builders[0].params.BAD.regex: invalid regex: regex parse error: ( ^ error: unclosed group",
                "FILE:15: builders[0].params.PATH: PATH may not be set by a submit: \
                 it changes which programs run or what they load",
                "FILE:16: builders[0].params.REF.default: default \"x y\" must match the regex \"[a-z]+\"",
                "FILE:22: builders[0].steps[0].env.LD_PRELOAD: LD_PRELOAD may not be set: \
                 LD_* variables change what every program of the step loads",
            ],
            "{shown}"
        );
    }

    #[test]
    fn all_problems_are_reported_one_per_line() {
        let text = GOOD
            .replace("max_workers = 4", "max_workers = 0\nmax_starting = 0")
            .replace(
                "run = \"true\"",
                "run = \"true\"\nshell = \"fish\"\nworking_dir = \"../up\"",
            );
        let (shown, problems) = load_err(&text, &[]);
        assert_eq!(problems.len(), 4, "{shown}");
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[0].starts_with("FILE:8: pools.local.max_workers: "),
            "{shown}"
        );
        assert!(
            lines[1].starts_with("FILE:9: pools.local.max_starting: "),
            "{shown}"
        );
        assert!(
            lines[2].starts_with("FILE:18: builders[0].steps[0].shell: unknown shell \"fish\""),
            "{shown}"
        );
        assert!(
            lines[3]
                .starts_with("FILE:19: builders[0].steps[0].working_dir: must not contain '..'"),
            "{shown}"
        );
    }

    #[test]
    fn env_overrides_apply_with_types() {
        let file = write(GOOD);
        let vars = env(&[
            ("BURST__MASTER__HTTP_LISTEN", "127.0.0.1:9000"),
            ("BURST__POOLS__LOCAL__MAX_WORKERS", "8"),
            ("BURST__POOLS__LOCAL__IDLE_TIMEOUT", "2m"),
            ("burst__master__advertise_url", "https://ci.example"),
            // https:// needs TLS, which an override can turn on too.
            ("BURST__MASTER__TLS", "self-signed"),
        ]);
        let config = load_file_with_env(file.path(), &vars).unwrap();
        assert_eq!(
            config.master.tls,
            Some(crate::config::TlsConfig::SelfSigned)
        );
        assert_eq!(config.master.http_listen.to_string(), "127.0.0.1:9000");
        assert_eq!(config.pools["local"].max_workers, 8);
        assert_eq!(
            config.pools["local"].idle_timeout,
            std::time::Duration::from_secs(120)
        );
        assert_eq!(
            config.master.advertise_url.as_deref(),
            Some("https://ci.example")
        );
        // Untouched settings keep the file's values.
        assert_eq!(config.pools["local"].labels, ["linux"]);
        assert_eq!(config.builders.len(), 1);
    }

    #[test]
    fn no_env_gives_what_the_file_says() {
        let file = write(GOOD);
        let loaded = load_file_with_env(file.path(), &BTreeMap::new()).unwrap();
        assert_eq!(toml::from_str::<Config>(GOOD).unwrap(), loaded);
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let (shown, problems) = load_err(
            GOOD,
            &[
                ("BURST__POOLS__LOCAL__MAX_WORKERS", "many"),
                ("BURST__MASTER__HEARTBEAT_MISSES", "2"),
            ],
        );
        assert_eq!(problems.len(), 1, "{shown}");
        assert!(
            shown.starts_with("environment variable BURST__POOLS__LOCAL__MAX_WORKERS: pools.local.max_workers: invalid type"),
            "{shown}"
        );
    }

    #[test]
    fn unknown_env_key_names_the_variable() {
        let (shown, _) = load_err(GOOD, &[("BURST__MASTER__HTTP_LISTN", "127.0.0.1:1")]);
        assert!(
            shown.starts_with(
                "environment variable BURST__MASTER__HTTP_LISTN: master.http_listn: unknown field"
            ),
            "{shown}"
        );
    }

    #[test]
    fn invalid_env_value_names_the_variable_not_the_line() {
        let (shown, _) = load_err(GOOD, &[("BURST__POOLS__LOCAL__MAX_WORKERS", "0")]);
        assert_eq!(
            shown,
            "environment variable BURST__POOLS__LOCAL__MAX_WORKERS: pools.local.max_workers: must be at least 1 (got 0)"
        );
    }

    #[test]
    fn env_that_reshapes_the_config_is_an_error_not_a_panic() {
        for (var, value) in [
            ("BURST__BUILDERS__0__RETRIES", "2"),
            ("BURST__", "x"),
            ("BURST____", "x"),
            ("BURST__POOLS", "x"),
            ("BURST__POOLS__GPU__MAX_WORKERS", "2"),
        ] {
            let (shown, _) = load_err(GOOD, &[(var, value)]);
            assert!(shown.contains(var), "{var}: {shown}");
        }
    }

    #[test]
    fn env_overrides_only_take_prefixed_variables() {
        // Reads the real environment; only checks the filter.
        for (key, _) in env_overrides() {
            assert!(key.to_lowercase().starts_with("burst__"), "{key}");
        }
    }
}
