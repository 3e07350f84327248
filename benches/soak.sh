#!/usr/bin/env bash
# The soak: `bash benches/soak.sh` (`just soak`). Not part of CI.
#
# On 127.0.0.1 with free ports, it builds the release binaries, starts the synthetic S3
# (bench-s3) with SOAK_FILES objects (95% public-bucket, 5% private-bucket, no key in
# both), starts the service against it with its default settings, waits until it is
# ready and then runs bench-load soak: SOAK_CLIENTS keep-alive clients for SOAK_SECONDS,
# requesting routes of known files and (SOAK_MISSING_PCT % of the time) keys that exist
# nowhere, while every SOAK_PHASE_SECONDS the synthetic S3 switches mode:
# healthy -> hang -> bare404 -> s503 -> healthy ... (SOAK_MODES).
#
# Printed: one table row per phase (requests answered, statuses, connection errors,
# client timeouts, p50/p99 of answered requests, S3 calls, max open fds of the service)
# and totals (S3 calls per request, peak RSS = VmHWM, max fds sampled every second),
# then file_count from /status before and after the soak and whether they are equal.
# The service's misbehaviour is measured, not judged: the script fails only when the
# harness itself cannot run.
#
# Settings (environment): SOAK_SECONDS=600 SOAK_CLIENTS=1000 SOAK_PHASE_SECONDS=20
# SOAK_FILES=20000 SOAK_MISSING_PCT=5 SOAK_TIMEOUT=10 (seconds a client waits for one
# answer) SOAK_MODES=healthy,hang,bare404,s503 SOAK_KEEP=0 (1 leaves both servers
# running) SOAK_NO_BUILD=0. Extra PARPARCHIK_* variables in the environment reach the
# service. Binaries come from $CARGO_TARGET_DIR/release (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${SOAK_SECONDS:-600}
CLIENTS=${SOAK_CLIENTS:-1000}
PHASE=${SOAK_PHASE_SECONDS:-20}
FILES=${SOAK_FILES:-20000}
MISSING=${SOAK_MISSING_PCT:-5}
TIMEOUT=${SOAK_TIMEOUT:-10}
MODES=${SOAK_MODES:-healthy,hang,bare404,s503}
KEEP=${SOAK_KEEP:-0}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
PUB=public-bucket
PRIV=private-bucket
MANIFEST=.parparchik/files.json
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench # bench-s3 checks no signature

TAG=soak KEEP_VAR=SOAK_KEEP
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"


for v in DURATION CLIENTS PHASE FILES MISSING TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 0 ] || die "$v must be a number"
done
[ "$DURATION" -ge 1 ] && [ "$PHASE" -ge 1 ] && [ "$CLIENTS" -ge 1 ] && [ "$FILES" -ge 20 ] || die "bad settings"
C_PUB=$((FILES * 95 / 100))
C_PRIV=$((FILES - C_PUB))
LAYOUT="$PUB:$C_PUB,$PRIV:$C_PRIV"

# Each client holds one connection to the service, which holds more towards S3.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((CLIENTS * 3 + 100)) ] || log "warning: ulimit -n is $(ulimit -n) for $CLIENTS clients"

if [ "${SOAK_NO_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  cargo build --release -q --bin parparchik
  cargo build --release -q -p parparchik-bench --bin bench-s3 --bin bench-load
fi
for b in parparchik bench-s3 bench-load; do [ -x "$BIN/$b" ] || die "$BIN/$b is missing"; done

file_count() { curl -s --max-time 10 "$SVC/status" | sed -n 's/.*"file_count":\([0-9]*\).*/\1/p'; }

start_bench_s3 --layout "$LAYOUT"

PORT=$(free_port)
SVC=http://127.0.0.1:$PORT
PARPARCHIK_HOST=127.0.0.1 PARPARCHIK_PORT=$PORT S3_ENDPOINT=$S3 \
  PARPARCHIK_BUCKETS="$PUB:$MANIFEST:true,$PRIV:$MANIFEST:false" \
  "$BIN/parparchik" >"$WORK/service.log" 2>&1 &
SPID=$!
PIDS+=($SPID)
ready=0
for _ in $(seq 2400); do # 120 s
  kill -0 "$SPID" 2>/dev/null || die "the service exited: $(tail -5 "$WORK/service.log")"
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$SVC/readiness")" = 200 ]; then
    ready=1
    break
  fi
  sleep 0.05
done
[ "$ready" = 1 ] || die "the service was not ready within 120 s"
FC_BEFORE=$(file_count)
log "service ready on $SVC (pid $SPID), file_count=$FC_BEFORE; soak: $CLIENTS clients, $DURATION s, phases of $PHASE s ($MODES)"

START=$(date -u +%FT%TZ)
"$BIN/bench-load" soak --target "$SVC" --s3 "$S3" --layout "$LAYOUT" --clients "$CLIENTS" \
  --seconds "$DURATION" --phase-seconds "$PHASE" --missing-pct "$MISSING" --timeout "$TIMEOUT" \
  --modes "$MODES" --pid "$SPID" >"$WORK/soak.out" 2>"$WORK/soak.err" || die "bench-load failed: $(cat "$WORK/soak.err")"
END=$(date -u +%FT%TZ)

# S3 is healthy again (bench-load sets it back); give in-flight checks a moment to settle.
sleep 2
ALIVE=yes
kill -0 "$SPID" 2>/dev/null || ALIVE=no
FC_AFTER=$(file_count)
READY_AFTER=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$SVC/readiness" || true)
HWM=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$SPID/status" 2>/dev/null || echo "?")

echo
echo "Soak from $START to $END: $CLIENTS clients, $DURATION s, phases of $PHASE s, $FILES files, $MISSING% missing keys, client timeout $TIMEOUT s."
echo
grep '^|' "$WORK/soak.out"
echo
grep '^bench-load soak:' "$WORK/soak.out"
sed 's/^/note: /' "$WORK/soak.err"
echo "service: alive=$ALIVE readiness_after=$READY_AFTER vm_hwm_kb_at_end=$HWM"
echo "file_count: before=$FC_BEFORE after=${FC_AFTER:-?} equal=$([ "$FC_BEFORE" = "${FC_AFTER:-}" ] && echo yes || echo no)"
