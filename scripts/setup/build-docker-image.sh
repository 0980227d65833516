#!/usr/bin/env bash
# The worker images the Docker provider tests run: burst-worker:latest, and
# burst-worker-runner:latest with the tests' fake actions runner in
# /opt/actions-runner (images/docker/Dockerfile.runner; the GitHub runner
# tests on a Docker pool). One cargo build serves both.
set -euo pipefail
export BURST_PROFILE="${BURST_PROFILE:-ci}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
exec "$root/images/docker/build.sh" --runner "$root/tests/fixtures/fake-runner"
