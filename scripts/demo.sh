#!/usr/bin/env bash
# The main job on the local S3 server: production -> staging with --delete and --acl public-read.
set -euo pipefail
cd "$(dirname "$0")/.."

started=""
if ! scripts/s3-server.sh env >/dev/null 2>&1; then
  scripts/s3-server.sh start >/dev/null
  started=1
fi
stop() { if [ -n "$started" ] && [ -z "${KEEP_SERVER:-}" ]; then scripts/s3-server.sh stop >/dev/null 2>&1 || true; fi; }
trap stop EXIT

# shellcheck disable=SC1091
source .s3-server/env
export AWS_ACCESS_KEY_ID="$BUCKETSYNC_S3_A_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$BUCKETSYNC_S3_A_SECRET_ACCESS_KEY"
E="$BUCKETSYNC_S3_ENDPOINT"
bucketsync() { node dist/src/cli/bin.js "$@"; }
run() { echo; echo "\$ bucketsync $*"; bucketsync "$@"; }

suffix=$(date +%s)
prod="acme-production-$suffix"
staging="acme-staging-$suffix"
echo "Seeding s3://$prod with 3000 objects of mixed sizes on $E ..."
node dist/scripts/seed.js "$prod" 3000 mixed
node dist/scripts/seed.js "$staging" 50 1k stale/

run sync "s3://$prod" "s3://$staging" --delete --acl public-read --quiet --endpoint-url "$E"
run sync "s3://$prod" "s3://$staging" --delete --acl public-read --endpoint-url "$E"
run check "s3://$prod" "s3://$staging" --endpoint-url "$E"
key="images/file-0000000.bin"
echo
echo "Anonymous GET of s3://$staging/$key: HTTP $(curl -s -o /dev/null -w '%{http_code}' "$E/$staging/$key")"
echo "Anonymous listing of s3://$staging:  HTTP $(curl -s -o /dev/null -w '%{http_code}' "$E/$staging?list-type=2")"
