#!/usr/bin/env bash
# Runs the whole test suite: unit tests, then integration tests against a real S3 server.
# Uses S3_TEST_ENDPOINT when set; otherwise starts the local radosgw (scripts/s3-server.sh),
# and stops it afterwards if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."

started=""
cleanup() {
  if [ -n "$started" ]; then scripts/s3-server.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [ -z "${S3_TEST_ENDPOINT:-}" ]; then
  if ! scripts/s3-server.sh env >/dev/null 2>&1; then
    scripts/s3-server.sh start >/dev/null
    started=1
  fi
fi

# Files run one at a time: integration tests share one small server on a 2-core machine.
node --test --test-concurrency=1 dist/test/unit/ dist/test/integration/
