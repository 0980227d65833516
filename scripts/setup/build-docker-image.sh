#!/usr/bin/env bash
# The worker image the Docker provider tests run: burst-worker:latest.
set -euo pipefail
export BURST_PROFILE="${BURST_PROFILE:-ci}"
exec "$(dirname "$0")/../../images/docker/build.sh"
