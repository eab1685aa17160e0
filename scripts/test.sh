#!/usr/bin/env bash
# Runs the whole test suite: unit tests, then integration tests against a real S3 server and a
# real Redis. Uses S3_TEST_ENDPOINT / BUCKETSYNC_REDIS_URL when set; otherwise starts the local
# radosgw (scripts/s3-server.sh) and Redis (scripts/redis-server.sh), and stops afterwards
# whatever this script started.
set -euo pipefail
cd "$(dirname "$0")/.."

started_s3=""
started_redis=""
cleanup() {
  if [ -n "$started_redis" ]; then scripts/redis-server.sh stop >/dev/null 2>&1 || true; fi
  if [ -n "$started_s3" ]; then scripts/s3-server.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [ -z "${S3_TEST_ENDPOINT:-}" ] && ! scripts/s3-server.sh env >/dev/null 2>&1; then
  scripts/s3-server.sh start >/dev/null
  started_s3=1
fi
if [ -z "${BUCKETSYNC_REDIS_URL:-}" ] && ! scripts/redis-server.sh env >/dev/null 2>&1; then
  scripts/redis-server.sh start >/dev/null
  started_redis=1
fi

# Files run one at a time: integration tests share one small server on a 2-core machine.
node --test --test-concurrency=1 dist/test/unit/ dist/test/integration/
