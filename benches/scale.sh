#!/usr/bin/env bash
# The scale benchmark: `bash benches/scale.sh N` (`just bench-scale N`).
#
# On 127.0.0.1 with free ports, it:
#   1. builds the release binaries (parparchik, bench-s3, bench-list, bench-load);
#   2. starts the synthetic S3 (bench-s3) holding N objects in total: 95% in
#      public-bucket, 5% in private-bucket, a fifth of those (1% of N) also in
#      public-bucket (duplicates); keys like dir0042/file0042123.bin (23 bytes);
#   3. times a bare listing of both buckets page by page (bench-list, the service's own
#      S3 client, one bucket after the other as start-up lists them);
#   4. starts the service against it (no manifests yet) and polls /readiness every 50 ms:
#      time to ready, VmRSS and VmHWM at ready, S3 requests and PUT bytes of start-up;
#   4b. runs 4 clients of /update of new keys for 3 s at once, while the first manifests
#      are written (p99 and max show whether an /update waits for that write);
#   5. runs BENCH_UPDATE_CLIENTS (16) clients for BENCH_UPDATE_SECONDS (10) s, each
#      creating a new key in the synthetic S3 (/_bench/put) and announcing it with
#      /update?filename=KEY: /update per second and bytes PUT to S3 per /update (the
#      stats endpoint's counter of PUT bodies, before/after, once it stops moving,
#      counted after a compaction interval has passed, so that the manifest
#      compaction the run caused is included);
#   6. times one GET /list and reads VmHWM after it;
#   7. prints one Markdown table row (and the header), plus details.
#
# Settings (environment): BENCH_LATENCY_MS=0 (delay of each listing page),
# BENCH_UPDATE_CLIENTS=16 BENCH_UPDATE_SECONDS=10 BENCH_READY_TIMEOUT=1200 (seconds),
# BENCH_COMPACT_INTERVAL=10 (PARPARCHIK_MANIFEST_COMPACT_INTERVAL of the service:
# shorter than the default 60 s, so a 10 s run pays for at least one whole compaction),
# BENCH_KEEP=0 (1 leaves both servers running and the work directory in place),
# BENCH_NO_BUILD=0. Binaries come from $CARGO_TARGET_DIR/release (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

N=${1:-${BENCH_OBJECTS:-100000}}
LAT=${BENCH_LATENCY_MS:-0}
CLIENTS=${BENCH_UPDATE_CLIENTS:-16}
SECS=${BENCH_UPDATE_SECONDS:-10}
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-1200}
KEEP=${BENCH_KEEP:-0}
COMPACT=${BENCH_COMPACT_INTERVAL:-10}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
PUB=public-bucket
PRIV=private-bucket
MANIFEST=.parparchik/files.json
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench # bench-s3 checks no signature

TAG=scale KEEP_VAR=BENCH_KEEP
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo "${t:0:-3}"; }

[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 100 ] && [ "$N" -le 10000000 ] || die "N must be 100..10000000, not '$N'"
[[ $LAT =~ ^[0-9]+$ ]] || die "BENCH_LATENCY_MS must be a number"
C_PUB=$((N * 95 / 100))
C_PRIV=$((N - C_PUB))
OVERLAP=20 # % of private-bucket's objects that are also in public-bucket

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  cargo build --release -q --bin parparchik
  cargo build --release -q -p parparchik-bench --bin bench-s3 --bin bench-list --bin bench-load
fi
for b in parparchik bench-s3 bench-list bench-load; do [ -x "$BIN/$b" ] || die "$BIN/$b is missing"; done

proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }
secs() { awk -v m="$1" 'BEGIN { printf "%.2f s", m / 1000 }'; }
stat_field() { curl -s --max-time 10 "$S3/_bench/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

# --- synthetic S3 ------------------------------------------------------------------------
start_bench_s3 --layout "$PUB:$C_PUB,$PRIV:$C_PRIV" --overlap "$OVERLAP" \
  --latency-ms "$LAT" --latency-on list

# --- bare listing --------------------------------------------------------------------------
"$BIN/bench-list" --endpoint "$S3" --bucket "$PUB" --bucket "$PRIV" --timeout 60 >"$WORK/list.out"
LIST_MS=$(sed -n 's/^bench-list: objects=[0-9]* ms=\([0-9]*\)$/\1/p' "$WORK/list.out")
LISTED=$(sed -n 's/^bench-list: objects=\([0-9]*\) .*/\1/p' "$WORK/list.out")
[ "$LISTED" = "$N" ] || die "bench-list saw $LISTED objects, expected $N"
log "bare listing of $N objects: $LIST_MS ms"
curl -s --max-time 10 -X POST "$S3/_bench/reset" >/dev/null

# --- the service ---------------------------------------------------------------------------
PORT=$(free_port)
SVC=http://127.0.0.1:$PORT
T0=$(now_ms)
PARPARCHIK_HOST=127.0.0.1 PARPARCHIK_PORT=$PORT S3_ENDPOINT=$S3 \
  PARPARCHIK_MANIFEST_COMPACT_INTERVAL=$COMPACT \
  PARPARCHIK_BUCKETS="$PUB:$MANIFEST:true,$PRIV:$MANIFEST:false" \
  "$BIN/parparchik" >"$WORK/service.log" 2>&1 &
SPID=$!
PIDS+=($SPID)
READY_MS=
while [ $(($(now_ms) - T0)) -lt $((READY_TIMEOUT * 1000)) ]; do
  kill -0 "$SPID" 2>/dev/null || die "the service exited: $(tail -5 "$WORK/service.log")"
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$SVC/readiness")" = 200 ]; then
    READY_MS=$(($(now_ms) - T0))
    break
  fi
  sleep 0.05
done
[ -n "$READY_MS" ] || die "not ready within $READY_TIMEOUT s"
RSS_READY=$(proc_kb "$SPID" VmRSS)
HWM_READY=$(proc_kb "$SPID" VmHWM)
FILES=$(curl -s --max-time 10 "$SVC/status" | sed -n 's/.*"file_count":\([0-9]*\).*/\1/p')
START_CALLS=$(stat_field s3_requests)
START_PUT=$(stat_field put_bytes)
log "ready after $READY_MS ms, file_count=$FILES, VmRSS $(mib "$RSS_READY"), VmHWM $(mib "$HWM_READY"), start-up: $START_CALLS S3 requests, $START_PUT bytes PUT"

# --- /update while the first manifests are written ---------------------------------------
# A first start has no manifest yet: each bucket's whole manifest is written after ready.
# /update of new keys meanwhile: answered at once (journaled beside the write) or queued
# behind it; its p99 and max say which.
"$BIN/bench-load" update --target "$SVC" --s3 "$S3" --bucket "$PUB" --clients 4 \
  --seconds 3 >"$WORK/update-first.out"
FIRST_UPDATE_LINE=$(tail -1 "$WORK/update-first.out")
log "during the first manifest writes: $FIRST_UPDATE_LINE"

# --- the first manifests ---------------------------------------------------------------------
# A first start writes each bucket's whole manifest in the background after ready; the
# /update run starts once they are written (their time is reported on its own), so the
# rate is the steady state's, not that of requests queued behind a first write.
M0=$(now_ms)
while [ $(($(now_ms) - M0)) -lt 900000 ]; do
  curl -s --max-time 10 "$SVC/status" | tr -d ' \n\t' | grep -q '"manifest_etags":{[^}]*null' || break
  sleep 0.2
done
MANIFESTS_MS=$(($(now_ms) - M0))
log "first manifests written $MANIFESTS_MS ms after ready"

# --- /update of new keys -------------------------------------------------------------------
PUT_BEFORE=$(stat_field put_bytes)
PUTS_BEFORE=$(curl -s --max-time 10 "$S3/_bench/stats" | sed -n 's/.*"put":\([0-9]*\).*/\1/p')
"$BIN/bench-load" update --target "$SVC" --s3 "$S3" --bucket "$PUB" --clients "$CLIENTS" \
  --seconds "$SECS" >"$WORK/update.out"
UPDATE_LINE=$(tail -1 "$WORK/update.out")
log "$UPDATE_LINE"
# Writes that follow a response in the background count too: the compaction due an
# interval after the run's first record, then whatever follows until the counter rests.
sleep "$((COMPACT + 3))"
PUT_AFTER=$(stat_field put_bytes)
for _ in $(seq 60); do
  sleep 1
  p=$(stat_field put_bytes)
  [ "$p" = "$PUT_AFTER" ] && break
  PUT_AFTER=$p
done
PUTS_AFTER=$(curl -s --max-time 10 "$S3/_bench/stats" | sed -n 's/.*"put":\([0-9]*\).*/\1/p')
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$UPDATE_LINE"; }
UPD_OK=$(kv ok)
UPD_RATE=$(kv rate)
BYTES_PER_UPDATE=$(awk -v a="$PUT_BEFORE" -v b="$PUT_AFTER" -v n="$UPD_OK" 'BEGIN { if (n > 0) printf "%.0f", (b - a) / n; else print "n/a" }')
# Object PUTs other than the /_bench/put of the load client (which is not an S3 PUT).
PUTS_PER_UPDATE=$(awk -v a="$PUTS_BEFORE" -v b="$PUTS_AFTER" -v n="$UPD_OK" 'BEGIN { if (n > 0) printf "%.2f", (b - a) / n; else print "n/a" }')

HWM_UPDATE=$(proc_kb "$SPID" VmHWM)
# --- /list ----------------------------------------------------------------------------------
# VmHWM is reset first (clear_refs 5), so the figure after /list is the re-sync's own
# peak, not the compaction's during the /update run.
echo 5 >"/proc/$SPID/clear_refs" 2>/dev/null || log "VmHWM could not be reset; the /list peak includes earlier ones"
LIST_OUT=$(curl -s -o /dev/null -w '%{http_code} %{time_total} %{size_download}' --max-time 900 "$SVC/list")
read -r LIST_STATUS LIST_S LIST_BYTES <<<"$LIST_OUT"
HWM_LIST=$(proc_kb "$SPID" VmHWM)
RSS_LIST=$(proc_kb "$SPID" VmRSS)
log "/list: $LIST_STATUS in $LIST_S s, $LIST_BYTES bytes; VmHWM $(mib "$HWM_LIST")"

human_bytes() { awk -v b="$1" 'BEGIN { if (b == "n/a") print b; else if (b >= 1048576) printf "%.1f MiB", b / 1048576; else if (b >= 1024) printf "%.1f KiB", b / 1024; else printf "%d B", b }'; }
echo
echo "| N objects | latency per listing page | ready | bare listing | RSS at ready | VmHWM at ready | bytes per object (RSS at ready / N) | \`/update\` of a new key ($CLIENTS clients) | bytes PUT to S3 per \`/update\` | \`GET /list\` | VmHWM during \`/list\` (re-sync) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '| %s | %s ms | %s | %s | %s | %s | %s | %s/s | %s | %s (%s) | %s |\n' \
  "$N" "$LAT" "$(secs "$READY_MS")" "$(secs "$LIST_MS")" "$(mib "$RSS_READY")" "$(mib "$HWM_READY")" \
  "$(awk -v k="$RSS_READY" -v n="$N" 'BEGIN { printf "%.0f", k * 1024 / n }')" \
  "$UPD_RATE" "$(human_bytes "$BYTES_PER_UPDATE")" "$(awk -v s="$LIST_S" 'BEGIN { printf "%.2f s", s }')" "$LIST_STATUS" "$(mib "$HWM_LIST")"
echo
echo "details: n=$N public=$C_PUB private=$C_PRIV duplicates=$((C_PRIV * OVERLAP / 100)) file_count=$FILES latency_ms=$LAT"
echo "details: first_manifests_written_ms_after_ready=$MANIFESTS_MS"
echo "details: ready_ms=$READY_MS bare_list_ms=$LIST_MS rss_ready_kb=$RSS_READY hwm_ready_kb=$HWM_READY startup_s3_requests=$START_CALLS startup_put_bytes=$START_PUT"
echo "during the first manifest writes (4 clients, 3 s): $FIRST_UPDATE_LINE"
echo "details: update_ok=$UPD_OK put_bytes_per_update=$BYTES_PER_UPDATE s3_puts_per_update=$PUTS_PER_UPDATE compact_interval_s=$COMPACT hwm_after_updates_kb=$HWM_UPDATE"
echo "details: $UPDATE_LINE"
echo "details: list_status=$LIST_STATUS list_s=$LIST_S list_bytes=$LIST_BYTES hwm_after_list_kb=$HWM_LIST rss_after_list_kb=$RSS_LIST"
echo "details: service: $(grep -m1 -o 'start-up: ready with.*' "$WORK/service.log" || echo 'no start-up line')"
