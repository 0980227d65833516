#!/usr/bin/env bash
# cargo-deb, which makes the Debian packages (scripts/setup/build-packages.sh),
# from crates.io at a pinned version.
set -euo pipefail
version=3.8.0
if command -v cargo-deb >/dev/null && [ "$(cargo-deb --version 2>/dev/null)" = "$version" ]; then
  echo "cargo-deb: $version present"
  exit 0
fi
echo "cargo-deb: installing $version"
cargo install cargo-deb --version "$version" --locked
