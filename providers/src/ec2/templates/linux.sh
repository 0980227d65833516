#!/bin/sh
# burst worker boot, rendered by burst's ec2 provider for one instance and
# run once by cloud-init. The launch token below is single-use: nothing here
# outlives this worker.
set -eu
settings=$(cat <<'BURST_SETTINGS'
BURST_MASTER_URL={{BURST_MASTER_URL}}
BURST_WORKER_ID={{BURST_WORKER_ID}}
BURST_TOKEN={{BURST_TOKEN}}
BURST_LABELS={{BURST_LABELS}}
BURST_IMDS_URL={{BURST_IMDS_URL}}
BURST_MASTER_PIN={{BURST_MASTER_PIN}}
BURST_SETTINGS
)
set -a
eval "$settings"
set +a

# Tests and custom images run a given binary in the foreground.
if [ -n "${BURST_WORKER_BIN:-}" ]; then
  exec "$BURST_WORKER_BIN"
fi

# The image's unit sources this file (on tmpfs: gone at the next boot).
if command -v systemctl >/dev/null 2>&1 && systemctl cat burst-worker.service >/dev/null 2>&1; then
  (umask 077 && mkdir -p /run/burst && printf '%s\n' "$settings" >/run/burst/worker.env)
  systemctl start --no-block burst-worker.service
  exit 0
fi
exec /usr/local/bin/burst-worker
