#!/usr/bin/env bash
# The Windows worker and what the wine tests need next to it:
#  - burst-worker.exe, cross-compiled for x86_64-pc-windows-gnu;
#  - bcryptprimitives.dll, a test-only shim: Rust's std imports ProcessPrng
#    from it and wine 8 does not have it (source: tests/wine/);
#  - echoargs.exe, which prints its arguments (quoting tests);
#  - a wine prefix, initialised once here so tests do not pay for it.
# Output: $CARGO_TARGET_DIR/x86_64-pc-windows-gnu/debug/ and
# $CARGO_TARGET_DIR/wineprefix. Tests in tests/tests/e2e/windows.rs use them.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
target=x86_64-pc-windows-gnu
out="$CARGO_TARGET_DIR/$target/debug"

cargo build -p burst-worker --target "$target" --locked

x86_64-w64-mingw32-gcc -shared -O2 -o "$out/bcryptprimitives.dll" \
  tests/wine/bcryptprimitives.c tests/wine/bcryptprimitives.def -lbcrypt
x86_64-w64-mingw32-gcc -O2 -o "$out/echoargs.exe" tests/wine/echoargs.c -lshell32

export WINEPREFIX="$CARGO_TARGET_DIR/wineprefix" WINEDEBUG=-all
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "wine: initialising $WINEPREFIX"
  timeout 300 wineboot -i
fi
# Wait for wineserver to finish writing the registry, then check the worker
# starts under wine.
timeout 120 wineserver -w || true
timeout 120 wine "$out/burst-worker.exe" --version
