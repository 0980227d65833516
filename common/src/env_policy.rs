//! Which environment variables a build may set for its steps. One list, used
//! by the master at submit (params) and at config validation (a step's
//! `env`, declared params, matrix axes), so the rules cannot drift.
//!
//! Names are compared case-insensitively: on Windows `Path` is `PATH`, and a
//! refusal costs nothing on Unix.
//!
//! - A **submit** may set none of [`submit_refusal`]'s names: anything that
//!   changes which program runs or what it loads before the step's own code
//!   (`PATH`, `LD_PRELOAD`, `BASH_ENV`, `GIT_*`, `PYTHON*`, …), and `BURST_*`.
//! - **Config** is trusted: a step's `env` may set `PATH`, `PYTHONPATH` or
//!   `GIT_*` on purpose, but not [`config_refusal`]'s names: `BURST_*`
//!   (burst's own: the worker's launch contract and the build's identity)
//!   and the dynamic loader's `LD_*` / `DYLD_*`, which reach into every
//!   program of the step, the shell included.

/// Exact names a submit may not set.
const SUBMIT_EXACT: &[&str] = &[
    // Which programs run.
    "PATH",
    "PATHEXT",
    "COMSPEC",
    "SYSTEMROOT",
    "WINDIR",
    "CDPATH",
    // Code a shell runs or the way it splits words.
    "BASH_ENV",
    "ENV",
    "IFS",
    "PS4",
    "PROMPT_COMMAND",
    "SHELLOPTS",
    "BASHOPTS",
    "GLOBIGNORE",
    // Where configuration (and with it hooks and helpers) is read from.
    "HOME",
    "USERPROFILE",
    "XDG_CONFIG_HOME",
    // glibc: modules it loads.
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    // Interpreters' startup options and module paths.
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "PERL5DB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "PSMODULEPATH",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    // Programs other programs start.
    "SSH_ASKPASS",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "MANPAGER",
    "LESSOPEN",
    "LESSCLOSE",
    "BROWSER",
];

/// Prefixes a submit may not set.
const SUBMIT_PREFIXES: &[&str] = &[
    "BURST_",
    "LD_",
    "DYLD_",
    // GIT_CONFIG_*, GIT_SSH_COMMAND, GIT_EXEC_PATH, GIT_PROXY_COMMAND, …:
    // nearly every GIT_ variable runs something or redirects git.
    "GIT_",
    // PYTHONSTARTUP, PYTHONPATH, PYTHONHOME, PYTHONINSPECT, …
    "PYTHON",
    "BASH_FUNC_",
    "CARGO_",
    "WINE",
];

/// Prefixes not even config may set.
const CONFIG_PREFIXES: &[&str] = &["BURST_", "LD_", "DYLD_"];

/// Why a submitted parameter may not be named `name`, if it may not.
pub fn submit_refusal(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    if let Some(prefix) = SUBMIT_PREFIXES.iter().find(|p| upper.starts_with(*p)) {
        return Some(format!(
            "{name} may not be set by a submit: {prefix}* variables change how programs run \
             or belong to burst"
        ));
    }
    if SUBMIT_EXACT.contains(&upper.as_str()) {
        return Some(format!(
            "{name} may not be set by a submit: it changes which programs run or what they load"
        ));
    }
    None
}

/// Why a step's configured `env` may not set `name`, if it may not.
pub fn config_refusal(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    CONFIG_PREFIXES
        .iter()
        .find(|p| upper.starts_with(*p))
        .map(|prefix| match *prefix {
            "BURST_" => format!("{name} may not be set: BURST_* variables are set by burst"),
            _ => format!(
                "{name} may not be set: {prefix}* variables change what every program of the \
                 step loads"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submits_may_not_set_what_changes_how_programs_run() {
        for name in [
            "PATH",
            "Path",
            "BASH_ENV",
            "ENV",
            "IFS",
            "LD_PRELOAD",
            "ld_library_path",
            "DYLD_INSERT_LIBRARIES",
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0",
            "GIT_SSH_COMMAND",
            "PYTHONSTARTUP",
            "PYTHONPATH",
            "PYTHONHOME",
            "PERL5OPT",
            "NODE_OPTIONS",
            "RUBYOPT",
            "BURST_TOKEN",
            "burst_master_url",
            "BURST_BUILD_ID",
        ] {
            let why = submit_refusal(name);
            assert!(
                why.as_deref().is_some_and(|w| w.starts_with(name)),
                "{name}: {why:?}"
            );
        }
        for name in ["GREETING", "REF", "os", "PATHS", "ENVIRONMENT", "MY_PATH"] {
            assert_eq!(submit_refusal(name), None, "{name}");
        }
    }

    #[test]
    fn config_may_set_path_but_not_burst_or_the_loader() {
        for name in ["PATH", "PYTHONPATH", "GIT_SSH_COMMAND", "HOME", "FOO"] {
            assert_eq!(config_refusal(name), None, "{name}");
        }
        for name in ["BURST_TOKEN", "burst_x", "LD_PRELOAD", "DYLD_LIBRARY_PATH"] {
            assert!(config_refusal(name).is_some(), "{name}");
        }
    }

    #[test]
    fn whatever_config_may_not_set_a_submit_may_not_either() {
        for name in ["BURST_A", "LD_A", "DYLD_A"] {
            assert!(config_refusal(name).is_some() && submit_refusal(name).is_some());
        }
        for prefix in CONFIG_PREFIXES {
            assert!(SUBMIT_PREFIXES.contains(prefix), "{prefix}");
        }
    }
}
