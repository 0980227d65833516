//! `burst artifacts BUILD [--get PATH] [-o DIR]`: list a build's files, or
//! download one (or all) with their sha256 checked.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::client::Client;
use super::exit::{CliError, Exit};
use super::output::Output;
use crate::artifacts::check_path;
use crate::model::{ArtifactInfo, BuildId};

pub async fn run(
    client: &Client,
    build: BuildId,
    get: Option<String>,
    dir: Option<PathBuf>,
    json: bool,
    out: &Output,
) -> Result<Exit, CliError> {
    let path = format!("/api/v1/builds/{build}/artifacts");
    if json && get.is_none() && dir.is_none() {
        return super::commands::print_json(
            out,
            &client.get_json::<serde_json::Value>(&path).await?,
        );
    }
    let all: Vec<ArtifactInfo> = client.get_json(&path).await?;
    match (get, dir) {
        (Some(want), dir) => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            let name = want.rsplit('/').next().unwrap_or(&want).to_owned();
            let to = download(client, build, &want, &dir, &name).await?;
            out.line(&format!("{want} -> {}", to.display()))?;
        }
        (None, Some(dir)) => {
            // The newest copy of each path (a later attempt's wins).
            let mut newest: std::collections::BTreeMap<&str, &ArtifactInfo> = Default::default();
            for a in &all {
                let keep = newest
                    .get(a.path.as_str())
                    .is_none_or(|b| (a.attempt, a.step) > (b.attempt, b.step));
                if keep {
                    newest.insert(&a.path, a);
                }
            }
            for a in newest.values() {
                let to = download(client, build, &a.path, &dir, &a.path).await?;
                out.line(&format!("{} -> {}", a.path, to.display()))?;
            }
            out.line(&format!(
                "{} artifact(s) of build {build} in {}",
                newest.len(),
                dir.display()
            ))?;
        }
        (None, None) => out.write(table(&all).as_bytes())?,
    }
    Ok(Exit::Success)
}

fn table(all: &[ArtifactInfo]) -> String {
    if all.is_empty() {
        return "no artifacts\n".to_owned();
    }
    let width = all.iter().map(|a| a.path.len()).max().unwrap_or(4).max(4);
    let mut s = format!(
        "{:width$}  {:>12}  {:<16}  STEP\n",
        "PATH", "SIZE", "SHA256"
    );
    for a in all {
        let step = a
            .step_name
            .clone()
            .unwrap_or_else(|| format!("#{}", a.step));
        s.push_str(&format!(
            "{:width$}  {:>12}  {:<16}  {step} (attempt {})\n",
            a.path,
            a.size,
            &a.sha256[..a.sha256.len().min(16)],
            a.attempt
        ));
    }
    s
}

/// Streams `path` into `dir/rel` through a temporary file, checks its
/// sha256 against the master's, and renames it into place.
async fn download(
    client: &Client,
    build: BuildId,
    path: &str,
    dir: &Path,
    rel: &str,
) -> Result<PathBuf, CliError> {
    // The master's answer names the file: nothing it says may leave `dir`.
    check_path(rel)
        .map_err(|why| CliError::Internal(format!("refused to write artifact {rel:?}: {why}")))?;
    let to = rel
        .split('/')
        .fold(dir.to_path_buf(), |p, part| p.join(part));
    let parent = to.parent().unwrap_or(dir).to_path_buf();
    std::fs::create_dir_all(&parent)?;
    let (want, stream) = client.artifact(build, path).await?;
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.{}.partial", std::process::id()));
    let result = save(stream, &tmp, want.as_deref(), path).await;
    match result.and_then(|()| std::fs::rename(&tmp, &to).map_err(CliError::Output)) {
        Ok(()) => Ok(to),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

async fn save(
    mut stream: super::client::LogStream,
    tmp: &Path,
    want: Option<&str>,
    path: &str,
) -> Result<(), CliError> {
    let mut file = std::fs::File::create(tmp)?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        file.write_all(&chunk)?;
    }
    file.sync_all()?;
    let got: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    match want {
        Some(want) if want != got => Err(CliError::Internal(format!(
            "artifact {path}: downloaded sha256 {got}, the master has {want}; not saved"
        ))),
        _ => Ok(()),
    }
}
