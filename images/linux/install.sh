#!/bin/sh
# Installs burst-worker as a systemd service (run by packer as root).
set -eu

install -m 0755 /tmp/burst-worker /usr/local/bin/burst-worker
/usr/local/bin/burst-worker --version

install -m 0644 /tmp/burst-worker.service /etc/systemd/system/burst-worker.service
systemctl daemon-reload
# Not enabled on purpose: only user-data starts burst-worker.service, once
# it has written /run/burst/worker.env for this boot.

# Builds run as an unprivileged user that may sudo: the machine is thrown
# away after its builds anyway. (A step that sudoes can undo the metadata
# block user-data installs for this user; drop the sudoers line when builds
# do not need root.) iptables installs that block.
if ! command -v iptables >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then apt-get install -y iptables
  elif command -v dnf >/dev/null 2>&1; then dnf install -y iptables-nft
  fi
fi
if ! id burst >/dev/null 2>&1; then
  useradd --system --create-home --home-dir /var/lib/burst --shell /bin/bash burst
fi
install -d -o burst -g burst -m 0755 /var/lib/burst/work
echo 'burst ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/burst
chmod 0440 /etc/sudoers.d/burst

# Instances from this image must run their own user-data at first boot.
cloud-init clean --logs
