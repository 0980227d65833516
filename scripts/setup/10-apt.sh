#!/usr/bin/env bash
# Debian packages the tests need. Installs only what is missing.
set -euo pipefail
packages=(
  musl-tools            # static musl burst-worker for FROM-scratch images
  busybox-static        # the shell inside worker images
  gcc-mingw-w64-x86-64  # links the Windows burst-worker.exe and the wine shim DLL
  wine                  # runs the Windows worker in tests
  openssh-server        # sshd hosts for the ssh provider tests
  openssh-client
  e2fsprogs             # chattr: the store-fault tests make the database immutable
  prometheus            # the metrics e2e test scrapes the master with it (and promtool)
  systemd               # systemd-analyze verify checks packaging/systemd's units
  git                   # the trigger tests: bare repositories, git daemon, the poller's ls-remote
  chromium              # the web UI browser tests drive headless Chromium over DevTools
  zstd                  # the retention tests decode compressed step logs with the reference zstd
  ca-certificates       # the CA bundle images/master/build.sh puts in the master image
  file                  # images/master/build.sh checks its binaries are static
  lintian               # checks the Debian packages (packaging::debian tests)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "apt: all ${#packages[@]} packages present"
  exit 0
fi
echo "apt: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
