//! Making sure a host has the worker image: pulled from its registry, or
//! built from a local build context, per the pool's pull policy.

use std::path::Path;
use std::time::Duration;

use bollard::errors::Error;
use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use bollard::Docker;
use futures::StreamExt;
use tokio::time::Instant;

use super::errors::{self, Class};
use super::hosts::Host;
use super::settings::{DockerSettings, PullPolicy};
use crate::ProviderError;

/// With `pull = "always"`, launches within this window of a pull reuse it:
/// a burst of launches pulls once.
pub(super) const PULL_ALWAYS_WINDOW: Duration = Duration::from_secs(60);

/// Pulls and builds may take long; they get their own timeout.
const IMAGE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// `registry:5000/team/img:tag` -> (`registry:5000/team/img`, `tag`); a
/// digest reference is kept whole with no tag; no tag means `latest`.
pub(super) fn split_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], &image[name_start + i + 1..]),
        None => (image, "latest"),
    }
}

/// Whether the host has the image.
pub(super) async fn exists(
    host: &Host,
    docker: &Docker,
    image: &str,
) -> Result<bool, ProviderError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if errors::is_not_found(&e) => Ok(false),
        Err(e) => Err(errors::provider_error(
            &format!("inspect image {image}"),
            host.name(),
            e,
        )),
    }
}

/// The error for a missing image the policy does not let us fetch.
pub(super) fn missing(image: &str, host: &str) -> ProviderError {
    ProviderError::permanent(format!(
        "failed to find image {image} on docker host {host}: build it with \
         images/docker/build.sh or set pull = \"if-missing\""
    ))
    .with_code("image_missing")
}

/// Fetches the image after a container create found it missing: builds it
/// from the build context, or pulls it, as the settings say.
pub(super) async fn provide(
    host: &Host,
    docker: &Docker,
    s: &DockerSettings,
) -> Result<(), ProviderError> {
    if s.build_context.is_none() && s.pull == PullPolicy::Never {
        return Err(missing(&s.image, host.name()));
    }
    // One fetch per host at a time; whoever waited re-checks first.
    let _guard = host.image_lock.lock().await;
    if exists(host, docker, &s.image).await? {
        return Ok(());
    }
    match &s.build_context {
        Some(context) => build(host, docker, s, context).await,
        None => pull(host, docker, &s.image).await,
    }
}

/// `pull = "always"`: pulls unless a pull on this host is recent.
pub(super) async fn refresh(
    host: &Host,
    docker: &Docker,
    image: &str,
) -> Result<(), ProviderError> {
    let mut last = host.image_lock.lock().await;
    if last.is_some_and(|t| t.elapsed() < PULL_ALWAYS_WINDOW) {
        return Ok(());
    }
    pull(host, docker, image).await?;
    *last = Some(Instant::now());
    Ok(())
}

async fn pull(host: &Host, docker: &Docker, image: &str) -> Result<(), ProviderError> {
    let (repo, tag) = split_reference(image);
    let options = CreateImageOptionsBuilder::new()
        .from_image(repo)
        .tag(tag)
        .build();
    tracing::info!(%image, host = host.name(), "pulling worker image");
    let docker = docker.clone().with_timeout(IMAGE_TIMEOUT);
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(item) = progress.next().await {
        if let Err(e) = item {
            return Err(pull_error(image, host.name(), e));
        }
    }
    Ok(())
}

/// A registry that does not know the image, or refuses us, is permanent;
/// a network problem on the way is not.
fn pull_error(image: &str, host: &str, e: Error) -> ProviderError {
    let text = format!(
        "failed to pull image {image} on docker host {host}: {}",
        errors::message(&e)
    );
    let permanent = match &e {
        Error::DockerStreamError { error } => {
            let error = error.to_ascii_lowercase();
            [
                "not found",
                "manifest unknown",
                "pull access denied",
                "unauthorized",
                "denied",
            ]
            .iter()
            .any(|m| error.contains(m))
        }
        other => matches!(errors::class(other), Class::NotFound | Class::Refused),
    };
    let err = if permanent {
        ProviderError::permanent(text)
    } else {
        ProviderError::transient(text)
    };
    err.with_source(e)
}

async fn build(
    host: &Host,
    docker: &Docker,
    s: &DockerSettings,
    context: &Path,
) -> Result<(), ProviderError> {
    let image = &s.image;
    tracing::info!(%image, host = host.name(), context = %context.display(), "building worker image");
    let tarball = {
        let context = context.to_owned();
        tokio::task::spawn_blocking(move || tar_context(&context))
            .await
            .map_err(|e| {
                ProviderError::transient(format!("failed to pack the build context: {e}"))
            })??
    };
    let options = BuildImageOptionsBuilder::new()
        .t(image)
        .dockerfile(&s.dockerfile)
        .rm(true)
        .forcerm(true)
        .build();
    let docker = docker.clone().with_timeout(IMAGE_TIMEOUT);
    let mut progress = docker.build_image(options, None, Some(bollard::body_full(tarball.into())));
    while let Some(item) = progress.next().await {
        match item {
            Ok(info) => {
                if let Some(line) = info
                    .stream
                    .as_deref()
                    .map(str::trim_end)
                    .filter(|l| !l.is_empty())
                {
                    tracing::debug!(host = host.name(), "build: {line}");
                }
            }
            Err(e) => {
                let text = format!(
                    "failed to build image {image} on docker host {} from {}: {}",
                    host.name(),
                    context.display(),
                    errors::message(&e)
                );
                // A failing Dockerfile fails again; a dropped connection may not.
                return Err(match (&e, errors::class(&e)) {
                    (Error::DockerStreamError { .. }, _)
                    | (_, Class::Refused | Class::NotFound) => ProviderError::permanent(text),
                    _ => ProviderError::transient(text),
                });
            }
        }
    }
    if exists(host, &docker, image).await? {
        Ok(())
    } else {
        Err(ProviderError::permanent(format!(
            "failed to build image {image} on docker host {}: the build finished without tagging it",
            host.name()
        )))
    }
}

/// The build context as an uncompressed tar, symlinks kept as links (a
/// busybox tree is mostly links).
pub(super) fn tar_context(dir: &Path) -> Result<Vec<u8>, ProviderError> {
    let fail = |e: std::io::Error| {
        ProviderError::permanent(format!(
            "failed to pack build context {}: {e}",
            dir.display()
        ))
    };
    if !dir.is_dir() {
        return Err(ProviderError::permanent(format!(
            "failed to find build context {}: not a directory",
            dir.display()
        )));
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir).map_err(fail)?;
    builder.into_inner().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            split_reference("burst-worker:latest"),
            ("burst-worker", "latest")
        );
        assert_eq!(split_reference("burst-worker"), ("burst-worker", "latest"));
        assert_eq!(
            split_reference("registry:5000/team/img:1.2"),
            ("registry:5000/team/img", "1.2")
        );
        assert_eq!(
            split_reference("registry:5000/team/img"),
            ("registry:5000/team/img", "latest")
        );
        assert_eq!(split_reference("img@sha256:abc"), ("img@sha256:abc", ""));
    }

    #[test]
    fn pull_errors_sorted() {
        let stream = |m: &str| Error::DockerStreamError { error: m.into() };
        assert!(pull_error("i", "h", stream("manifest unknown")).is_permanent());
        assert!(pull_error("i", "h", stream("pull access denied for i")).is_permanent());
        assert!(!pull_error("i", "h", stream("unexpected EOF")).is_permanent());
        let server = |code| Error::DockerResponseServerError {
            status_code: code,
            message: "x".into(),
        };
        assert!(pull_error("i", "h", server(404)).is_permanent());
        assert!(!pull_error("i", "h", server(500)).is_permanent());
    }

    #[test]
    fn missing_image_message_names_the_fix() {
        let e = missing("burst-worker:latest", "local");
        assert!(e.is_permanent());
        assert_eq!(
            e.message,
            "failed to find image burst-worker:latest on docker host local: build it with \
             images/docker/build.sh or set pull = \"if-missing\""
        );
    }

    #[test]
    fn context_tar_keeps_links() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n")?;
        std::fs::create_dir(dir.path().join("bin"))?;
        std::fs::write(dir.path().join("bin/busybox"), "x")?;
        #[cfg(unix)]
        std::os::unix::fs::symlink("busybox", dir.path().join("bin/sh"))?;
        let tarball = tar_context(dir.path())?;
        let mut archive = tar::Archive::new(tarball.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries()? {
            let entry = entry?;
            let path = entry.path()?.to_string_lossy().into_owned();
            if path.ends_with("sh") {
                assert!(entry.header().entry_type().is_symlink(), "{path}");
            }
            seen.push(path);
        }
        assert!(seen.iter().any(|p| p.ends_with("Dockerfile")), "{seen:?}");
        assert!(tar_context(&dir.path().join("nope")).is_err());
        Ok(())
    }
}
