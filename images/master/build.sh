#!/usr/bin/env bash
# Builds the master image from a clean checkout, pulling nothing:
#   burst-master:latest and burst-master:<workspace version>
# FROM scratch with the static musl `burst` and `burst-worker` (for local
# pools), busybox (the steps' shell), Debian's CA bundle and a default config.
# Needs: the x86_64-unknown-linux-musl rustup target and Debian's musl-tools
# (scripts/setup/20-rust-targets.sh, 10-apt.sh), busybox-static and
# ca-certificates (10-apt.sh), and a Docker engine.
#
#   images/master/build.sh [IMAGE_NAME]    # default burst-master
#   BURST_PROFILE=ci images/master/build.sh # another cargo profile (CI's)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
name="${1:-burst-master}"
ca_bundle=/etc/ssl/certs/ca-certificates.crt
steps=5
# shellcheck source=../common.sh
. "$here/../common.sh"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# busybox-static's binary: the dynamic one of Debian's busybox package would
# find no libc in a FROM-scratch image.
if [ ! -x "$busybox" ] || ! installed busybox-static; then
  echo "build.sh: $busybox missing or not from busybox-static: run scripts/setup/10-apt.sh" >&2
  exit 1
fi
if [ ! -s "$ca_bundle" ] || ! installed ca-certificates; then
  echo "build.sh: $ca_bundle missing: run scripts/setup/10-apt.sh (ca-certificates)" >&2
  exit 1
fi
command -v docker >/dev/null || { echo "build.sh: docker CLI not found" >&2; exit 1; }

# Two cargo runs, not one: each package alone resolves the features it
# resolves in images/docker/build.sh, so the worker built there is reused.
step "cargo build -p burst-master --profile $profile --target $target (the long part)"
(cd "$root" && cargo build -p burst-master --bin burst --profile "$profile" --target "$target" --locked)
step "cargo build -p burst-worker --profile $profile --target $target"
(cd "$root" && cargo build -p burst-worker --profile "$profile" --target "$target" --locked)
bin_dir="$target_dir/$target/$profile"
for b in burst burst-worker; do
  # A static binary or nothing: a dynamic one would not start in the image.
  if ! file -b "$bin_dir/$b" | grep -q "static"; then
    echo "build.sh: $bin_dir/$b is not statically linked: $(file -b "$bin_dir/$b")" >&2
    exit 1
  fi
done

step "staging the root filesystem"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
rootfs="$stage/rootfs"
mkdir -p "$rootfs/usr/bin" "$rootfs/bin" "$rootfs/etc/burst" "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$stage/state"
chmod 1777 "$rootfs/tmp"
install -m 0755 "$bin_dir/burst" "$rootfs/usr/bin/burst"
install -m 0755 "$bin_dir/burst-worker" "$rootfs/usr/bin/burst-worker"
install -m 0755 "$busybox" "$rootfs/bin/busybox"
count=0
while read -r applet; do
  case "$applet" in */*) ;; *) continue ;; esac   # skips "linuxrc"
  [ "$applet" = bin/busybox ] && continue
  [ -e "$rootfs/$applet" ] && continue
  mkdir -p "$rootfs/$(dirname "$applet")"
  ln -sf /bin/busybox "$rootfs/$applet"
  count=$((count + 1))
done < <("$busybox" --list-full)
install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
install -m 0644 "$here/burst.toml" "$rootfs/etc/burst/burst.toml"
# The master's user (10001, as USER in the Dockerfile), so `id`, `whoami`
# and the workers' HOME resolve.
printf 'root:x:0:0:root:/root:/bin/sh\nburst:x:10001:10001:burst:/var/lib/burst:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nburst:x:10001:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
chmod 0700 "$stage/state"
cp "$here/Dockerfile" "$stage/Dockerfile"

step "docker build $name:latest ($count busybox applets)"
# The classic builder needs no buildx plugin; FROM scratch pulls nothing.
DOCKER_BUILDKIT=0 docker build --quiet --pull=false \
  --label "org.opencontainers.image.version=$version" \
  -t "$name:latest" -t "$name:$version" "$stage" >/dev/null

step "checking the image"
size="$(docker image inspect -f '{{.Size}}' "$name:latest")"
docker run --rm --entrypoint /usr/bin/burst "$name:latest" --version >/dev/null
echo "build.sh: built $name:latest ($name:$version), $((size / 1024)) KiB (burst $(($(stat -c %s "$bin_dir/burst") / 1024)) KiB, burst-worker $(($(stat -c %s "$bin_dir/burst-worker") / 1024)) KiB), profile $profile, in $(($(date +%s) - start)) s"
