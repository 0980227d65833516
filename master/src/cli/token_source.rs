//! Which API token the CLI sends: `--token-file`, else `BURST_TOKEN`, else
//! the admin token of a master on this machine (found through its state
//! dir's run.json, and only for a loopback URL on that master's port, so it
//! is never sent elsewhere). The CA an https:// master is checked against
//! is found the same way: `--ca-file`, else that master's self-signed CA.

use std::path::{Path, PathBuf};

use reqwest::Url;

use super::exit::CliError;
use crate::daemon::RunInfo;

const ENV: &str = "BURST_TOKEN";
/// The master's own override of its state dir, honoured here too.
const STATE_DIR_ENV: &str = "BURST__MASTER__STATE_DIR";
const DEFAULT_STATE_DIR: &str = ".burst";

pub fn resolve(url: &str, token_file: Option<&Path>) -> Result<Option<String>, CliError> {
    if let Some(path) = token_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Internal(format!(
                "failed to read the token file {}: {e}",
                path.display()
            ))
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(CliError::Internal(format!(
                "the token file {} is empty",
                path.display()
            )));
        }
        return Ok(Some(token.to_owned()));
    }
    if let Ok(token) = std::env::var(ENV) {
        if !token.trim().is_empty() {
            return Ok(Some(token.trim().to_owned()));
        }
    }
    Ok(local_admin_token(url, &state_dir()))
}

/// The CA file to trust for `url`: the flag's, else the self-signed CA of
/// the local master `url` points at (None: the system's roots).
pub fn ca_file(url: &str, flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| local_master(url, &state_dir())?.tls?.ca_file)
}

fn state_dir() -> PathBuf {
    std::env::var_os(STATE_DIR_ENV).map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), PathBuf::from)
}

/// The local master's admin token, when `url` points at that master.
fn local_admin_token(url: &str, state_dir: &Path) -> Option<String> {
    let path = local_master(url, state_dir)?.admin_token_file?;
    let token = std::fs::read_to_string(path).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// The run.json of the master in `state_dir`, when `url` is a loopback URL
/// on its API port.
fn local_master(url: &str, state_dir: &Path) -> Option<RunInfo> {
    let url = Url::parse(url).ok()?;
    let host = url.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let info: RunInfo =
        serde_json::from_slice(&std::fs::read(state_dir.join("run.json")).ok()?).ok()?;
    if !loopback || url.port_or_known_default()? != info.http.port() {
        return None;
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn run_json(dir: &Path, port: u16, token_file: &Path) {
        let info = RunInfo {
            pid: 1,
            master_id: "m".into(),
            http: ([127, 0, 0, 1], port).into(),
            grpc: ([127, 0, 0, 1], 1).into(),
            advertise_url: "http://x".into(),
            admin_token_file: Some(token_file.to_owned()),
            tls: Some(crate::daemon::RunTls {
                pin: "sha256:00".into(),
                ca_file: Some(dir.join("tls/ca.pem")),
            }),
        };
        std::fs::write(dir.join("run.json"), serde_json::to_vec(&info).unwrap()).unwrap();
    }

    #[test]
    fn the_local_token_goes_only_to_the_local_master() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin.token");
        std::fs::write(&file, "secret\n").unwrap();
        run_json(dir.path(), 8480, &file);
        let got = |url: &str| local_admin_token(url, dir.path());
        assert_eq!(got("http://127.0.0.1:8480").as_deref(), Some("secret"));
        assert_eq!(got("http://localhost:8480/").as_deref(), Some("secret"));
        assert_eq!(got("http://127.0.0.1:9999"), None);
        assert_eq!(got("http://example.com:8480"), None);
        assert_eq!(
            local_admin_token("http://127.0.0.1:8480", &dir.path().join("none")),
            None
        );
        let ca = |url: &str| local_master(url, dir.path()).and_then(|i| i.tls?.ca_file);
        assert_eq!(
            ca("https://127.0.0.1:8480"),
            Some(dir.path().join("tls/ca.pem"))
        );
        assert_eq!(ca("https://example.com:8480"), None);
    }

    #[test]
    fn a_token_file_wins_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t");
        std::fs::write(&file, " tok \n").unwrap();
        let got = resolve("http://127.0.0.1:1", Some(&file)).unwrap();
        assert_eq!(got.as_deref(), Some("tok"));
        std::fs::write(&file, "\n").unwrap();
        assert!(resolve("http://127.0.0.1:1", Some(&file)).is_err());
        assert!(resolve("http://127.0.0.1:1", Some(&dir.path().join("no"))).is_err());
    }
}
