//! What a reload cannot change. The master reads these once at start:
//! sockets are bound, the store and logs are open in the state dir, the
//! TLS pin is in every worker's launch, the secret values are in the log
//! masks, and the trigger tasks (pollers, schedules, reporters) run from
//! them. A reload that changes one is refused whole, naming each key (and
//! its line in the new file), and the old config stays in force.

use std::path::Path;

use super::error::{Origin, Problem};
use super::locate::{KeyPath, Locator};
use super::schema::{Config, MasterConfig};

const RESTART: &str = "cannot change on reload; restart the master to change it";

/// Every change from `old` to `new` that only a restart can make; `text`
/// is the new file's text, `path` its name.
pub fn fixed_changes(old: &Config, new: &Config, text: &str, path: &Path) -> Vec<Problem> {
    let locator = Locator::new(text);
    let problem = |keys: &[&str], message: String| {
        let key = KeyPath::from_keys(keys.iter().copied());
        Problem {
            origin: Some(Origin::File {
                path: path.to_owned(),
                line: locator.line_of(&key),
            }),
            key: key.to_string(),
            message,
        }
    };
    let mut out: Vec<Problem> = master_changes(&old.master, &new.master)
        .into_iter()
        .map(|key| problem(&["master", key], RESTART.to_owned()))
        .collect();
    if old.secrets != new.secrets || old.secret_values != new.secret_values {
        // Never the values: only that they differ.
        out.push(problem(
            &["secrets"],
            format!("{RESTART} (the secret values are in every log's mask)"),
        ));
    }
    let sections: [(&str, bool); 5] = [
        ("artifacts", old.artifacts != new.artifacts),
        ("sources", old.sources != new.sources),
        ("rules", old.rules != new.rules),
        ("reporters", old.reporters != new.reporters),
        ("schedules", old.schedules != new.schedules),
    ];
    for (key, changed) in sections {
        if changed {
            out.push(problem(&[key], RESTART.to_owned()));
        }
    }
    for (name, pool) in &new.pools {
        let Some(before) = old.pools.get(name) else {
            continue;
        };
        let (was, now) = (before.provider.kind(), pool.provider.kind());
        if was != now {
            out.push(problem(
                &["pools", name, "provider"],
                format!(
                    "a pool's provider cannot change on reload ({} -> {}); give the new pool another name (the old one drains)",
                    was.name(),
                    now.name()
                ),
            ));
        }
    }
    out
}

/// The `[master]` keys that differ. `log_format` is left out: the logger
/// is set up once at start (and `--log-format` overrides the file), so a
/// reload keeps the format in force and a changed one applies at the next
/// start (`Reloader` carries it over).
fn master_changes(old: &MasterConfig, new: &MasterConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    macro_rules! compare {
        ($($field:ident),* $(,)?) => {
            // Destructured, so a new `[master]` key cannot be forgotten here.
            let MasterConfig { $($field: _,)* log_format: _ } = old;
            $(
                if old.$field != new.$field {
                    keys.push(stringify!($field));
                }
            )*
        };
    }
    compare!(
        id,
        state_dir,
        http_listen,
        grpc_listen,
        advertise_url,
        tls,
        heartbeat_interval,
        heartbeat_misses,
        step_lease,
        shutdown_grace,
        build_retries,
        anonymous_read,
        allow_insecure_http,
        allowed_hosts,
        admin_token_file,
        admin_token_env,
        step_log_limit,
        max_connections,
        metrics_open,
    );
    keys
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::load_str;

    const BASE: &str = r#"
[master]
http_listen = "127.0.0.1:0"

[pools.local]
provider = "local"

[[builders]]
name = "a"
steps = [{ name = "s", run = "true" }]
"#;

    fn load(text: &str) -> Config {
        load_str(text, Path::new("burst.toml"), &BTreeMap::new()).expect("valid config")
    }

    fn changes(new: &str) -> Vec<String> {
        let (old, next) = (load(BASE), load(new));
        fixed_changes(&old, &next, new, Path::new("burst.toml"))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn pools_and_builders_may_change() {
        assert!(changes(BASE).is_empty());
        let more = format!(
            "{BASE}\n[pools.more]\nprovider = \"local\"\nmax_workers = 9\n\n[[builders]]\nname = \"b\"\nsteps = [{{ name = \"s\", run = \"true\" }}]\n\n[retention]\nkeep_last = 5\n"
        );
        assert!(changes(&more).is_empty(), "{:?}", changes(&more));
    }

    #[test]
    fn master_keys_are_named_with_their_line() {
        let moved = BASE.replace("127.0.0.1:0", "127.0.0.1:9");
        assert_eq!(
            changes(&moved),
            [format!("burst.toml:3: master.http_listen: {RESTART}")]
        );
        let tls = BASE.replace(
            "[master]\n",
            "[master]\nstep_lease = \"5m\"\nmetrics_open = true\n",
        );
        assert_eq!(
            changes(&tls),
            [
                format!("burst.toml:3: master.step_lease: {RESTART}"),
                format!("burst.toml:4: master.metrics_open: {RESTART}"),
            ]
        );
    }

    #[test]
    fn a_pool_changing_provider_is_refused() {
        let docker = BASE.replace(
            "provider = \"local\"",
            "provider = \"docker\"\n[pools.local.docker]\nimage = \"burst-worker:latest\"\nmaster_url = \"http://172.17.0.1:8481\"",
        );
        let found = match load_str(&docker, Path::new("burst.toml"), &BTreeMap::new()) {
            Ok(next) => fixed_changes(&load(BASE), &next, &docker, Path::new("burst.toml")),
            Err(e) => panic!("{e}"),
        };
        let text: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(
            text[0].starts_with("burst.toml:6: pools.local.provider: a pool's provider cannot change on reload (local -> docker)"),
            "{text:?}"
        );
    }
}
