#!/usr/bin/env bash
# Builds the Docker worker image from a clean checkout, pulling nothing:
#   burst-worker:latest and burst-worker:<workspace version>
# Needs: the x86_64-unknown-linux-musl rustup target and Debian's musl-tools
# (scripts/setup/20-rust-targets.sh, 10-apt.sh), busybox-static and git
# (10-apt.sh) and a Docker engine.
#
#   images/docker/build.sh [IMAGE_NAME]    # default burst-worker
#   BURST_PROFILE=ci images/docker/build.sh # another cargo profile (CI's)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
name="${1:-burst-worker}"
steps=3
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
