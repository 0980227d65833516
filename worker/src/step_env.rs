//! A step's environment, built from scratch: a minimal base taken from the
//! worker's own, then what the master sent (the config's env, the build's
//! params, `BURST_BUILD_ID` and friends), then the worker's identity
//! (`BURST_WORKER_ID`, and `BURST_MASTER_ID` when the worker has one: the
//! local provider finds a dead worker's steps by them). Nothing else of the
//! worker's environment reaches a step: not `BURST_TOKEN`, not
//! `BURST_MASTER_URL`, not whatever its launcher happened to have set.

use std::collections::BTreeMap;
use std::ffi::OsString;

use burst_common::launch_env;

/// The worker's variables a step inherits, when set.
#[cfg(not(windows))]
const BASE: &[&str] = &["PATH", "HOME", "TMPDIR", "USER", "LOGNAME", "LANG"];
/// What Windows programs (and wine's) need to start at all.
#[cfg(windows)]
const BASE: &[&str] = &[
    "SystemRoot",
    "windir",
    "ComSpec",
    "PATHEXT",
    "PATH",
    "TEMP",
    "TMP",
    "USERPROFILE",
    "HOMEDRIVE",
    "HOMEPATH",
];

/// When the worker itself has no PATH.
#[cfg(not(windows))]
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The base every step starts from, read from the worker's environment:
/// the platform's minimum, then the pool's configured env (the names in
/// `BURST_STEP_ENV`).
pub fn base() -> Vec<(String, OsString)> {
    let mut env = base_from(|name| std::env::var_os(name));
    env.extend(pool_env_from(
        std::env::var(launch_env::STEP_ENV).ok().as_deref(),
        |name| std::env::var_os(name),
    ));
    env
}

/// The pool's env entries the provider named. `BURST_*` names are burst's
/// own and never pass.
fn pool_env_from(
    names: Option<&str>,
    get: impl Fn(&str) -> Option<OsString>,
) -> Vec<(String, OsString)> {
    names
        .unwrap_or_default()
        .split(',')
        .filter(|n| !n.is_empty() && !n.starts_with("BURST_"))
        .filter_map(|n| get(n).map(|v| (n.to_owned(), v)))
        .collect()
}

fn base_from(get: impl Fn(&str) -> Option<OsString>) -> Vec<(String, OsString)> {
    BASE.iter()
        .filter_map(|name| {
            let value = get(name);
            #[cfg(not(windows))]
            let value = value.or_else(|| (*name == "PATH").then(|| DEFAULT_PATH.into()));
            value.map(|v| ((*name).to_owned(), v))
        })
        .collect()
}

/// The full environment of a step, in the order it is applied (later
/// wins). `sent` is sorted, so that on Windows, where names are
/// case-insensitive, `Path` and `PATH` in one step resolve the same way
/// every time.
pub(crate) fn build(
    base: Vec<(String, OsString)>,
    sent: &BTreeMap<&String, &String>,
    worker_id: &str,
    master_id: Option<OsString>,
) -> Vec<(String, OsString)> {
    let mut env = base;
    env.extend(sent.iter().map(|(k, v)| ((*k).clone(), OsString::from(v))));
    env.push((launch_env::WORKER_ID.to_owned(), worker_id.into()));
    if let Some(master_id) = master_id {
        env.push((launch_env::MASTER_ID.to_owned(), master_id));
    }
    env
}

/// The worker's `BURST_MASTER_ID`, which its steps carry too.
pub(crate) fn master_id() -> Option<OsString> {
    std::env::var_os(launch_env::MASTER_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pools_named_env_passes_and_burst_names_never_do() {
        let get = |n: &str| match n {
            "CI_FLAVOUR" => Some(OsString::from("e2e")),
            "BURST_TOKEN" => Some(OsString::from("secret")),
            "OTHER" => Some(OsString::from("x")),
            _ => None,
        };
        assert_eq!(
            pool_env_from(Some("CI_FLAVOUR,BURST_TOKEN,,MISSING"), get),
            vec![("CI_FLAVOUR".to_owned(), OsString::from("e2e"))]
        );
        assert!(pool_env_from(None, get).is_empty());
    }

    #[cfg(not(windows))]
    #[test]
    fn base_takes_only_its_names_and_has_a_path() {
        let got = base_from(|name| match name {
            "HOME" => Some("/home/w".into()),
            "BURST_TOKEN" | "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            _ => None,
        });
        assert_eq!(
            got,
            [
                ("PATH".to_owned(), OsString::from(DEFAULT_PATH)),
                ("HOME".to_owned(), OsString::from("/home/w")),
            ]
        );
        let got = base_from(|name| (name == "PATH").then(|| "/opt/bin".into()));
        assert_eq!(got, [("PATH".to_owned(), OsString::from("/opt/bin"))]);
    }

    #[test]
    fn the_worker_id_is_set_last() {
        let (k, v) = ("BURST_WORKER_ID".to_owned(), "forged".to_owned());
        let (m, mv) = ("BURST_MASTER_ID".to_owned(), "forged".to_owned());
        let sent = BTreeMap::from([(&k, &v), (&m, &mv)]);
        let env = build(Vec::new(), &sent, "w1", Some("m-1".into()));
        assert_eq!(
            &env[2..],
            [(k, OsString::from("w1")), (m, OsString::from("m-1"))]
        );
    }
}
