//! Checks of a `[pools.NAME.ssh]` section: what ssh would read differently
//! or refuse at the first launch.

use std::collections::BTreeMap;

use super::config::SshPoolConfig;
use super::settings::Platform;
use crate::config::{check_env, Context, Path, Problems};
use burst_common::windows_quote::cmd_path_problem;

/// ssh splits option values on whitespace and expands `%` tokens in file
/// paths, so such paths would silently name another file.
fn ssh_path_problem(p: &str) -> Option<&'static str> {
    if p.is_empty() {
        Some("must not be empty")
    } else if p
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '%'))
    {
        Some("must not contain whitespace, quotes or '%' (ssh would read the path differently)")
    } else {
        None
    }
}

/// Every problem of the section, at `ssh.…` in the pool.
pub(super) fn check(ssh: &SshPoolConfig, ctx: &Context, out: &mut Problems) {
    let path = Path::root().key("ssh");
    let hosts = path.key("hosts");
    if ssh.hosts.is_empty() {
        out.push(&hosts, "an ssh pool needs at least one host");
    }
    out.check(&path.key("connect_timeout"), &ssh.connect_timeout);
    if let Some(file) = &ssh.known_hosts {
        if let Some(why) = ssh_path_problem(&file.to_string_lossy()) {
            out.push(&path.key("known_hosts"), why);
        }
    }
    for target in ssh.worker_binaries.keys() {
        let ok = target.split_once('-').is_some_and(|(os, arch)| {
            matches!(os, "linux" | "macos" | "windows")
                && !arch.is_empty()
                && arch
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
        if !ok {
            out.push(
                &path.key("worker_binaries").key(target),
                format!("{target:?} must be <os>-<arch> with os linux, macos or windows (e.g. linux-x86_64, macos-aarch64)"),
            );
        }
    }
    check_env(&path.key("env"), &ssh.env, out);
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut capacity = 0u32;
    for (i, h) in ssh.hosts.iter().enumerate() {
        let hp = hosts.index(i);
        capacity = capacity.saturating_add(h.max_workers.get());
        crate::config::check_price(&hp.key("price_per_hour"), h.price_per_hour, out);
        let name = h.display_name();
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
        if !name_ok {
            out.push(
                &hp.key("name"),
                format!("host name {name:?} must match [A-Za-z0-9._:-]+"),
            );
        } else if let Some(first) = names.insert(name.clone(), i) {
            out.push(
                &hp.key("name"),
                format!("duplicate host name {name:?} (also hosts[{first}]); set a distinct name"),
            );
        }
        if h.address.is_empty()
            || h.address.starts_with('-')
            || h.address
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            out.push(
                &hp.key("address"),
                format!("{:?} is not a host name or address", h.address),
            );
        }
        if h.port == 0 {
            out.push(&hp.key("port"), "must be between 1 and 65535");
        }
        if let Some(user) = &h.user {
            if user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
                out.push(&hp.key("user"), format!("{user:?} is not a user name"));
            }
        }
        if let Some(key) = &h.key_file {
            if let Some(why) = ssh_path_problem(&key.to_string_lossy()) {
                out.push(&hp.key("key_file"), why);
            }
        }
        out.check(&hp.key("max_workers"), &h.max_workers);
        let windows = h.platform == Platform::Windows;
        for (key, dir) in [("install_dir", &h.install_dir), ("state_dir", &h.state_dir)] {
            let Some(dir) = dir else { continue };
            if dir.is_empty() {
                out.push(&hp.key(key), "must not be empty");
            } else if dir.chars().any(char::is_control) {
                out.push(&hp.key(key), "must not contain control characters");
            } else if windows && key == "state_dir" {
                if let Some(why) = cmd_path_problem(dir) {
                    out.push(&hp.key(key), why);
                }
            }
        }
        for (key, argv) in [("wake", &h.wake), ("sleep", &h.sleep)] {
            if argv.first().is_some_and(String::is_empty) {
                out.push(
                    &hp.key(key).index(0),
                    "must name a program (argv[0] is empty)",
                );
            }
        }
        out.check(&hp.key("wake_timeout"), &h.wake_timeout);
    }
    if !ssh.hosts.is_empty() && ctx.min_idle > capacity {
        out.push(
            &Path::root().key("min_idle"),
            format!(
                "must not exceed the ssh hosts' total max_workers (got {} > {capacity})",
                ctx.min_idle
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_env_is_refused() {
        let ssh: SshPoolConfig = toml::from_str(
            "env = { BURST_WORK_DIR = \"/x\" }\n[[hosts]]\naddress = \"10.0.0.2\"\n",
        )
        .expect("parses");
        let mut out = Problems::new();
        check(&ssh, &Context::for_pool("p"), &mut out);
        let found = out.lines();
        assert_eq!(
            found,
            ["ssh.env.BURST_WORK_DIR: BURST_WORK_DIR is set by burst for every worker"]
        );
    }
}
