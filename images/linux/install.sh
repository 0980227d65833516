#!/bin/sh
# Installs burst-worker as a systemd service (run by packer as root).
set -eu

install -m 0755 /tmp/burst-worker /usr/local/bin/burst-worker
/usr/local/bin/burst-worker --version

install -m 0644 /tmp/burst-worker.service /etc/systemd/system/burst-worker.service
systemctl daemon-reload
# Not enabled on purpose: only user-data starts burst-worker.service, once
# it has written /run/burst/worker.env for this boot.

# Builds run as an unprivileged user, for whom user-data closes the metadata
# service (iptables installs that block). A step that could become root could
# undo the block, so sudo for that user is opt-in: STEP_SUDO=1 (packer
# variable step_sudo) for builds that need root on a throwaway machine.
if ! command -v iptables >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then apt-get install -y iptables
  elif command -v dnf >/dev/null 2>&1; then dnf install -y iptables-nft
  fi
fi
if ! id burst >/dev/null 2>&1; then
  useradd --system --create-home --home-dir /var/lib/burst --shell /bin/bash burst
fi
install -d -o burst -g burst -m 0755 /var/lib/burst/work
if [ "${STEP_SUDO:-0}" = 1 ]; then
  echo 'burst ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/burst
  chmod 0440 /etc/sudoers.d/burst
else
  rm -f /etc/sudoers.d/burst
fi

# The optional GitHub Actions runner (packer variable actions_runner_tarball,
# docs/github-actions.md): a runner build's step runs it as the step user,
# and it writes _diag/ and _work/ into its directory, so burst owns it.
# Without one, packer uploaded a stand-in file, deleted below.
if [ "${ACTIONS_RUNNER:-0}" = 1 ]; then
  rm -rf /opt/actions-runner
  install -d -m 0755 /opt/actions-runner
  tar -xzf /tmp/actions-runner.tar.gz -C /opt/actions-runner
  if [ ! -x /opt/actions-runner/run.sh ]; then
    echo "install.sh: no run.sh at the top of actions_runner_tarball: pass the actions-runner-linux-x64-*.tar.gz release" >&2
    exit 1
  fi
  # The .NET runner's libraries (libicu, OpenSSL, Kerberos, ...), by apt
  # or dnf, when the tarball ships the runner's script for them.
  if [ -f /opt/actions-runner/bin/installdependencies.sh ]; then
    (cd /opt/actions-runner/bin && bash ./installdependencies.sh)
  fi
  chown -R burst:burst /opt/actions-runner
fi
rm -f /tmp/actions-runner.tar.gz

# Instances from this image must run their own user-data at first boot.
cloud-init clean --logs
