# Sourced by images/*/build.sh (after they set `here`, `root` and `steps`):
# what both image builds share, so they agree on target, profile and version.
target=x86_64-unknown-linux-musl
target_dir="${CARGO_TARGET_DIR:-$root/target}"
busybox="${BUSYBOX:-/bin/busybox}"
profile="${BURST_PROFILE:-release}"
start=$(date +%s)
n=0
# Progress: "[2/5] what (seconds so far)".
step() {
  n=$((n + 1))
  echo "build.sh: [$n/$steps] $* ($(($(date +%s) - start)) s)"
}
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)"
[ -n "$version" ] || { echo "build.sh: no version in $root/Cargo.toml" >&2; exit 1; }
