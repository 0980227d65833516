//! Remote commands for Linux and macOS hosts. Each is a fixed `sh` script
//! run as `sh -c '<script>' sh ARG...`: values from config and the master
//! only ever arrive as quoted positional parameters, never inside the
//! script text.

use super::quote;

/// Whether a live process is the worker `$2`, given its pid `$1`. Pids are
/// reused, so a pid alone proves nothing: on Linux the process's initial
/// environment or its arguments must carry the worker id; elsewhere (macOS)
/// its argv must end in `--worker-id <id>`. Zombies have an empty environ
/// and cmdline: gone.
const ALIVE: &str = r#"alive() {
  case $1 in ''|*[!0-9]*) return 1 ;; esac
  if [ -d /proc/self ]; then
    # START's exec chain (nohup, setsid, env, burst-worker) carries the id in
    # its arguments at every stage, but in its environment only once env has
    # run: a check in between must not call a starting worker dead.
    [ -r "/proc/$1/environ" ] || return 1
    tr '\000' '\012' < "/proc/$1/environ" 2>/dev/null | grep -Fqx "BURST_WORKER_ID=$2" ||
      tr '\000' '\012' < "/proc/$1/cmdline" 2>/dev/null | grep -Fqx -e "$2"
  else
    case $(ps -p "$1" -o args= 2>/dev/null) in
      *" --worker-id $2") return 0 ;;
      *) return 1 ;;
    esac
  fi
}
sha() {
  if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$1") || return 1
  else s=$(shasum -a 256 < "$1") || return 1
  fi
  echo "${s%% *}"
}
"#;

/// `$1` = worker binary. Prints `burst-probe <uname -m> <sha256|missing>`.
/// (Every script tags what it prints: a login shell's rc files may print
/// too.)
const PROBE: &str = r#"if [ -f "$1" ] && [ -x "$1" ]; then sum=$(sha "$1"); else sum=missing; fi
echo "burst-probe $(uname -m) $sum"
"#;

/// `$1` = install dir, `$2` = worker binary; the binary arrives on stdin.
/// Written beside the target and renamed over it, so a running worker keeps
/// its old file and nobody ever sees half a binary. Prints the new sha256.
const UPLOAD: &str = r#"set -e
mkdir -p -- "$1"
tmp="$2.upload.$$"
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
chmod 755 "$tmp"
mv -f -- "$tmp" "$2"
trap - EXIT
echo "burst-sha256 $(sha "$2")"
"#;

/// `$1` = worker dir, `$2` = worker binary, `$3` = worker id, then
/// `NAME=value` environment entries. The one-time token is the first line
/// of stdin: `read` and `printf` are shell builtins, so it never shows in
/// `ps`; it goes into an owner-only file the worker deletes once read, so
/// it is never in the worker's environment either. The
/// worker gets its own session (`setsid`; a process group via `set -m`
/// where there is no `setsid`, as on macOS) so it outlives this SSH command
/// and can be stopped with everything it started. Prints the worker's pid.
const START: &str = r#"dir=$1 bin=$2 id=$3
shift 3
IFS= read -r token || [ -n "$token" ] || { echo "no token on stdin" >&2; exit 1; }
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
old=$(umask)
umask 077
mkdir -p -- "$dir/work" && cd -- "$dir" || exit 1
printf '%s\n' "$token" > token || exit 1
unset token
umask "$old"
if command -v setsid >/dev/null 2>&1; then
  nohup setsid env "$@" "BURST_WORK_DIR=$PWD/work" "BURST_TOKEN_FILE=$PWD/token" "$bin" --worker-id "$id" < /dev/null > log 2>&1 &
else
  set -m
  nohup env "$@" "BURST_WORK_DIR=$PWD/work" "BURST_TOKEN_FILE=$PWD/token" "$bin" --worker-id "$id" < /dev/null > log 2>&1 &
fi
pid=$!
echo "$pid" > pid.tmp && mv -f pid.tmp pid || { kill -KILL "$pid"; cd /; rm -rf -- "$dir"; exit 1; }
echo "burst-pid $pid"
"#;

/// `$1` = worker dir, `$2` = worker id, `$3` = pid, `$4` = grace seconds,
/// `$5` = state root. SIGTERM to the worker's group, SIGKILL to its session
/// and group after the grace, then its directory goes. Prints how many burst
/// workers (any master, any pool) remain alive under the state root.
const STOP: &str = r#"dir=$1 id=$2 pid=$3 grace=$4 root=$5
if alive "$pid" "$id"; then
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  n=$((grace * 5))
  while [ "$n" -gt 0 ] && alive "$pid" "$id"; do
    sleep 0.2 2>/dev/null || sleep 1
    n=$((n - 1))
  done
  if alive "$pid" "$id"; then
    pkill -KILL -s "$pid" 2>/dev/null
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  fi
fi
rm -rf -- "$dir"
left=0
for f in "$root"/*/*/*/pid; do
  [ -f "$f" ] || continue
  w=${f%/pid}
  if alive "$(cat -- "$f" 2>/dev/null)" "${w##*/}"; then left=$((left + 1)); fi
done
echo "burst-left $left"
"#;

/// `$1` = worker dir, `$2` = worker id, `$3` = pid. Prints `running`, or
/// `exited` and the tail of the worker's log.
const HEALTH: &str = r#"if alive "$3" "$2"; then echo "burst-health running"; else echo "burst-health exited"; tail -n 20 -- "$1/log" 2>/dev/null; fi
"#;

/// `$1` = this master's and pool's directory. Prints `burst-worker <id> <pid>`
/// per live worker; directories of dead workers are removed.
const LIST: &str = r#"for f in "$1"/*/pid; do
  [ -f "$f" ] || continue
  d=${f%/pid}
  pid=$(cat -- "$f" 2>/dev/null)
  if alive "$pid" "${d##*/}"; then echo "burst-worker ${d##*/} $pid"; else rm -rf -- "$d"; fi
done
"#;

/// `sh -c '<prelude + script>' sh 'arg'...`
fn render<S: AsRef<str>>(script: &str, args: &[S]) -> String {
    let mut line = String::from("sh -c ");
    line.push_str(&quote::posix(&format!("{ALIVE}{script}")));
    line.push_str(" sh");
    for arg in args {
        line.push(' ');
        line.push_str(&quote::posix(arg.as_ref()));
    }
    line
}

pub fn probe(bin: &str) -> String {
    render(PROBE, &[bin])
}

pub fn upload(install_dir: &str, bin: &str) -> String {
    render(UPLOAD, &[install_dir, bin])
}

pub fn start(dir: &str, bin: &str, worker_id: &str, env: &[(String, String)]) -> String {
    let mut args = vec![dir.to_owned(), bin.to_owned(), worker_id.to_owned()];
    args.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    render(START, &args)
}

pub fn stop(dir: &str, worker_id: &str, pid: u32, grace_secs: u64, root: &str) -> String {
    render(
        STOP,
        &[
            dir,
            worker_id,
            &pid.to_string(),
            &grace_secs.to_string(),
            root,
        ],
    )
}

pub fn health(dir: &str, worker_id: &str, pid: u32) -> String {
    render(HEALTH, &[dir, worker_id, &pid.to_string()])
}

pub fn list(pool_dir: &str) -> String {
    render(LIST, &[pool_dir])
}

/// A path as the scripts take it: `~/x` and relative paths are relative to
/// the login directory, and a relative path gets `./` so it can never be
/// read as an option.
pub fn path(p: &str) -> String {
    let p = p.strip_prefix("~/").unwrap_or(p);
    let p = if p == "~" { "" } else { p };
    let trimmed = p.trim_end_matches('/');
    if p.starts_with('/') {
        if trimmed.is_empty() {
            "/".to_owned()
        } else {
            trimmed.to_owned()
        }
    } else if trimmed.is_empty() || trimmed == "." {
        ".".to_owned()
    } else if trimmed.starts_with("./") {
        trimmed.to_owned()
    } else {
        format!("./{trimmed}")
    }
}

pub fn join(a: &str, b: &str) -> String {
    if a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    }
}

#[cfg(test)]
mod tests {
    //! The scripts run here through the local `sh`, exactly as sshd would
    //! run them, in a temporary "home" with hostile directory names.

    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::ssh::commands::{parse_health, parse_list, parse_number, parse_probe, parse_sha256};
    use crate::Health;

    fn run(home: &Path, line: &str, stdin: &[u8]) -> String {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        {
            use std::io::Write;
            let mut w = child.stdin.take().expect("stdin");
            w.write_all(stdin).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{line}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn environ(pid: u32) -> String {
        std::fs::read(format!("/proc/{pid}/environ"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', "\n"))
            .unwrap_or_default()
    }

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_worker_still_in_its_exec_chain_is_alive() {
        use std::os::unix::process::CommandExt;

        // START's `nohup setsid env … burst-worker --worker-id ID`: until env
        // has run, the id is in the arguments only. A health check in that
        // window once terminated a worker that was about to connect.
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::write(home.path().join("log"), "worker log\n").expect("log");
        // Its own process group, so that the sleep dies with it below.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 300; :", "sh", "--worker-id", "p-9"])
            .env_remove("BURST_WORKER_ID")
            .process_group(0)
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        let health_of = |id: &str| parse_health(&run(home.path(), &health(".", id, pid), b""), "h");
        assert_eq!(health_of("p-9"), Some(Health::Running));
        assert_ne!(health_of("p-8"), Some(Health::Running));
        let group = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
        nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).expect("killpg");
        child.wait().expect("wait");
        assert_ne!(health_of("p-9"), Some(Health::Running));
    }

    #[test]
    fn lifecycle_through_sh_with_hostile_paths() {
        let home = tempfile::tempdir().expect("tempdir");
        let h = home.path();
        let install = path("in st'all; touch PWNED1");
        let state = path("$(touch PWNED2)/st`touch PWNED3`ate");
        let bin = join(&install, "burst-worker");
        let worker = b"#!/bin/sh\necho \"worker $*\" >&2\nexec sleep 300\n";

        let probe_out = run(h, &probe(&bin), b"");
        assert_eq!(
            parse_probe(&probe_out).and_then(|p| p.sha256),
            None,
            "{probe_out}"
        );

        let sum = parse_sha256(&run(h, &upload(&install, &bin), worker)).expect("sum");
        let want = {
            use sha2::Digest;
            format!("{:x}", sha2::Sha256::digest(worker))
        };
        assert_eq!(sum, want);
        assert!(h.join("in st'all; touch PWNED1/burst-worker").is_file());
        let probed = parse_probe(&run(h, &probe(&bin), b"")).expect("probe");
        assert_eq!(probed.sha256.as_deref(), Some(want.as_str()));

        let pool_dir = join(&join(&state, "m1"), "p");
        let dir = join(&pool_dir, "p-1");
        let env = vec![
            ("BURST_WORKER_ID".to_owned(), "p-1".to_owned()),
            ("EXTRA".to_owned(), "a 'b' $(c) ;d".to_owned()),
        ];
        let pid = parse_number(
            &run(h, &start(&dir, &bin, "p-1", &env), b"s3cret-token\n"),
            "burst-pid",
        )
        .expect("pid");
        wait_for("the worker's environment", || {
            environ(pid).contains("BURST_WORKER_ID=p-1")
        });
        let envs = environ(pid);
        // The token is in an owner-only file the worker reads, never in its
        // environment or arguments.
        assert!(!envs.contains("s3cret"), "{envs}");
        let token_file = h.join("$(touch PWNED2)/st`touch PWNED3`ate/m1/p/p-1/token");
        assert!(
            envs.contains(&format!("BURST_TOKEN_FILE={}\n", token_file.display())),
            "{envs}"
        );
        assert_eq!(
            std::fs::read_to_string(&token_file).expect("token file"),
            "s3cret-token\n"
        );
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&token_file)
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(envs.contains("EXTRA=a 'b' $(c) ;d\n"), "{envs}");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
        assert!(!String::from_utf8_lossy(&cmdline).contains("s3cret"));
        let worker_dir = h.join("$(touch PWNED2)/st`touch PWNED3`ate/m1/p/p-1");
        assert!(worker_dir.join("work").is_dir());
        assert!(
            envs.contains(&format!(
                "BURST_WORK_DIR={}\n",
                worker_dir.join("work").display()
            )),
            "{envs}"
        );

        assert_eq!(
            parse_list(&run(h, &list(&pool_dir), b"")),
            vec![("p-1".to_owned(), pid)]
        );
        assert_eq!(
            parse_health(&run(h, &health(&dir, "p-1", pid), b""), "h"),
            Some(Health::Running)
        );
        // A pid that is not this worker's is left alone.
        assert_eq!(
            parse_health(&run(h, &health(&dir, "p-2", pid), b""), "h")
                .map(|h| h == Health::Running),
            Some(false)
        );

        let left = parse_number(
            &run(h, &stop(&dir, "p-1", pid, 5, &state), b""),
            "burst-left",
        );
        assert_eq!(left, Some(0));
        wait_for("the worker to exit", || {
            !environ(pid).contains("BURST_WORKER_ID=p-1")
        });
        assert!(!worker_dir.exists());
        assert!(parse_list(&run(h, &list(&pool_dir), b"")).is_empty());
        // Stopping again is fine: gone is success.
        assert_eq!(
            parse_number(
                &run(h, &stop(&dir, "p-1", pid, 5, &state), b""),
                "burst-left"
            ),
            Some(0)
        );

        for marker in ["PWNED1", "PWNED2", "PWNED3"] {
            assert!(
                !h.join(marker).exists(),
                "{marker} was created: quoting failed"
            );
        }
    }
}
