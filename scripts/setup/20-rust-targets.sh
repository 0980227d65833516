#!/usr/bin/env bash
# Cross targets for the worker: static musl (container images) and Windows.
set -euo pipefail
installed=$(rustup target list --installed)
for t in x86_64-unknown-linux-musl x86_64-pc-windows-gnu; do
  if grep -qx "$t" <<<"$installed"; then
    echo "rustup: $t present"
  else
    rustup target add "$t"
  fi
done
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
