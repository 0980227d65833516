#!/usr/bin/env bash
# Builds the Docker worker image from a clean checkout, pulling nothing:
#   burst-worker:latest and burst-worker:<workspace version>
# Needs: the x86_64-unknown-linux-musl rustup target and Debian's musl-tools
# (scripts/setup/20-rust-targets.sh, 10-apt.sh), busybox-static and git
# (10-apt.sh) and a Docker engine.
#
#   images/docker/build.sh [IMAGE_NAME]    # default burst-worker
#   BURST_PROFILE=ci images/docker/build.sh # another cargo profile (CI's)
#
# With an actions runner it then builds the runner variant (Dockerfile.runner,
# docs/github-actions.md): IMAGE_NAME-runner:latest and :<version>, FROM the
# image just built, with the runner at /opt/actions-runner. The runner is
# never downloaded here; give it unpacked or as its release tarball:
#   images/docker/build.sh --runner DIR [IMAGE_NAME]   # DIR holds run.sh
#   BURST_RUNNER_TARBALL=actions-runner-linux-x64-2.x.tar.gz images/docker/build.sh
# and optionally BURST_RUNNER_IMAGE (its name), BURST_RUNNER_BASE (its FROM;
# the real .NET runner needs a glibc base, see Dockerfile.runner) and
# BURST_RUNNER_OWNER (numeric UID:GID owning /opt/actions-runner, default 0:0:
# the user the pool's steps run as).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
runner_flag=0
runner_src=""
positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runner)
      [ $# -ge 2 ] || { echo "build.sh: --runner needs a directory holding an unpacked actions-runner" >&2; exit 1; }
      runner_flag=1 runner_src="$2"
      shift 2
      ;;
    --runner=*) runner_flag=1 runner_src="${1#--runner=}"; shift ;;
    *) positional+=("$1"); shift ;;
  esac
done
name="${positional[0]:-burst-worker}"
steps=3
runner_tarball="${BURST_RUNNER_TARBALL:-}"
runner_dir=""
# Checked before the cargo build, so a wrong runner fails in seconds.
if [ "$runner_flag" = 1 ] && [ -n "$runner_tarball" ]; then
  echo "build.sh: set --runner DIR or BURST_RUNNER_TARBALL, not both" >&2
  exit 1
fi
if [ "$runner_flag" = 1 ]; then
  if [ ! -f "$runner_src/run.sh" ]; then
    echo "build.sh: --runner ${runner_src:-\"\"}: no run.sh there; pass the directory of an unpacked actions-runner (mkdir DIR && tar -xzf actions-runner-linux-x64-*.tar.gz -C DIR)" >&2
    exit 1
  fi
  if [ ! -x "$runner_src/run.sh" ]; then
    echo "build.sh: --runner $runner_src: run.sh is not executable; unpack the runner's tarball again (or chmod +x run.sh)" >&2
    exit 1
  fi
  runner_dir="$(cd "$runner_src" && pwd)"
elif [ -n "$runner_tarball" ]; then
  # tar -t reads the whole listing (grep -c does not stop early, so no
  # SIGPIPE under pipefail); a file tar cannot read counts 0 too.
  found="$(tar -tf "$runner_tarball" 2>/dev/null | grep -Ec '^(\./)?run\.sh$' || true)"
  if [ "${found:-0}" -eq 0 ]; then
    echo "build.sh: BURST_RUNNER_TARBALL=$runner_tarball: not a tarball with run.sh at its top; pass the actions-runner-linux-x64-*.tar.gz release" >&2
    exit 1
  fi
  runner_tarball="$(cd "$(dirname "$runner_tarball")" && pwd)/$(basename "$runner_tarball")"
fi
if [ "$runner_flag" = 1 ] || [ -n "$runner_tarball" ]; then
  steps=4
  runner_image="${BURST_RUNNER_IMAGE:-$name-runner}"
  runner_base="${BURST_RUNNER_BASE:-$name:latest}"
  runner_owner="${BURST_RUNNER_OWNER:-0:0}"
  # Numeric: the scratch image's /etc/passwd knows only root and nobody.
  if ! [[ "$runner_owner" =~ ^[0-9]+:[0-9]+$ ]]; then
    echo "build.sh: BURST_RUNNER_OWNER=$runner_owner: want numeric UID:GID (e.g. 1000:1000)" >&2
    exit 1
  fi
fi
# shellcheck source=../common.sh
. "$here/../common.sh"
# busybox-static's binary; the dynamic one of Debian's busybox package would
# find no libc in a FROM-scratch image.
if [ ! -x "$busybox" ] || ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"; then
  echo "build.sh: $busybox missing or not from busybox-static: run scripts/setup/10-apt.sh" >&2
  exit 1
fi
command -v docker >/dev/null || { echo "build.sh: docker CLI not found" >&2; exit 1; }
# The checkout step runs git in the container: Debian's, copied in below.
git_core=/usr/lib/git-core
if [ ! -x /usr/bin/git ] || [ ! -x "$git_core/git-remote-http" ]; then
  echo "build.sh: /usr/bin/git or $git_core/git-remote-http missing: run scripts/setup/10-apt.sh" >&2
  exit 1
fi

step "cargo build -p burst-worker --profile $profile --target $target"
(cd "$root" && cargo build -p burst-worker --profile "$profile" --target "$target" --locked)
worker="$target_dir/$target/$profile/burst-worker"

step "staging the root filesystem"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
rootfs="$stage/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/sbin" "$rootfs/usr/bin" "$rootfs/usr/sbin" "$rootfs/work" "$rootfs/tmp" "$rootfs/etc"
chmod 1777 "$rootfs/tmp"
chmod 0777 "$rootfs/work"
install -m 0755 "$worker" "$rootfs/bin/burst-worker"
install -m 0755 "$busybox" "$rootfs/bin/busybox"
# `busybox --install -s`, done here: every applet as a link to /bin/busybox.
count=0
while read -r applet; do
  case "$applet" in */*) ;; *) continue ;; esac   # skips "linuxrc"
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$rootfs/$(dirname "$applet")"
  ln -sf /bin/busybox "$rootfs/$applet"
  count=$((count + 1))
done < <("$busybox" --list-full)
# git for the checkout step: Debian's dynamic binaries with the shared
# libraries ldd names (and the loader), so FROM scratch can run them.
# Builtins (upload-pack for file:// fetches, …) are links to git; https
# needs git-remote-http (curl, gnutls) and the CA bundle; `git submodule`
# is a shell script run by busybox sh. No ssh client: ssh URLs need an
# image that has one.
copy_with_libs() {
  local src="$1"
  install -D -m 0755 "$src" "$rootfs$src"
  ldd "$src" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' | while read -r lib; do
    # The loader is what the kernel executes: it needs the x bit.
    mode=0644
    case "$lib" in */ld-linux*) mode=0755 ;; esac
    [ -e "$rootfs$lib" ] || install -D -m "$mode" "$(readlink -f "$lib")" "$rootfs$lib"
  done
}
copy_with_libs /usr/bin/git
copy_with_libs "$git_core/git-remote-http"
for builtin in git-upload-pack git-receive-pack git-upload-archive; do
  ln -sf /usr/bin/git "$rootfs$git_core/$builtin"
done
ln -sf git-remote-http "$rootfs$git_core/git-remote-https"
for script in git-submodule git-sh-setup git-sh-i18n; do
  install -m 0755 "$git_core/$script" "$rootfs$git_core/$script"
done
ln -sf /usr/bin/git "$rootfs$git_core/git"
# An empty template dir: `git init` warns without one.
mkdir -p "$rootfs/usr/share/git-core/templates"
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
# A root user and group so `id`, `whoami` and tools that look users up work.
printf 'root:x:0:0:root:/work:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
cp "$here/Dockerfile" "$stage/Dockerfile"

step "docker build $name:latest and $name:$version ($count busybox applets)"
# The classic builder needs no buildx plugin; FROM scratch pulls nothing.
DOCKER_BUILDKIT=0 docker build --quiet --pull=false \
  --label "org.opencontainers.image.version=$version" \
  -t "$name:latest" -t "$name:$version" "$stage" >/dev/null
size="$(docker image inspect -f '{{.Size}}' "$name:latest")"
echo "build.sh: built $name:latest ($name:$version), $((size / 1024)) KiB, profile $profile, in $(($(date +%s) - start)) s"
[ "$steps" = 4 ] || exit 0

step "docker build $runner_image:latest and $runner_image:$version FROM $runner_base (the actions runner)"
# Its own context: the runner and Dockerfile.runner, not the rootfs.
context="$stage/runner-context"
mkdir -p "$context/runner"
if [ -n "$runner_dir" ]; then
  cp -a "$runner_dir/." "$context/runner/"
else
  tar -xf "$runner_tarball" -C "$context/runner"
fi
if [ ! -x "$context/runner/run.sh" ]; then
  echo "build.sh: the staged runner has no executable run.sh" >&2
  exit 1
fi
# The owner is written into COPY --chown (see Dockerfile.runner).
sed "/^COPY /s|--chown=0:0 |--chown=$runner_owner |" "$here/Dockerfile.runner" >"$context/Dockerfile"
grep -q -- "--chown=$runner_owner " "$context/Dockerfile" || {
  echo "build.sh: Dockerfile.runner has no COPY --chown=0:0 line to set the owner in" >&2
  exit 1
}
DOCKER_BUILDKIT=0 docker build --quiet --pull=false \
  --build-arg "BASE_IMAGE=$runner_base" \
  --label "org.opencontainers.image.version=$version" \
  -t "$runner_image:latest" -t "$runner_image:$version" "$context" >/dev/null
size="$(docker image inspect -f '{{.Size}}' "$runner_image:latest")"
echo "build.sh: built $runner_image:latest ($runner_image:$version) FROM $runner_base, $((size / 1024)) KiB, in $(($(date +%s) - start)) s"
