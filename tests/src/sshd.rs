//! Real OpenSSH servers on loopback, one per simulated build host.
//!
//! Every server gets its own directory (config, host key, authorized key,
//! pid file, log) and its own "remote home" (`root`) where the tests point
//! the host's `install_dir` and `state_dir`, so hosts that share this machine
//! still keep separate worker binaries and pid files.

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What installs the OpenSSH server and client the tests drive.
pub const SETUP_STEP: &str = "scripts/setup/10-apt.sh";
const SSHD: &str = "/usr/sbin/sshd";
const SSH_KEYGEN: &str = "ssh-keygen";

fn missing(what: &str) -> ! {
    panic!("{what} is missing: run {SETUP_STEP} (installs openssh-server and openssh-client)")
}

/// Fails the test, naming the setup step, when sshd or the ssh client tools
/// are not installed.
pub fn require_openssh() {
    if !Path::new(SSHD).is_file() {
        missing(SSHD);
    }
    for tool in ["ssh", SSH_KEYGEN] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        // ssh-keygen has no -V but still runs (and fails); only spawn errors count.
        if !found {
            missing(tool);
        }
    }
}

fn keygen(path: &Path, comment: &str) {
    let status = Command::new(SSH_KEYGEN)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|_| missing(SSH_KEYGEN));
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

fn read_public(path: &Path) -> String {
    let text = fs::read_to_string(path.with_extension("pub"))
        .unwrap_or_else(|e| panic!("failed to read {}.pub: {e}", path.display()));
    // "ssh-ed25519 AAAA... comment" -> "ssh-ed25519 AAAA..."
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The key pair the master logs in with.
pub struct ClientKey {
    pub private: PathBuf,
    pub public: String,
}

impl ClientKey {
    pub fn generate(dir: &Path) -> Self {
        let private = dir.join("id_ed25519");
        keygen(&private, "burst-test-client");
        let public = read_public(&private);
        Self { private, public }
    }
}

/// One `sshd -D` on 127.0.0.1, stopped (with everything started through
/// it) on drop.
pub struct Sshd {
    pub name: String,
    pub port: u16,
    /// Config, keys, pid file and log.
    pub dir: PathBuf,
    /// The host's "remote home": put install_dir and state_dir under it.
    pub root: PathBuf,
    host_public: String,
    child: Option<Child>,
}

impl Sshd {
    /// A host that is "powered off": configured, but no sshd runs until
    /// something runs [`Sshd::daemon_argv`] (a wake command).
    pub fn powered_off(base: &Path, name: &str, client: &ClientKey) -> Self {
        let (dir, root, host_public) = Self::prepare(base, name, client);
        let port = free_port();
        fs::write(dir.join("sshd_config"), config_text(&dir, &root, port))
            .expect("write sshd_config");
        Self {
            name: name.to_owned(),
            port,
            dir,
            root,
            host_public,
            child: None,
        }
    }

    /// Starts this host's sshd as a daemon (it forks; its pid goes to the
    /// pid file): what a wake command runs.
    pub fn daemon_argv(&self) -> Vec<String> {
        vec![
            SSHD.to_owned(),
            "-f".to_owned(),
            self.dir.join("sshd_config").display().to_string(),
            "-E".to_owned(),
            self.dir.join("sshd.log").display().to_string(),
        ]
    }

    /// The daemon's pid, from its pid file, while it runs.
    pub fn daemon_pid(&self) -> Option<i32> {
        let pid: i32 = fs::read_to_string(self.dir.join("sshd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    fn prepare(base: &Path, name: &str, client: &ClientKey) -> (PathBuf, PathBuf, String) {
        require_openssh();
        // Privilege separation needs this directory; a fresh container may
        // not have it until sshd was started once.
        let _ = fs::create_dir_all("/run/sshd");
        let dir = base.join(format!("sshd-{name}"));
        let root = base.join(format!("host-{name}"));
        fs::create_dir_all(&dir).expect("create sshd dir");
        fs::create_dir_all(&root).expect("create host root");
        let host_key = dir.join("ssh_host_ed25519_key");
        keygen(&host_key, name);
        let host_public = read_public(&host_key);
        fs::write(dir.join("authorized_keys"), format!("{}\n", client.public))
            .expect("write authorized_keys");
        (dir, root, host_public)
    }

    pub fn start(base: &Path, name: &str, client: &ClientKey) -> Self {
        let (dir, root, host_public) = Self::prepare(base, name, client);
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = dir.join("sshd_config");
            fs::write(&config, config_text(&dir, &root, port)).expect("write sshd_config");
            let log = dir.join("sshd.log");
            let log_file = fs::File::create(&log).expect("create sshd log");
            let child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("failed to start {SSHD}: {e} (run {SETUP_STEP})"));
            let mut sshd = Self {
                name: name.to_owned(),
                port,
                dir: dir.clone(),
                root: root.clone(),
                host_public: host_public.clone(),
                child: Some(child),
            };
            if sshd.wait_ready(Duration::from_secs(15)) {
                return sshd;
            }
            last_log = fs::read_to_string(&log).unwrap_or_default();
            sshd.kill();
        }
        panic!("sshd {name} did not come up; its log:\n{last_log}");
    }

    /// True once the server answers with an SSH banner.
    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return false;
                }
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 8];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-") {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The known_hosts line that trusts this server.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_public)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Everything started through this host for burst: processes whose
    /// work dir lies under the host's root (workers and their steps).
    pub fn processes(&self) -> Vec<i32> {
        let prefix = format!("BURST_WORK_DIR={}/", self.root.display());
        procs()
            .into_iter()
            .filter(|p| environ(*p).iter().any(|kv| kv.starts_with(&prefix)))
            .collect()
    }

    /// The burst-worker processes among `processes`.
    pub fn worker_pids(&self) -> Vec<i32> {
        self.processes()
            .into_iter()
            .filter(|p| {
                fs::read_link(format!("/proc/{p}/exe"))
                    .is_ok_and(|exe| exe.file_name().is_some_and(|n| n == "burst-worker"))
            })
            .collect()
    }

    /// The machine dies: sshd, every connection it serves, and every worker
    /// started through it are SIGKILLed. (Killing only sshd would leave the
    /// detached workers connected to the master, which is not what a dead
    /// machine looks like.)
    pub fn kill(&mut self) {
        let mut targets = Vec::new();
        let roots = self
            .child
            .as_ref()
            .map(|c| c.id() as i32)
            .into_iter()
            .chain(self.daemon_pid());
        for pid in roots {
            targets.push(pid);
            targets.extend(descendants(pid));
        }
        targets.extend(self.processes());
        for pid in targets {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `SetEnv HOME`: the session's shell looks for its rc files in the host's
/// own (empty) home, not in the real user's, whose `.bashrc` may do slow or
/// noisy things on every command.
fn config_text(dir: &Path, root: &Path, port: u16) -> String {
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {dir}/ssh_host_ed25519_key\n\
         PidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         UsePAM no\n\
         StrictModes no\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UseDNS no\n\
         PrintMotd no\n\
         LogLevel VERBOSE\n\
         MaxSessions 100\n\
         MaxStartups 100\n\
         SetEnv HOME={root}\n",
        dir = dir.display(),
        root = root.display()
    )
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

fn procs() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A process's initial environment, `NAME=value` entries.
pub fn environ(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/environ"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|kv| !kv.is_empty())
                .map(|kv| String::from_utf8_lossy(kv).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parens.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn descendants(root: i32) -> Vec<i32> {
    let all: Vec<(i32, i32)> = procs()
        .into_iter()
        .filter_map(|p| Some((p, parent_of(p)?)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}
