#!/usr/bin/env bash
# Builds the Docker worker image from a clean checkout, pulling nothing:
#   burst-worker:latest and burst-worker:<workspace version>
# Needs: the x86_64-unknown-linux-musl rustup target and Debian's musl-tools
# (scripts/setup/20-rust-targets.sh, 10-apt.sh), busybox-static (10-apt.sh)
# and a Docker engine.
#
#   images/docker/build.sh [IMAGE_NAME]    # default burst-worker
#   BURST_PROFILE=ci images/docker/build.sh # another cargo profile (CI's)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
name="${1:-burst-worker}"
target=x86_64-unknown-linux-musl
target_dir="${CARGO_TARGET_DIR:-$root/target}"
busybox="${BUSYBOX:-/bin/busybox}"
profile="${BURST_PROFILE:-release}"
start=$(date +%s)
n=0
step() {
  n=$((n + 1))
  echo "build.sh: [$n/3] $* ($(($(date +%s) - start)) s)"
}

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)"
[ -n "$version" ] || { echo "build.sh: no version in $root/Cargo.toml" >&2; exit 1; }
# busybox-static's binary; the dynamic one of Debian's busybox package would
# find no libc in a FROM-scratch image.
if [ ! -x "$busybox" ] || ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"; then
  echo "build.sh: $busybox missing or not from busybox-static: run scripts/setup/10-apt.sh" >&2
  exit 1
fi
command -v docker >/dev/null || { echo "build.sh: docker CLI not found" >&2; exit 1; }

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
