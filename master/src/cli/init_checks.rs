//! What `burst init` checks on this machine for the config it wrote: each
//! check says what it found and, when something is missing, what to do.
//! Checks only look (files, sockets, environment); they never call a cloud
//! API or the instance metadata service.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use burst_providers::ProviderConfig;

use crate::config;

/// How long a check waits on a local socket.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was looked at, and what was found.
    pub found: String,
    /// What to do about it; `None` when it is ready.
    pub todo: Option<String>,
}

impl Check {
    fn ok(found: impl Into<String>) -> Self {
        Self {
            found: found.into(),
            todo: None,
        }
    }

    fn todo(found: impl Into<String>, todo: impl Into<String>) -> Self {
        Self {
            found: found.into(),
            todo: Some(todo.into()),
        }
    }

    /// `  ok    …` or `  todo  …`, one line per check.
    pub fn line(&self) -> String {
        match self.todo {
            None => format!("  ok    {}", self.found),
            Some(_) => format!("  todo  {}", self.found),
        }
    }
}

/// A check not run yet: what it looks at, so `burst init` can show it
/// while it runs (a socket may take seconds to answer).
pub struct Pending {
    pub what: String,
    run: Box<dyn FnOnce() -> Check + Send>,
}

impl Pending {
    fn new(what: impl Into<String>, run: impl FnOnce() -> Check + Send + 'static) -> Self {
        Self {
            what: what.into(),
            run: Box::new(run),
        }
    }

    pub fn run(self) -> Check {
        (self.run)()
    }
}

/// The checks for every pool of the config at `config_path`, each once,
/// in the order they should run and be shown.
pub fn for_config(config_path: &Path) -> Vec<Pending> {
    let Ok(config) = config::load_file(config_path) else {
        return Vec::new();
    };
    let mut checks = vec![Pending::new("burst-worker next to burst", worker_binary)];
    for pool in config.pools.values() {
        match pool.provider.config() {
            Some(ProviderConfig::Docker(docker)) => {
                // No hosts listed means the local engine only.
                let mut endpoints: Vec<String> =
                    docker.hosts.iter().map(|h| h.endpoint.clone()).collect();
                if endpoints.is_empty() {
                    endpoints.push("local".to_owned());
                }
                for endpoint in endpoints {
                    let image = docker.image.clone();
                    checks.push(Pending::new(
                        format!("the Docker engine {endpoint} and image {image}"),
                        move || docker_engine(&endpoint, &image),
                    ));
                }
            }
            Some(ProviderConfig::Ec2(_)) => checks.push(Pending::new("AWS credentials", || {
                aws_credentials(&Env::process())
            })),
            Some(ProviderConfig::Ssh(ssh)) => {
                checks.push(Pending::new("the ssh client", ssh_client));
                if let Some(known) = ssh.known_hosts.clone() {
                    checks.push(Pending::new(
                        format!("known_hosts file {}", known.display()),
                        move || {
                            let todo = format!(
                                "add the hosts' keys: ssh-keyscan -H HOST >> {}",
                                known.display()
                            );
                            readable_file(&known, "known_hosts file", &todo)
                        },
                    ));
                }
                let mut keys: Vec<PathBuf> = ssh
                    .hosts
                    .iter()
                    .filter_map(|h| h.key_file.clone())
                    .collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    checks.push(Pending::new(format!("ssh key {}", key.display()), move || {
                        let todo = format!(
                            "create it: ssh-keygen -t ed25519 -N '' -f {} (and add its .pub to each host's authorized_keys)",
                            key.display()
                        );
                        readable_file(&key, "ssh key", &todo)
                    }));
                }
            }
            _ => {}
        }
    }
    // Pools often share hosts, keys and engines: each check once.
    let mut seen = Vec::new();
    checks.retain(|c| {
        let new = !seen.contains(&c.what);
        seen.push(c.what.clone());
        new
    });
    checks
}

/// The local provider, and `upload` of the SSH provider, use the
/// `burst-worker` next to `burst`.
fn worker_binary() -> Check {
    let name = format!("burst-worker{}", std::env::consts::EXE_SUFFIX);
    match std::env::current_exe() {
        Ok(exe) => {
            let worker = exe.with_file_name(&name);
            if worker.is_file() {
                Check::ok(format!("{name} at {}", worker.display()))
            } else {
                Check::todo(
                    format!("no {name} next to {}", exe.display()),
                    "build it: cargo build --workspace --bins (or install both binaries side by side)",
                )
            }
        }
        Err(e) => Check::todo(
            format!("cannot tell where burst runs from: {e}"),
            format!("put {name} next to burst"),
        ),
    }
}

fn docker_engine(endpoint: &str, image: &str) -> Check {
    let socket = match endpoint {
        "local" => match std::env::var("DOCKER_HOST") {
            Ok(host) if host.starts_with("unix://") => PathBuf::from(&host["unix://".len()..]),
            Ok(host) if !host.is_empty() => {
                return Check::ok(format!(
                    "Docker engine at DOCKER_HOST={host}: not checked (only local sockets are)"
                ))
            }
            _ => PathBuf::from("/var/run/docker.sock"),
        },
        other => match other.strip_prefix("unix://") {
            Some(path) => PathBuf::from(path),
            None => {
                return Check::ok(format!(
                    "Docker engine at {other}: not checked (only local sockets are)"
                ))
            }
        },
    };
    match docker_get(&socket, "/_ping") {
        Err(e) => Check::todo(
            format!("no Docker engine answers at {}: {e}", socket.display()),
            "start the engine (systemctl start docker) and make its socket readable by the master's user",
        ),
        Ok(_) => match docker_get(&socket, &format!("/images/{image}/json")) {
            Ok(200) => Check::ok(format!(
                "Docker engine at {}, image {image} present",
                socket.display()
            )),
            Ok(_) => Check::todo(
                format!("Docker engine at {}, but no image {image}", socket.display()),
                "build the worker image: images/docker/build.sh",
            ),
            Err(e) => Check::todo(
                format!("Docker engine at {} did not answer about {image}: {e}", socket.display()),
                "check the engine with `docker info`",
            ),
        },
    }
}

/// One HTTP/1.0 GET over a unix socket; returns the status code.
fn docker_get(socket: &Path, path: &str) -> std::io::Result<u16> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
    stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
    // One write: an engine may answer (and close) as soon as it has a line.
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").as_bytes())?;
    // The status line may come in several reads (the engine, like any
    // server, writes as it pleases): read until its end, or EOF, or 1 KiB.
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        match stream.read(&mut buf)? {
            0 => break,
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {line:?}")))
}

/// The environment a check reads, so tests need not change the process's.
pub struct Env {
    vars: Vec<(String, String)>,
    home: Option<PathBuf>,
}

impl Env {
    fn process() -> Self {
        Self {
            vars: std::env::vars().collect(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// The places the AWS SDK's default chain looks, short of the instance
/// metadata service (never queried here).
fn aws_credentials(env: &Env) -> Check {
    if env.get("AWS_ACCESS_KEY_ID").is_some() && env.get("AWS_SECRET_ACCESS_KEY").is_some() {
        return Check::ok("AWS credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY");
    }
    if let Some(profile) = env.get("AWS_PROFILE") {
        return Check::ok(format!(
            "AWS credentials from profile {profile:?} (AWS_PROFILE)"
        ));
    }
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
        return Check::ok("AWS web identity (AWS_WEB_IDENTITY_TOKEN_FILE)");
    }
    let files = env
        .get("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| env.home.as_ref().map(|h| h.join(".aws/credentials")));
    if let Some(file) = files.filter(|f| f.is_file()) {
        return Check::ok(format!("AWS credentials file {}", file.display()));
    }
    Check::todo(
        "no AWS credentials in the environment or ~/.aws/credentials (an instance role works too; not checked)",
        "give the master credentials with the policy of terraform/modules/burst (AWS_PROFILE, or an instance role)",
    )
}

fn ssh_client() -> Check {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("ssh"))
            .find(|p| p.is_file())
    });
    match found {
        Some(path) => Check::ok(format!("ssh client at {}", path.display())),
        None => Check::todo(
            "no ssh client on PATH",
            "install OpenSSH's client (apt install openssh-client)",
        ),
    }
}

fn readable_file(path: &Path, what: &str, todo: &str) -> Check {
    match std::fs::File::open(path) {
        Ok(_) => Check::ok(format!("{what} {}", path.display())),
        Err(e) => Check::todo(format!("{what} {}: {e}", path.display()), todo),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_listed_once_each_before_any_runs() {
        // Three ssh pools sharing one key and one known_hosts file.
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ssh.toml");
        let what: Vec<String> = for_config(&example).into_iter().map(|c| c.what).collect();
        assert_eq!(
            what,
            [
                "burst-worker next to burst",
                "the ssh client",
                "known_hosts file /etc/burst/known_hosts",
                "ssh key /etc/burst/id_ed25519",
            ]
        );
    }

    fn env(vars: &[(&str, &str)], home: Option<&Path>) -> Env {
        Env {
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            home: home.map(Path::to_owned),
        }
    }

    #[test]
    fn aws_credentials_are_found_where_the_sdk_looks() {
        let home = tempfile::tempdir().unwrap();
        let none = aws_credentials(&env(&[], Some(home.path())));
        assert!(none.todo.is_some(), "{none:?}");
        let keys = env(
            &[("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y")],
            None,
        );
        assert!(aws_credentials(&keys).todo.is_none());
        let half = env(&[("AWS_ACCESS_KEY_ID", "x")], None);
        assert!(aws_credentials(&half).todo.is_some());
        assert!(aws_credentials(&env(&[("AWS_PROFILE", "ci")], None))
            .todo
            .is_none());
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        std::fs::write(home.path().join(".aws/credentials"), "[default]\n").unwrap();
        let file = aws_credentials(&env(&[], Some(home.path())));
        assert!(file.todo.is_none(), "{file:?}");
        assert!(file.found.contains(".aws/credentials"), "{file:?}");
    }

    #[test]
    fn a_missing_key_says_how_to_make_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        let check = readable_file(&key, "ssh key", "create it");
        assert_eq!(check.todo.as_deref(), Some("create it"));
        assert!(
            check.line().starts_with("  todo  ssh key "),
            "{}",
            check.line()
        );
        std::fs::write(&key, "k").unwrap();
        assert!(readable_file(&key, "ssh key", "create it").todo.is_none());
    }

    #[test]
    fn no_engine_on_a_socket_path_is_a_todo() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = format!("unix://{}", dir.path().join("none.sock").display());
        let check = docker_engine(&endpoint, "burst-worker:latest");
        assert!(
            check.found.starts_with("no Docker engine answers at"),
            "{check:?}"
        );
        assert!(check.todo.is_some());
    }

    #[test]
    fn a_fake_engine_without_the_image_asks_for_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("engine.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            for status in ["200 OK", "404 Not Found"] {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 256];
                while !request.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                // In two writes, the second late: a status line split
                // across reads must still be read whole.
                let _ = conn.write_all(b"HTTP/1.0 ");
                let _ = conn.flush();
                std::thread::sleep(std::time::Duration::from_millis(50));
                let _ = write!(conn, "{status}\r\n\r\n");
            }
        });
        let check = docker_engine(&format!("unix://{}", sock.display()), "img:1");
        server.join().unwrap();
        assert!(check.found.contains("no image img:1"), "{check:?}");
        assert_eq!(
            check.todo.as_deref(),
            Some("build the worker image: images/docker/build.sh")
        );
    }
}
