#!/bin/sh
# burst worker boot, rendered by burst's ec2 provider for one instance and
# run once by cloud-init, as root. The launch token below is single-use: the
# worker's first hello spends it, before any step runs. The metadata
# service keeps serving this script, so it is closed to the step user.
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
eval "$settings"
# The token goes into an owner-only file the worker deletes once read: never
# into an environment, which /proc shows.
run_dir=${BURST_RUN_DIR:-/run/burst}
(umask 077 && mkdir -p "$run_dir" && printf '%s\n' "$BURST_TOKEN" >"$run_dir/token")
unset BURST_TOKEN
BURST_TOKEN_FILE=$run_dir/token
export BURST_MASTER_URL BURST_WORKER_ID BURST_LABELS BURST_IMDS_URL BURST_MASTER_PIN BURST_TOKEN_FILE

# Tests and custom images run a given binary in the foreground.
if [ -n "${BURST_WORKER_BIN:-}" ]; then
  exec "$BURST_WORKER_BIN"
fi

# The worker runs as root and its steps as the image's step user, for whom
# the metadata service (this script, the instance's credentials) is closed.
step_user=burst
step_line=
if id "$step_user" >/dev/null 2>&1; then
  iptables -w -I OUTPUT -d 169.254.169.254/32 -m owner --uid-owner "$step_user" -j REJECT
  if command -v ip6tables >/dev/null 2>&1; then
    ip6tables -w -I OUTPUT -d fd00:ec2::254/128 -m owner --uid-owner "$step_user" -j REJECT || true
  fi
  step_line="BURST_STEP_USER=$step_user"
fi

# The image's unit sources /run/burst/worker.env (on tmpfs: gone at the
# next boot).
if command -v systemctl >/dev/null 2>&1 && systemctl cat burst-worker.service >/dev/null 2>&1; then
  (umask 077 && { printf '%s\n' "$settings" | grep -v '^BURST_TOKEN='
    printf '%s\n' "BURST_TOKEN_FILE=$BURST_TOKEN_FILE" $step_line; } >"$run_dir/worker.env")
  systemctl start --no-block burst-worker.service
  exit 0
fi
if [ -n "$step_line" ]; then export "$step_line"; fi
exec /usr/local/bin/burst-worker
