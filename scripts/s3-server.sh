#!/usr/bin/env bash
# A real S3 server for bucketsync's tests and demo: a single-node Ceph cluster
# (1 mon, 1 OSD on memstore, i.e. data in RAM) with radosgw on 127.0.0.1.
#
#   scripts/s3-server.sh start [DIR]   start (or reuse) a server; prints the env file
#   scripts/s3-server.sh stop  [DIR]   stop exactly the daemons recorded in DIR
#   scripts/s3-server.sh env   [DIR]   print the env file (exit 1 if not running)
#
# DIR defaults to $REPO/.s3-server. Everything lives in DIR: ceph.conf, mon and OSD
# data, admin sockets, logs (DIR/log), pid files (DIR/pids), and the outputs
#   DIR/env       shell `export` lines (source it)
#   DIR/env.json  the same as JSON
# Data is in RAM only and is lost on stop; `start` after a stop builds a new cluster.
#
# Ports (override with env vars):
#   BUCKETSYNC_S3_PORT          S3 endpoint              (default 17480)
#   BUCKETSYNC_S3_MON_PORT      ceph-mon (msgr2)         (default 16789)
#   BUCKETSYNC_S3_MS_PORT_MIN   ceph daemon port range   (default 16800)
#   BUCKETSYNC_S3_MS_PORT_MAX                            (default 16899)
# Other knobs:
#   BUCKETSYNC_S3_MEMSTORE_BYTES  OSD capacity in bytes (default 4 GiB; RAM is only
#                                 used for what is stored)
#   BUCKETSYNC_S3_START_TIMEOUT   seconds to wait for each daemon (default 90)
#   BUCKETSYNC_S3_RGW_DEBUG       radosgw log level: 1 (default) logs every request,
#                                 0 only errors (for benchmarks: ~500 bytes/request)
#
# Fixed TEST-ONLY credentials (region us-east-1, path-style addressing):
#   user A: uid bucketsync-a  BUCKETSYNCTESTKEYA01 / bucketsync-test-secret-a-not-a-real-secret
#   user B: uid bucketsync-b  BUCKETSYNCTESTKEYB01 / bucketsync-test-secret-b-not-a-real-secret
# A and B are separate accounts: B has no access to A's private buckets.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)

S3_PORT=${BUCKETSYNC_S3_PORT:-17480}
MON_PORT=${BUCKETSYNC_S3_MON_PORT:-16789}
MS_PORT_MIN=${BUCKETSYNC_S3_MS_PORT_MIN:-16800}
MS_PORT_MAX=${BUCKETSYNC_S3_MS_PORT_MAX:-16899}
MEMSTORE_BYTES=${BUCKETSYNC_S3_MEMSTORE_BYTES:-4294967296}
START_TIMEOUT=${BUCKETSYNC_S3_START_TIMEOUT:-90}
RGW_DEBUG=${BUCKETSYNC_S3_RGW_DEBUG:-1}
REGION=us-east-1
RGW_NAME=client.rgw.bucketsync

USER_A_UID=bucketsync-a
USER_A_ACCESS=BUCKETSYNCTESTKEYA01
USER_A_SECRET=bucketsync-test-secret-a-not-a-real-secret
USER_B_UID=bucketsync-b
USER_B_ACCESS=BUCKETSYNCTESTKEYB01
USER_B_SECRET=bucketsync-test-secret-b-not-a-real-secret

# Daemons in start order; stop goes in reverse.
DAEMONS=(mon osd rgw)
MARKER=.bucketsync-s3-server
PACKAGES=(radosgw ceph-common ceph-mon ceph-osd)

log() { printf 's3-server: %s\n' "$*" >&2; }
die() { printf 's3-server: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  echo "usage: $0 {start|stop|env} [DIR]" >&2
  exit 2
}

# ---------------------------------------------------------------- helpers

set_dir() {
  local d=${1:-$REPO/.s3-server}
  case $d in /*) ;; *) d=$PWD/$d ;; esac
  # Normalise without requiring the folder to exist.
  if [[ -d $d ]]; then d=$(cd "$d" && pwd); fi
  DIR=$d
  CONF=$DIR/ceph.conf
}

# Is $1 a live process started by this cluster (its command line names our ceph.conf)?
our_pid() {
  local pid=$1 cmd
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  # A zombie has an empty cmdline and is not "running".
  [[ $cmd == *"$CONF"* ]]
}

recorded_pid() { # name -> pid recorded in DIR/pids/name, or nothing
  local f=$DIR/pids/$1
  if [[ -f $f ]]; then cat "$f"; fi
}

http_code() { # -> HTTP status of an anonymous GET / on the recorded endpoint, or 000
  curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null || true
}

port_in_use() { # port -> 0 if something listens on 127.0.0.1:port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# All recorded daemons alive and radosgw answering HTTP?
running() {
  [[ -f $DIR/env && -f $DIR/port ]] || return 1
  local name pid
  for name in "${DAEMONS[@]}"; do
    pid=$(recorded_pid "$name")
    our_pid "$pid" || return 1
  done
  [[ $(http_code "$(cat "$DIR/port")") == 200 ]]
}

ceph_cli() { timeout 30 ceph -c "$CONF" --connect-timeout 10 "$@"; }

tail_log() { # file
  if [[ -f $1 ]]; then
    log "last lines of $1:"
    tail -n 40 "$1" | sed 's/^/    /' >&2
  else
    log "($1 does not exist)"
  fi
}

fail_with_log() { # message logfile...
  local msg=$1; shift
  local f
  printf 's3-server: ERROR: %s\n' "$msg" >&2
  for f in "$@"; do tail_log "$f"; done
  do_stop quiet || true
  exit 1
}

# Start a daemon in its own session (so a wrapper's `timeout` or Ctrl-C does not
# take it down with the caller's process group), detached from our stdio, and
# record its PID.
launch() { # name logfile command...
  local name=$1 out=$2; shift 2
  # 9<&- : do not hand the daemon our lock (see main).
  setsid "$@" </dev/null >>"$out" 2>&1 9<&- &
  local pid=$!
  echo "$pid" >"$DIR/pids/$name"
  # setsid execs in place when we are not a process group leader (the normal
  # case for a background job of a script); make sure the PID is the daemon's.
  sleep 0.2
  if ! our_pid "$pid"; then
    fail_with_log "$name exited right after start" "$out"
  fi
}

wait_for() { # description logfile pid-name command... (retries command until it succeeds)
  local what=$1 out=$2 name=$3; shift 3
  local deadline=$((SECONDS + START_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    our_pid "$(recorded_pid "$name")" || fail_with_log "$name died while waiting for $what" "$out"
    ((SECONDS < deadline)) || fail_with_log "timed out after ${START_TIMEOUT}s waiting for $what" "$out"
    sleep 0.25
  done
}

ensure_packages() {
  local missing=0 b
  for b in radosgw radosgw-admin ceph ceph-mon ceph-osd monmaptool curl; do
    command -v "$b" >/dev/null 2>&1 || missing=1
  done
  ((missing)) || return 0
  command -v apt-get >/dev/null 2>&1 || die "Ceph is not installed and apt-get is missing; install: ${PACKAGES[*]}"
  [[ $(id -u) == 0 ]] || die "Ceph is not installed; run as root or install: ${PACKAGES[*]}"
  log "installing ${PACKAGES[*]} (apt-get; ~30 s)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || die "apt-get update failed"
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${PACKAGES[@]}" curl >&2 \
    || die "apt-get install failed"
  for b in radosgw radosgw-admin ceph ceph-mon ceph-osd monmaptool curl; do
    command -v "$b" >/dev/null 2>&1 || die "$b is still missing after installing ${PACKAGES[*]}"
  done
}

write_conf() {
  local fsid=$1
  cat >"$CONF" <<EOF
# Generated by scripts/s3-server.sh: single-node test cluster, data in RAM.
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind msgr2 = true
ms bind port min = $MS_PORT_MIN
ms bind port max = $MS_PORT_MAX

# No cephx. radosgw's default mon client mode is "secure", which cannot work
# without auth (it retries forever with get_initial_auth_request returned -13).
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
keyring = $DIR/keyring

# Everything inside this folder.
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
log to file = true
log to stderr = false
err to stderr = true
mon cluster log file = $DIR/log/cluster.log
crash dir = $DIR/crash
mon data = $DIR/mon/\$name
osd data = $DIR/osd/\$name
rgw data = $DIR/rgw/\$name

# One OSD, so one copy of everything, few PGs, no autoscaler (no mgr either).
mon allow pool size one = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
# The mon shuts itself down when its disk is nearly full; this cluster keeps
# nearly nothing on disk, so do not let a full /work stop it.
mon data avail crit = 0
mon data avail warn = 1
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
# Commit map changes every 0.1 s instead of every 1 s: radosgw-admin's first run
# creates 4 pools with 2 map changes each and waits for each one (start: 13 s -> 3 s).
paxos propose interval = 0.1

[mon]
mon initial members = a

[osd]
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
# On TERM exit at once: memstore data is thrown away anyway, and telling the mon
# first costs 5 s when the mon is being stopped too.
osd fast shutdown = true
osd fast shutdown notify mon = false
# Short PG logs. With one OSD nothing ever recovers from them, and memstore keeps
# each persisted log entry in its own ~4 KiB buffer: with the defaults (up to
# 300,000 entries plus 3,000 dups per PG) the OSD grows by ~45 KiB per object
# written until the logs fill up (~1 GB at 20,000 small objects).
osd min pg log entries = 100
osd max pg log entries = 500
osd target pg log entries per osd = 5000
osd pg log dups tracked = 500
osd pg log trim min = 50

[client.admin]
# Short-lived CLI processes: no admin socket (several may run at once).
admin socket =

[$RGW_NAME]
# tcp_nodelay=1: without it every response with a body stalls ~40 ms on loopback.
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT tcp_nodelay=1
# 1 logs one line per request (~500 bytes) to log/$RGW_NAME.log; 0 for big benchmarks.
debug rgw = $RGW_DEBUG/5
rgw thread pool size = 512
rgw max concurrent requests = 1024
rgw user max buckets = 1000
# Reclaim the RAM of deleted objects within a minute instead of after 2 hours.
rgw gc obj min wait = 60
rgw gc processor period = 60
# SSE-KMS for tests: radosgw's "testing" KMS backend with one fixed, test-only key (no TLS here).
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = bucketsync-test-key=a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=
EOF
}

write_env() {
  local endpoint=http://127.0.0.1:$S3_PORT
  cat >"$DIR/env.tmp" <<EOF
# bucketsync test S3 server (radosgw), written by scripts/s3-server.sh. Test-only credentials.
export BUCKETSYNC_S3_ENDPOINT=$endpoint
export BUCKETSYNC_S3_REGION=$REGION
export BUCKETSYNC_S3_A_UID=$USER_A_UID
export BUCKETSYNC_S3_A_ACCESS_KEY_ID=$USER_A_ACCESS
export BUCKETSYNC_S3_A_SECRET_ACCESS_KEY=$USER_A_SECRET
export BUCKETSYNC_S3_B_UID=$USER_B_UID
export BUCKETSYNC_S3_B_ACCESS_KEY_ID=$USER_B_ACCESS
export BUCKETSYNC_S3_B_SECRET_ACCESS_KEY=$USER_B_SECRET
EOF
  mv "$DIR/env.tmp" "$DIR/env"
  cat >"$DIR/env.json.tmp" <<EOF
{
  "endpoint": "$endpoint",
  "region": "$REGION",
  "forcePathStyle": true,
  "users": {
    "a": {
      "uid": "$USER_A_UID",
      "accessKeyId": "$USER_A_ACCESS",
      "secretAccessKey": "$USER_A_SECRET"
    },
    "b": {
      "uid": "$USER_B_UID",
      "accessKeyId": "$USER_B_ACCESS",
      "secretAccessKey": "$USER_B_SECRET"
    }
  }
}
EOF
  mv "$DIR/env.json.tmp" "$DIR/env.json"
}

# ---------------------------------------------------------------- commands

# TERM the given PIDs, wait up to 10 s for them to exit, then KILL what is left.
terminate() { # pid...
  local pid deadline=$((SECONDS + 10)) left=("$@")
  kill -TERM "$@" 2>/dev/null || true
  while ((${#left[@]})); do
    local still=()
    for pid in "${left[@]}"; do our_pid "$pid" && still+=("$pid"); done
    left=("${still[@]+"${still[@]}"}")
    ((${#left[@]})) || break
    if ((SECONDS >= deadline)); then
      log "killing pids ${left[*]} (did not exit within 10 s of TERM)"
      kill -KILL "${left[@]}" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while ((SECONDS < deadline)); do
        still=()
        for pid in "${left[@]}"; do our_pid "$pid" && still+=("$pid"); done
        ((${#still[@]})) || break
        sleep 0.1
      done
      break
    fi
    sleep 0.1
  done
}

do_stop() { # [quiet]
  local quiet=${1:-}
  if [[ ! -f $DIR/$MARKER || ! -d $DIR/pids ]]; then
    [[ $quiet ]] || log "nothing to stop in $DIR"
    return 0
  fi
  local name pid rgw_pids=() rados_pids=()
  for name in "${DAEMONS[@]}"; do
    pid=$(recorded_pid "$name")
    our_pid "$pid" || continue
    if [[ $name == rgw ]]; then rgw_pids+=("$pid"); else rados_pids+=("$pid"); fi
  done
  if ((${#rgw_pids[@]} + ${#rados_pids[@]})); then
    [[ $quiet ]] || log "stopping pids ${rgw_pids[*]-} ${rados_pids[*]-}"
    # radosgw first, while the OSD can still answer its in-flight requests (with
    # the OSD gone it waits for them forever); then the OSD and the mon together.
    ((${#rgw_pids[@]} == 0)) || terminate "${rgw_pids[@]}"
    ((${#rados_pids[@]} == 0)) || terminate "${rados_pids[@]}"
  else
    [[ $quiet ]] || log "nothing running in $DIR"
  fi
  rm -f "$DIR"/pids/* "$DIR/env" "$DIR/env.json" "$DIR/port"
}

do_env() {
  running || { log "no server running in $DIR (run: $0 start)"; exit 1; }
  cat "$DIR/env"
}

do_start() {
  if [[ -d $DIR ]] && running; then
    log "already running in $DIR ($(grep ENDPOINT "$DIR/env" | cut -d= -f2))"
    cat "$DIR/env"
    return 0
  fi
  local t0=$SECONDS
  ensure_packages

  # Something recorded here but not healthy: stop what is left, then start over.
  if [[ -d $DIR ]]; then
    do_stop quiet
    # Refuse to wipe a folder this script did not create.
    if [[ ! -f $DIR/$MARKER ]] && [[ -n $(ls -A "$DIR") ]]; then
      die "$DIR exists, is not empty and was not created by $0; refusing to wipe it"
    fi
    rm -rf "$DIR"
  fi

  local p
  for p in "$S3_PORT" "$MON_PORT"; do
    if port_in_use "$p"; then
      die "port 127.0.0.1:$p is already in use (another cluster? set BUCKETSYNC_S3_PORT / BUCKETSYNC_S3_MON_PORT / BUCKETSYNC_S3_MS_PORT_MIN/MAX)"
    fi
  done

  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  CONF=$DIR/ceph.conf
  mkdir -p "$DIR"/{run,log,pids,crash,mon/mon.a,osd/osd.0,rgw}
  touch "$DIR/$MARKER"
  export CEPH_CONF=$CONF

  local fsid osd_uuid osd_id
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"

  log "creating cluster in $DIR (mon :$MON_PORT, daemons :$MS_PORT_MIN-$MS_PORT_MAX)"
  monmaptool --create --enable-all-features --fsid "$fsid" \
    --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >"$DIR/log/mkfs.log" 2>&1 \
    || fail_with_log "monmaptool failed" "$DIR/log/mkfs.log"
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" >>"$DIR/log/mkfs.log" 2>&1 \
    || fail_with_log "ceph-mon --mkfs failed" "$DIR/log/mkfs.log"

  log "starting mon"
  launch mon "$DIR/log/mon.out" ceph-mon -c "$CONF" -f -i a
  wait_for "the monitor" "$DIR/log/mon.a.log" mon ceph_cli mon stat

  log "starting osd (memstore, $((MEMSTORE_BYTES / 1048576)) MiB)"
  osd_id=$(ceph_cli osd new "$osd_uuid" 2>>"$DIR/log/mkfs.log") \
    || fail_with_log "ceph osd new failed" "$DIR/log/mkfs.log" "$DIR/log/mon.a.log"
  [[ $osd_id == 0 ]] || fail_with_log "unexpected OSD id '$osd_id'" "$DIR/log/mkfs.log"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/mkfs.log" 2>&1 \
    || fail_with_log "ceph-osd --mkfs failed" "$DIR/log/mkfs.log" "$DIR/log/osd.0.log"
  launch osd "$DIR/log/osd.out" ceph-osd -c "$CONF" -f -i 0
  wait_for "the OSD to be up" "$DIR/log/osd.0.log" osd osd_up

  log "configuring zonegroup and users"
  admin_setup

  log "starting radosgw on 127.0.0.1:$S3_PORT"
  launch rgw "$DIR/log/rgw.out" radosgw -c "$CONF" -f -n "$RGW_NAME"
  echo "$S3_PORT" >"$DIR/port"
  wait_for "radosgw to answer HTTP on 127.0.0.1:$S3_PORT" "$DIR/log/$RGW_NAME.log" rgw http_ok

  write_env
  log "ready in $((SECONDS - t0)) s: http://127.0.0.1:$S3_PORT (source $DIR/env)"
  cat "$DIR/env"
}

osd_up() { ceph_cli osd stat -f json | grep -q '"num_up_osds":1'; }
http_ok() { [[ $(http_code "$S3_PORT") == 200 ]]; }

rgw_admin() { timeout 60 radosgw-admin -c "$CONF" -n client.admin "$@" >>"$DIR/log/admin.out" 2>&1; }

# Runs before radosgw starts (radosgw reads the zonegroup once, at start):
# radosgw-admin writes the users and the zonegroup directly into RADOS.
admin_setup() {
  # The first radosgw-admin run creates the pools and the default zone/zonegroup.
  rgw_admin user create --uid="$USER_A_UID" --display-name="bucketsync test user A" \
    --access-key="$USER_A_ACCESS" --secret-key="$USER_A_SECRET" --max-buckets=1000 \
    || fail_with_log "radosgw-admin user create $USER_A_UID failed" "$DIR/log/admin.out"
  rgw_admin user create --uid="$USER_B_UID" --display-name="bucketsync test user B" \
    --access-key="$USER_B_ACCESS" --secret-key="$USER_B_SECRET" --max-buckets=1000 \
    || fail_with_log "radosgw-admin user create $USER_B_UID failed" "$DIR/log/admin.out"
  # Let the default zonegroup answer to region us-east-1: CreateBucket with
  # LocationConstraint=us-east-1 is accepted (any other one gets
  # InvalidLocationConstraint), and GetBucketLocation says "us-east-1", not "default".
  # Only possible once the zonegroup exists (before that: "failed to init zonegroup").
  rgw_admin zonegroup modify --rgw-zonegroup=default --api-name="$REGION" \
    || fail_with_log "radosgw-admin zonegroup modify failed" "$DIR/log/admin.out"
}

# ---------------------------------------------------------------- main

cmd=${1:-}
[[ $# -le 2 ]] || usage
set_dir "${2:-}"
# start and stop are serialised (across all DIRs) by a lock on this script file,
# so two test runs starting the server at once do not wipe each other's cluster.
lock() {
  exec 9<"${BASH_SOURCE[0]}"
  flock -w 180 9 || die "timed out waiting for another $0 start/stop to finish"
}
case $cmd in
  start) lock; do_start ;;
  stop) lock; do_stop ;;
  env) do_env ;;
  *) usage ;;
esac
