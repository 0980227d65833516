//! One host's remote layout and the command lines for it, in the dialect of
//! its platform, plus the parsers for what those commands print.

use super::settings::{HostSettings, Platform};
use super::{posix, windows};
use crate::Health;

/// Where things live on one host for one master and pool:
/// `<install_dir>/burst-worker[.exe]` and
/// `<state_dir>/<master_id>/<pool>/<worker_id>/{pid,log,work/}`.
#[derive(Debug, Clone)]
pub struct Remote {
    platform: Platform,
    install_dir: String,
    state_dir: String,
    pool_dir: String,
}

impl Remote {
    pub fn new(host: &HostSettings, master_id: &str, pool: &str) -> Self {
        let platform = host.platform;
        let (install_dir, state_dir) = if platform.is_windows() {
            (
                windows::path(&host.install_dir),
                windows::path(&host.state_dir),
            )
        } else {
            (posix::path(&host.install_dir), posix::path(&host.state_dir))
        };
        let mut remote = Self {
            platform,
            install_dir,
            state_dir: state_dir.clone(),
            pool_dir: String::new(),
        };
        remote.pool_dir = remote.join(&remote.join(&state_dir, master_id), pool);
        remote
    }

    fn join(&self, a: &str, b: &str) -> String {
        if self.platform.is_windows() {
            windows::join(a, b)
        } else {
            posix::join(a, b)
        }
    }

    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The worker binary's path on the host.
    pub fn bin(&self) -> String {
        self.join(&self.install_dir, self.platform.worker_file_name())
    }

    pub fn worker_dir(&self, worker_id: &str) -> String {
        self.join(&self.pool_dir, worker_id)
    }

    pub fn probe(&self) -> String {
        match self.platform {
            Platform::Windows => windows::probe(&self.bin()),
            _ => posix::probe(&self.bin()),
        }
    }

    /// Reads the binary from stdin; prints its sha256 once in place.
    pub fn upload(&self) -> String {
        match self.platform {
            Platform::Windows => windows::upload(&self.bin()),
            _ => posix::upload(&self.install_dir, &self.bin()),
        }
    }

    /// Reads the token from the first line of stdin; prints the pid.
    pub fn start(&self, worker_id: &str, env: &[(String, String)]) -> String {
        let dir = self.worker_dir(worker_id);
        match self.platform {
            Platform::Windows => windows::start(&dir, &self.bin(), worker_id, env),
            _ => posix::start(&dir, &self.bin(), worker_id, env),
        }
    }

    /// Prints how many burst workers remain alive on the host.
    pub fn stop(&self, worker_id: &str, pid: u32, grace_secs: u64) -> String {
        let dir = self.worker_dir(worker_id);
        match self.platform {
            Platform::Windows => windows::stop(&dir, worker_id, pid, grace_secs, &self.state_dir),
            _ => posix::stop(&dir, worker_id, pid, grace_secs, &self.state_dir),
        }
    }

    pub fn health(&self, worker_id: &str, pid: u32) -> String {
        let dir = self.worker_dir(worker_id);
        match self.platform {
            Platform::Windows => windows::health(&dir, worker_id, pid),
            _ => posix::health(&dir, worker_id, pid),
        }
    }

    pub fn list(&self) -> String {
        match self.platform {
            Platform::Windows => windows::list(&self.pool_dir),
            _ => posix::list(&self.pool_dir),
        }
    }
}

/// What the probe found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Normalized: `x86_64`, `aarch64`, or the host's own word.
    pub arch: String,
    /// `None` when no executable worker binary is installed.
    pub sha256: Option<String>,
}

fn lines(out: &str) -> impl DoubleEndedIterator<Item = &str> {
    out.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// The rest of the last line tagged `tag`. Scripts tag what they print, so
/// whatever a login shell's rc files print around it is ignored.
fn tagged<'a>(out: &'a str, tag: &str) -> Option<&'a str> {
    lines(out)
        .rev()
        .find_map(|l| l.strip_prefix(tag)?.strip_prefix(' '))
}

pub fn parse_probe(out: &str) -> Option<Probe> {
    let (arch, sum) = tagged(out, "burst-probe")?.split_once(' ')?;
    let sha256 = if sum == "missing" {
        None
    } else {
        Some(sha256(sum)?)
    };
    Some(Probe {
        arch: normalize_arch(arch),
        sha256,
    })
}

fn sha256(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

/// What the upload printed: the sha256 of the file now in place.
pub fn parse_sha256(out: &str) -> Option<String> {
    sha256(tagged(out, "burst-sha256")?)
}

/// A number tagged `tag` (`burst-pid`, `burst-left`).
pub fn parse_number(out: &str, tag: &str) -> Option<u32> {
    tagged(out, tag)?.trim().parse().ok()
}

/// `burst-worker <worker_id> <pid>` lines.
pub fn parse_list(out: &str) -> Vec<(String, u32)> {
    lines(out)
        .filter_map(|l| {
            let (id, pid) = l.strip_prefix("burst-worker ")?.split_once(' ')?;
            Some((id.to_owned(), pid.trim().parse().ok()?))
        })
        .collect()
}

pub fn parse_health(out: &str, host: &str) -> Option<Health> {
    let mut it = lines(out).skip_while(|l| !l.starts_with("burst-health "));
    match it.next()?.strip_prefix("burst-health ")? {
        "running" => Some(Health::Running),
        "exited" => {
            let tail: Vec<&str> = it.collect();
            let detail = if tail.is_empty() {
                format!("the worker process on host {host} exited before connecting (empty log)")
            } else {
                format!(
                    "the worker process on host {host} exited before connecting; its log ends:\n{}",
                    tail.join("\n")
                )
            };
            Some(Health::Exited { detail })
        }
        _ => None,
    }
}

/// `uname -m` and `PROCESSOR_ARCHITECTURE` say the same thing differently.
pub fn normalize_arch(raw: &str) -> String {
    match raw.trim().to_ascii_lowercase().as_str() {
        "x86_64" | "amd64" | "x64" => "x86_64".to_owned(),
        "aarch64" | "arm64" => "aarch64".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn host(platform: Platform, install_dir: &str, state_dir: &str) -> HostSettings {
        HostSettings {
            name: "h".into(),
            address: "h.lan".into(),
            port: 22,
            user: None,
            key_file: None,
            platform,
            max_workers: 1,
            install_dir: install_dir.into(),
            state_dir: state_dir.into(),
            wake: vec![],
            sleep: vec![],
            wake_timeout: Duration::from_secs(1),
            price_per_hour: None,
        }
    }

    #[test]
    fn layouts() {
        let r = Remote::new(&host(Platform::Linux, "~/.burst/bin", ".burst"), "m1", "p");
        assert_eq!(r.bin(), "./.burst/bin/burst-worker");
        assert_eq!(r.worker_dir("p-1"), "./.burst/m1/p/p-1");
        let r = Remote::new(
            &host(Platform::Macos, "/opt/burst/", "/var/burst"),
            "m1",
            "p",
        );
        assert_eq!(r.bin(), "/opt/burst/burst-worker");
        assert_eq!(r.worker_dir("p-1"), "/var/burst/m1/p/p-1");
        let r = Remote::new(
            &host(Platform::Windows, "C:/burst/bin", "~/.burst"),
            "m1",
            "p",
        );
        assert_eq!(r.bin(), "C:\\burst\\bin\\burst-worker.exe");
        assert_eq!(r.worker_dir("p-1"), ".\\.burst\\m1\\p\\p-1");
    }

    #[test]
    fn posix_paths_never_look_like_options() {
        assert_eq!(posix::path("-rf"), "./-rf");
        assert_eq!(posix::path("~"), ".");
        assert_eq!(posix::path("/"), "/");
        assert_eq!(posix::path("./x/"), "./x");
    }

    #[test]
    fn parsers() {
        let sum = "a".repeat(64);
        assert_eq!(
            parse_probe(&format!("Welcome to the box!\nburst-probe arm64 {sum}\n")),
            Some(Probe {
                arch: "aarch64".into(),
                sha256: Some(sum.clone())
            })
        );
        assert_eq!(
            parse_probe("burst-probe AMD64 missing\r\n"),
            Some(Probe {
                arch: "x86_64".into(),
                sha256: None
            })
        );
        assert_eq!(parse_probe("x86_64\n"), None);
        assert_eq!(parse_probe("burst-probe x86_64 not-a-sum\n"), None);
        assert_eq!(
            parse_sha256(&format!("motd\nburst-sha256 {}\n", sum.to_uppercase())),
            Some(sum.clone())
        );
        assert_eq!(
            parse_number("nohup: ignoring input\nburst-pid 4242\n", "burst-pid"),
            Some(4242)
        );
        assert_eq!(parse_number("burst-pid 4242\n", "burst-left"), None);
        assert_eq!(
            parse_list("burst-worker p-a 12\n\nburst-worker p-b 13\ngarbage 14\n"),
            vec![("p-a".to_owned(), 12), ("p-b".to_owned(), 13)]
        );
        assert_eq!(
            parse_health("hi from bashrc\nburst-health running\n", "h"),
            Some(Health::Running)
        );
        match parse_health("burst-health exited\nerror: bad token\n", "h") {
            Some(Health::Exited { detail }) => assert!(detail.contains("bad token"), "{detail}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_health("", "h"), None);
    }
}
