#!/usr/bin/env bash
# The master image the packaging tests run: burst-master:latest, in CI's
# cargo profile (the binaries build-packages.sh packages, too).
set -euo pipefail
export BURST_PROFILE="${BURST_PROFILE:-ci}"
exec "$(dirname "$0")/../../images/master/build.sh"
