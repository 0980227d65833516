#!/usr/bin/env bash
# The Debian packages burst and burst-worker, from the static binaries
# build-docker-image.sh and build-master-image.sh built (no second build:
# `cargo deb --no-build`), into $CARGO_TARGET_DIR/debian/. Man pages and
# completions come from that `burst` itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
profile="${BURST_PROFILE:-ci}"
target=x86_64-unknown-linux-musl
bin_dir="$CARGO_TARGET_DIR/$target/$profile"
for b in burst burst-worker; do
  [ -x "$bin_dir/$b" ] || { echo "build-packages: $bin_dir/$b missing: run scripts/setup/build-master-image.sh" >&2; exit 1; }
done
command -v cargo-deb >/dev/null || { echo "build-packages: cargo-deb missing: run scripts/setup/40-cargo-deb.sh" >&2; exit 1; }

echo "build-packages: [1/3] man pages and completions from $bin_dir/burst"
gen="$bin_dir/deb"
rm -rf "$gen"
"$bin_dir/burst" manpages "$gen/man" >/dev/null
# Debian installs man pages gzipped (-n: no name or time, reproducible).
gzip -9n "$gen"/man/*.1
mkdir -p "$gen/completions"
"$bin_dir/burst" completions bash >"$gen/completions/burst.bash"
"$bin_dir/burst" completions zsh >"$gen/completions/_burst"
"$bin_dir/burst" completions fish >"$gen/completions/burst.fish"

out="$CARGO_TARGET_DIR/debian"
rm -rf "$out"
mkdir -p "$out"
echo "build-packages: [2/3] cargo deb -p burst-worker --no-build"
cargo deb -p burst-worker --no-build --no-strip --target "$target" --profile "$profile" --output "$out" --quiet
echo "build-packages: [3/3] cargo deb -p burst-master --no-build"
cargo deb -p burst-master --no-build --no-strip --target "$target" --profile "$profile" --output "$out" --quiet
ls -l "$out"
