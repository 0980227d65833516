//! What differs between Linux and Windows containers: how the worker is
//! started and where it works. Everything else (labels, limits, binds,
//! networks) is the same API call on either engine.

use std::collections::BTreeMap;

use burst_common::launch_env;

/// The worker's executable in a Windows worker image.
pub const WINDOWS_WORKER_PATH: &str = r"C:\burst\burst-worker.exe";
/// The worker's work directory in a Windows container.
pub const WINDOWS_WORK_DIR: &str = r"C:\burst\work";
/// The worker's work directory in a Linux container.
pub const LINUX_WORK_DIR: &str = "/work";

/// `pids_limit`'s default: room for parallel compilers and test runners,
/// not for a fork bomb.
pub const DEFAULT_PIDS_LIMIT: u32 = 4096;

/// The capabilities a Linux worker keeps; every other one is dropped. What
/// builds commonly need as root: CHOWN, DAC_OVERRIDE and FOWNER to unpack
/// archives and fix up files owned by other users, SETUID and SETGID for
/// `su`/package managers that drop to a build user, KILL for the worker to
/// end step processes running under another uid. Not kept (among others):
/// NET_RAW (spoofed packets), MKNOD, SYS_CHROOT, AUDIT_WRITE, SETFCAP,
/// NET_BIND_SERVICE.
pub const LINUX_CAPABILITIES: [&str; 6] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "SETUID",
    "SETGID",
    "KILL",
];

/// The security settings of a container's host config.
#[derive(Debug, Default, PartialEq)]
pub struct Hardening {
    pub security_opt: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub cap_add: Option<Vec<String>>,
    pub pids_limit: Option<i64>,
}

/// Linux containers: no privilege gain through setuid binaries, only
/// [`LINUX_CAPABILITIES`] (all of them when privileged), a pids limit.
/// Windows containers have none of these knobs.
pub fn hardening(platform: Platform, privileged: bool, pids_limit: u32) -> Hardening {
    match platform {
        Platform::Windows => Hardening::default(),
        Platform::Linux => Hardening {
            security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
            cap_drop: (!privileged).then(|| vec!["ALL".to_owned()]),
            cap_add: (!privileged)
                .then(|| LINUX_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect()),
            pids_limit: Some(i64::from(pids_limit)),
        },
    }
}

/// The operating system of a pool's containers (and of its Docker hosts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    #[default]
    Linux,
    Windows,
}

impl Platform {
    /// The worker's work directory when the config names none.
    pub fn default_work_dir(self) -> &'static str {
        match self {
            Platform::Linux => LINUX_WORK_DIR,
            Platform::Windows => WINDOWS_WORK_DIR,
        }
    }

    /// Whether `path` is absolute inside a container of this platform:
    /// `/x` on Linux, `C:\x` or `C:/x` on Windows.
    pub fn is_absolute(self, path: &str) -> bool {
        match self {
            Platform::Linux => path.starts_with('/'),
            Platform::Windows => {
                let b = path.as_bytes();
                b.len() >= 3
                    && b[0].is_ascii_alphabetic()
                    && b[1] == b':'
                    && matches!(b[2], b'\\' | b'/')
            }
        }
    }
}

/// The values burst passes to one worker, all through the environment (the
/// token never appears on a command line, where `ps` would show it).
pub struct WorkerVars<'a> {
    pub master_url: &'a str,
    /// The master's certificate pin, when it serves TLS.
    pub master_pin: Option<&'a str>,
    pub worker_id: &'a str,
    pub token: &'a str,
    pub labels: &'a [String],
    pub master_id: &'a str,
    pub pool: &'a str,
}

/// The process part of a container's create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// `None` = the image's own entrypoint.
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    /// `None` = the image's own working directory.
    pub working_dir: Option<String>,
}

/// How the worker starts in a container of `platform`. `worker_path`
/// overrides the image's entrypoint (on Windows its default is
/// `WINDOWS_WORKER_PATH`: Windows images rarely carry one for the worker).
pub fn process(
    platform: Platform,
    worker_path: Option<&str>,
    work_dir: &str,
    pool_env: &BTreeMap<String, String>,
    vars: &WorkerVars<'_>,
) -> Process {
    // The pool's own variables first: burst's come later and win.
    let mut env_list: Vec<String> = pool_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let labels = vars.labels.join(",");
    let step_env = launch_env::step_env_names(pool_env.keys());
    for (key, value) in [
        (launch_env::STEP_ENV, step_env.as_str()),
        (launch_env::MASTER_URL, vars.master_url),
        (launch_env::WORKER_ID, vars.worker_id),
        (launch_env::TOKEN, vars.token),
        (launch_env::LABELS, labels.as_str()),
        (launch_env::WORK_DIR, work_dir),
        (launch_env::MASTER_ID, vars.master_id),
        (launch_env::POOL, vars.pool),
    ] {
        env_list.push(format!("{key}={value}"));
    }
    if let Some(pin) = vars.master_pin {
        env_list.push(format!("{}={pin}", launch_env::MASTER_PIN));
    }
    match platform {
        Platform::Linux => Process {
            entrypoint: worker_path.map(|p| vec![p.to_owned()]),
            env: env_list,
            working_dir: None,
        },
        // The exe itself, no shell: nanoserver images have no `sh`, and
        // `cmd /c` would only add a process to signal through.
        Platform::Windows => Process {
            entrypoint: Some(vec![worker_path.unwrap_or(WINDOWS_WORKER_PATH).to_owned()]),
            env: env_list,
            working_dir: Some(work_dir.to_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(labels: &[String]) -> WorkerVars<'_> {
        WorkerVars {
            master_url: "http://10.0.0.2:8481",
            master_pin: None,
            worker_id: "win-00aa",
            token: "secret-token",
            labels,
            master_id: "m1",
            pool: "win",
        }
    }

    #[test]
    fn windows_runs_the_exe_with_windows_paths() {
        let labels = vec!["windows".to_owned(), "docker".to_owned()];
        let mut pool_env = BTreeMap::new();
        pool_env.insert("CI".to_owned(), "1".to_owned());
        let p = process(
            Platform::Windows,
            None,
            WINDOWS_WORK_DIR,
            &pool_env,
            &vars(&labels),
        );
        assert_eq!(
            p.entrypoint,
            Some(vec![r"C:\burst\burst-worker.exe".to_owned()])
        );
        assert_eq!(p.working_dir.as_deref(), Some(r"C:\burst\work"));
        assert_eq!(
            p.env,
            [
                "CI=1",
                "BURST_STEP_ENV=CI",
                "BURST_MASTER_URL=http://10.0.0.2:8481",
                "BURST_WORKER_ID=win-00aa",
                "BURST_TOKEN=secret-token",
                "BURST_LABELS=windows,docker",
                r"BURST_WORK_DIR=C:\burst\work",
                "BURST_MASTER_ID=m1",
                "BURST_POOL=win",
            ]
        );
        let argv = p.entrypoint.unwrap_or_default();
        assert!(argv
            .iter()
            .all(|a| !a.contains("sh") && !a.contains("secret-token")));
        let custom = process(
            Platform::Windows,
            Some(r"D:\tools\burst-worker.exe"),
            r"D:\w",
            &BTreeMap::new(),
            &vars(&labels),
        );
        assert_eq!(
            custom.entrypoint,
            Some(vec![r"D:\tools\burst-worker.exe".to_owned()])
        );
        assert!(custom.env.contains(&r"BURST_WORK_DIR=D:\w".to_owned()));
    }

    #[test]
    fn linux_keeps_the_image_entrypoint() {
        let labels = vec!["linux".to_owned()];
        let p = process(
            Platform::Linux,
            None,
            LINUX_WORK_DIR,
            &BTreeMap::new(),
            &vars(&labels),
        );
        assert_eq!(p.entrypoint, None);
        assert_eq!(p.working_dir, None);
        assert!(p.env.contains(&"BURST_WORK_DIR=/work".to_owned()));
        assert!(p.env.contains(&"BURST_TOKEN=secret-token".to_owned()));
        let custom = process(
            Platform::Linux,
            Some("/usr/local/bin/burst-worker"),
            "/work",
            &BTreeMap::new(),
            &vars(&labels),
        );
        assert_eq!(
            custom.entrypoint,
            Some(vec!["/usr/local/bin/burst-worker".to_owned()])
        );
    }

    #[test]
    fn absolute_paths() {
        assert!(Platform::Linux.is_absolute("/work"));
        assert!(!Platform::Linux.is_absolute(r"C:\work"));
        assert!(Platform::Windows.is_absolute(r"C:\burst\work"));
        assert!(Platform::Windows.is_absolute("d:/w"));
        assert!(!Platform::Windows.is_absolute("/work"));
        assert!(!Platform::Windows.is_absolute("C:work"));
        assert!(!Platform::Windows.is_absolute(r"\\server\share"));
    }
}
