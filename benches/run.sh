#!/usr/bin/env bash
# The load benchmark: `bash benches/run.sh` (the second half of `just bench`).
#
# On this machine, all on 127.0.0.1 with free ports, it:
#   1. installs wrk and ab (apache2-utils) with apt-get if missing, builds the release
#      binaries (local-s3, parparchik, the helpers of tools/bench);
#   2. starts the embedded S3 server (local-s3) on a fresh data directory and seeds
#      BENCH_OBJECTS objects by PUT, split across public-bucket and private-bucket;
#   3. times a bare listing of both buckets (bench-list) and the service's start-up with
#      no manifests (spawn -> /readiness 200), with the S3 requests start-up made and the
#      peak RSS after ready;
#   4. starts, side by side: parparchik with PARPARCHIK_VERIFY_TTL=60 (log to a file),
#      the same with its log to /dev/null, parparchik with PARPARCHIK_VERIFY_TTL=0, and the
#      floor (bench-floor: bare hyper, fixed 302, Location as long as ours);
#   5. runs BENCH_RUNS rounds; each round runs every workload once, so that the servers
#      compared are measured close together in time (this machine is shared and noisy):
#      wrk -t$THREADS -c$CONNS -d$DURATION on a hot public file, a hot private file, the
#      spread workload (benches/spread.lua: each request a random one of the N routes; the
#      floor gets the same script), /status and /update, each run also recording the CPU
#      time one request cost the server and local-s3; the S3 server's own rate: HEAD on a presigned HEAD URL with
#      ab -i (wrk 4.1 cannot HEAD: it waits for the body the Content-Length announces),
#      and GET on a presigned GET URL with both wrk and ab to compare the two tools;
#   6. times single /list requests, reads VmHWM of every server after the load;
#   7. with BENCH_STARTUP_LARGE=1 also seeds BENCH_LARGE_OBJECTS (100 000) into a second
#      S3 server and times listing and start-up there (about 7 minutes here: local-s3
#      rescans the whole bucket for every 1000-key page, so a listing costs O(N^2));
#   8. writes benches/RESULTS.md (median and min-max over the runs).
#
# Settings (environment): BENCH_OBJECTS=10000 BENCH_RUNS=3 BENCH_DURATION=10s
# BENCH_CONNECTIONS=64 BENCH_THREADS=2 BENCH_STARTUP_LARGE=0 BENCH_LARGE_OBJECTS=100000
# BENCH_LARGE_SEED=put|direct BENCH_RESULTS=benches/RESULTS.md BENCH_KEEP=0 (1 keeps the
# work directory with every raw output) BENCH_NO_BUILD=0 BENCH_NO_INSTALL=0.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

N=${BENCH_OBJECTS:-10000}
RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
LARGE=${BENCH_STARTUP_LARGE:-0}
LARGE_N=${BENCH_LARGE_OBJECTS:-100000}
LARGE_SEED=${BENCH_LARGE_SEED:-put}
OUT=${BENCH_RESULTS:-$ROOT/benches/RESULTS.md}
KEEP=${BENCH_KEEP:-0}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-minioadmin}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-minioadmin}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
PUB=public-bucket
PRIV=private-bucket
DUR_S=${DURATION%s}

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo "${t:0:-3}"; }

# --- tools ------------------------------------------------------------------------------
if [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
  missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v ab >/dev/null || missing+=(apache2-utils)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
for t in wrk ab curl; do command -v $t >/dev/null || die "$t is missing"; done
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  cargo build --release -q -p local-s3 -p parparchik -p parparchik-bench
fi

WORK=$(mktemp -d /tmp/parparchik-bench.XXXXXX)
mkdir -p "$WORK/raw"
TSV=$WORK/results.tsv       # scenario run rps p50_us p99_us note
CMDS=$WORK/commands.txt
: >"$TSV"
: >"$CMDS"

# --- processes --------------------------------------------------------------------------
PIDS=()
stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [ "$KEEP" = 1 ]; then log "raw outputs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port below the ephemeral range (outgoing connections take those), used by no socket.
USED_PORTS=" "
EPHEMERAL_LOW=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
  local p span=$((EPHEMERAL_LOW - 10000))
  while :; do
    p=$((10000 + (RANDOM * 32768 + RANDOM) % span))
    case $USED_PORTS in *" $p "*) continue ;; esac
    if command -v ss >/dev/null; then
      [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] || continue
    elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      continue
    fi
    USED_PORTS="$USED_PORTS$p "
    echo "$p"
    return
  done
}

# start_s3 DATA_DIR -> S3_PID, S3_URL
start_s3() {
  local data=$1 out=$WORK/s3.$RANDOM.out
  "$BIN/local-s3" --addr 127.0.0.1:0 --data "$data" --bucket "$PUB:public" --bucket "$PRIV" \
    >"$out" 2>&1 &
  S3_PID=$!
  PIDS+=("$S3_PID")
  local i
  for i in $(seq 100); do
    S3_URL=$(sed -n 's|^local-s3: serving \(http://[0-9.:]*\).*|\1|p' "$out")
    [ -n "$S3_URL" ] && return
    kill -0 "$S3_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$out" >&2
  die "local-s3 did not start"
}

# start_service TTL LOG S3_URL [EXTRA_ENV...] -> SVC_PID, SVC_URL, SVC_T0 (ms at spawn)
start_service() {
  local ttl=$1 logf=$2 s3=$3
  shift 3
  local port
  port=$(free_port)
  SVC_URL=http://127.0.0.1:$port
  SVC_ENV=(PARPARCHIK_PUBLIC_BUCKET=$PUB PARPARCHIK_PRIVATE_BUCKET=$PRIV S3_ENDPOINT=$s3
    PARPARCHIK_HOST=127.0.0.1 PARPARCHIK_PORT=$port PARPARCHIK_VERIFY_TTL=$ttl
    PARPARCHIK_SYNC_INTERVAL=0 "$@")
  SVC_T0=$(now_ms)
  env "${SVC_ENV[@]}" "$BIN/parparchik" 2>>"$logf" &
  SVC_PID=$!
  PIDS+=("$SVC_PID")
}

# A pause without forking a `sleep` (read times out on a pipe nobody writes to): polling
# must not load the two cores while a start-up is being timed.
exec {SLEEP_FD}<> <(:)
pause() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }

# http_status URL: sets HTTP_CODE to the status of GET URL, with bash's /dev/tcp and no
# subshell (no curl process, no fork).
http_status() {
  local hostport=${1#http://} path=/ fd line
  HTTP_CODE=000
  [[ $hostport == */* ]] && { path=/${hostport#*/}; hostport=${hostport%%/*}; }
  # The braces keep the 2>/dev/null to this line: on a bare `exec` it would stay.
  { exec {fd}<>"/dev/tcp/${hostport%:*}/${hostport##*:}"; } 2>/dev/null || return 0
  printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$hostport" >&"$fd"
  read -r -t 2 -u "$fd" line || line=""
  exec {fd}>&-
  line=${line#HTTP/1.? }
  HTTP_CODE=${line:0:3}
}

# wait_ready URL PID LOG TIMEOUT_S -> READY_MS (since SVC_T0), polled every 20 ms.
wait_ready() {
  local url=$1 pid=$2 logf=$3 t limit
  t=${EPOCHREALTIME/[.,]/}
  limit=$((${t:0:-3} + $4 * 1000))
  while :; do
    http_status "$url/readiness"
    t=${EPOCHREALTIME/[.,]/}
    if [ "$HTTP_CODE" = 200 ]; then
      READY_MS=$((${t:0:-3} - SVC_T0))
      return
    fi
    kill -0 "$pid" 2>/dev/null || { tail -5 "$logf" >&2; die "parparchik exited"; }
    [ "${t:0:-3}" -lt "$limit" ] || { tail -5 "$logf" >&2; die "parparchik not ready in $4 s"; }
    pause 0.02
  done
}

# s3_calls URL [OPERATION]: sum of parparchik_s3_requests_total (of one operation).
s3_calls() {
  curl -s --max-time 10 "$1/metrics" | awk -v op="${2:-}" '
    /^parparchik_s3_requests_total\{/ && (op == "" || index($0, "operation=\"" op "\"")) { s += $NF }
    END { printf "%d\n", s }'
}
s3_calls_by_op() {
  curl -s --max-time 10 "$1/metrics" | awk '
    /^parparchik_s3_requests_total\{/ {
      match($0, /operation="[^"]*"/); op = substr($0, RSTART + 11, RLENGTH - 12)
      n[op] += $NF }
    END { for (op in n) if (n[op] > 0) printf "%s %d, ", op, n[op] }' | sed 's/, $//'
}
hwm_mb() { awk '/^VmHWM/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }
rss_mb() { awk '/^VmRSS/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }

record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TSV"; }

# CPU time (user + system, clock ticks) of the processes in CPU_PIDS ("server S3"), so
# that each run also says how many microseconds of CPU one request cost each of them.
CLK_TCK=$(getconf CLK_TCK)
CPU_PIDS=""
cpu_ticks() {
  local p out=""
  for p in $CPU_PIDS; do out="$out $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)"; done
  echo "$out"
}
# cpu_per_req "TICKS_BEFORE" "TICKS_AFTER" REQUESTS -> "12.3/45.6" (µs per request each)
cpu_per_req() {
  awk -v b="$1" -v a="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN {
    nb = split(b, B, " "); split(a, A, " "); out = ""
    for (i = 1; i <= nb; i++) out = out (i > 1 ? "/" : "") sprintf("%.1f", n > 0 ? (A[i] - B[i]) * 1e6 / hz / n : 0)
    print out }'
}
note_cmd() { grep -qxF -- "$*" "$CMDS" || printf '%s\n' "$*" >>"$CMDS"; }

# run_wrk SCENARIO RUN URL [ENV=VALUE...] [-- SCRIPT]: one wrk run, recorded.
run_wrk() {
  local scenario=$1 run=$2 url=$3
  shift 3
  local envs=() script=$ROOT/benches/report.lua
  while [ $# -gt 0 ]; do
    case $1 in
      --) script=$2; shift 2 ;;
      *) envs+=("$1"); shift ;;
    esac
  done
  local raw=$WORK/raw/$scenario.$run.wrk before after
  local shown_env=${envs[*]:-}
  shown_env=${shown_env//$WORK\//}
  note_cmd "${shown_env:+$shown_env }wrk -t$THREADS -c$CONNS -d$DURATION -s ${script#"$ROOT"/} '$url'"
  before=$(cpu_ticks)
  env "${envs[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$script" "$url" >"$raw" 2>&1 || true
  after=$(cpu_ticks)
  local line
  line=$(grep '^BENCH ' "$raw" || true)
  [ -n "$line" ] || { cat "$raw" >&2; die "wrk gave no result for $scenario"; }
  local rps p50 p99 errs reqs
  rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")
  reqs=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
  p50=$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$line")
  p99=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")
  errs=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /_errors=|timeouts=/) { split($i, kv, "="); s += kv[2] } } END { print s + 0 }' <<<"$line")
  local cpu
  cpu=$(cpu_per_req "$before" "$after" "$reqs")
  record "$scenario" "$run" "$rps" "$p50" "$p99" "errors=$errs;cpu=$cpu"
  log "$scenario #$run: $rps req/s, p50 ${p50} us, p99 ${p99} us, errors $errs, CPU us/request $cpu"
}

# run_ab SCENARIO RUN URL [AB_FLAGS...]: one ab run (keep-alive), recorded.
run_ab() {
  local scenario=$1 run=$2 url=$3
  shift 3
  local raw=$WORK/raw/$scenario.$run.ab csv=$WORK/raw/$scenario.$run.csv
  note_cmd "ab -q -k -c $CONNS -t $DUR_S -n 100000000 ${*:+$* }-e PERCENTILES.csv '$url'"
  local before after
  before=$(cpu_ticks)
  ab -q -k -c "$CONNS" -t "$DUR_S" -n 100000000 "$@" -e "$csv" "$url" >"$raw" 2>&1 || true
  after=$(cpu_ticks)
  local rps p50 p99 failed non2xx reqs cpu
  rps=$(awk '/^Requests per second:/ { print $4 }' "$raw")
  [ -n "$rps" ] || { cat "$raw" >&2; die "ab gave no result for $scenario"; }
  p50=$(awk -F, '$1 == 50 { printf "%d", $2 * 1000 }' "$csv")
  p99=$(awk -F, '$1 == 99 { printf "%d", $2 * 1000 }' "$csv")
  failed=$(awk '/^Failed requests:/ { print $3 }' "$raw")
  non2xx=$(awk '/^Non-2xx responses:/ { print $3 }' "$raw")
  reqs=$(awk '/^Complete requests:/ { print $3 }' "$raw")
  cpu=$(cpu_per_req "$before" "$after" "${reqs:-0}")
  record "$scenario" "$run" "$rps" "$p50" "$p99" "errors=$((${failed:-0} + ${non2xx:-0}));cpu=$cpu"
  log "$scenario #$run: $rps req/s, p50 ${p50} us, p99 ${p99} us (ab), CPU us/request $cpu"
}

expect_status() {
  local want=$1 url=$2 got
  got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${@:3}" "$url")
  [ "$got" = "$want" ] || die "$url answered $got, expected $want"
}

# --- machine ----------------------------------------------------------------------------
DATE=$(date -u +'%Y-%m-%d %H:%M UTC')
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NPROC=$(nproc)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RUSTC=$(rustc --version)
WRK_V=$( (wrk -v 2>&1 || true) | head -1 | awk '{ print $1, $2 }')
AB_V=$( (ab -V 2>&1 || true) | head -1 | sed 's/This is //; s/, .*//; s/ <.*//')
log "$NPROC CPUs ($CPU), load $LOAD_BEFORE; N=$N, $RUNS runs of $DURATION, $CONNS connections"

# --- S3 and seeding ---------------------------------------------------------------------
start_s3 "$WORK/s3"
S3=$S3_URL
S3_MAIN_PID=$S3_PID
ROUTES=$WORK/routes.txt
log "seeding $N objects by PUT into $S3"
note_cmd "bench-seed --endpoint $S3 --objects $N --routes routes.txt"
SEED_LINE=$("$BIN/bench-seed" --endpoint "$S3" --objects "$N" --routes "$ROUTES" 2>/dev/null)
SEED_MS=$(sed -n 's/.* ms=\([0-9]*\).*/\1/p' <<<"$SEED_LINE")
SEED_RATE=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$SEED_LINE")
log "$SEED_LINE"

# --- start-up with N objects ----------------------------------------------------------
# startup_runs LABEL S3_URL DATA_DIR RUNS TIMEOUT_S [EXTRA_ENV...]
# Records per run: list_ms (bench-list), ready_ms, own_ms (service log), svc_list_ms,
# s3 calls, VmHWM after ready. Leaves nothing running.
startup_runs() {
  local label=$1 s3=$2 data=$3 runs=$4 limit=$5
  shift 5
  local r line list_ms logf own svc_list calls ops hwm
  for r in $(seq "$runs"); do
    note_cmd "bench-list --endpoint $s3 --bucket $PUB --bucket $PRIV"
    line=$("$BIN/bench-list" --endpoint "$s3" --bucket "$PUB" --bucket "$PRIV" | tail -1)
    list_ms=$(sed -n 's/.* ms=\([0-9]*\).*/\1/p' <<<"$line")
    # No manifests: remove the ones an earlier start-up wrote.
    rm -rf "$data/$PUB/.parparchik" "$data/$PRIV/.parparchik"
    logf=$WORK/raw/startup-$label.$r.log
    start_service 60 "$logf" "$s3" "$@"
    wait_ready "$SVC_URL" "$SVC_PID" "$logf" "$limit"
    calls=$(s3_calls "$SVC_URL")
    ops=$(s3_calls_by_op "$SVC_URL")
    hwm=$(hwm_mb "$SVC_PID")
    own=$(sed -n 's/.*start-up: ready with .* after \([0-9]*\) ms.*/\1/p' "$logf" | tail -1)
    svc_list=$(sed -n 's/.*listed bucket .* objects in \([0-9]*\) ms.*/\1/p' "$logf" | awk '{ s += $1 } END { print s + 0 }')
    record "startup-$label" "$r" "$READY_MS" "$list_ms" "$own" "svc_list=$svc_list;calls=$calls;hwm=$hwm;ops=$ops"
    log "start-up $label #$r: ready after $READY_MS ms (service: $own ms, its listing $svc_list ms); bench-list $list_ms ms; $calls S3 requests ($ops); VmHWM $hwm MB"
    stop_pid "$SVC_PID"
  done
  note_cmd "rm -rf DATA/*/.parparchik; env ${SVC_ENV[*]} parparchik  # then GET /readiness every 20 ms (bash /dev/tcp, no process per poll)"
}
startup_runs small "$S3" "$WORK/s3" "$RUNS" 120

# --- the servers under load -----------------------------------------------------------
start_service 60 "$WORK/svc-ttl60.log" "$S3"
A=$SVC_URL A_PID=$SVC_PID
note_cmd "env ${SVC_ENV[*]} parparchik 2>>svc-ttl60.log"
start_service 0 "$WORK/svc-ttl0.log" "$S3"
B=$SVC_URL B_PID=$SVC_PID
note_cmd "env ${SVC_ENV[*]} parparchik 2>>svc-ttl0.log"
start_service 60 /dev/null "$S3"
C=$SVC_URL C_PID=$SVC_PID
note_cmd "env ${SVC_ENV[*]} parparchik 2>/dev/null"
for s in "$A $A_PID $WORK/svc-ttl60.log" "$B $B_PID $WORK/svc-ttl0.log" "$C $C_PID /dev/null"; do
  read -r url pid logf <<<"$s"
  SVC_T0=$(now_ms)
  wait_ready "$url" "$pid" "$logf" 120
done

HOT_PUB=/$PUB/bench/0.bin
HOT_PRIV=/$PRIV/bench/1.bin
LOC_LEN=$(curl -s -o /dev/null -w '%{redirect_url}' "$A$HOT_PRIV" | tr -d '\n' | wc -c)
[ "$LOC_LEN" -gt 100 ] || die "no presigned Location from $A$HOT_PRIV"
F_PORT=$(free_port)
F=http://127.0.0.1:$F_PORT
"$BIN/bench-floor" --addr "127.0.0.1:$F_PORT" --location-len "$LOC_LEN" >"$WORK/floor.out" 2>&1 &
F_PID=$!
PIDS+=("$F_PID")
note_cmd "bench-floor --addr 127.0.0.1:$F_PORT --location-len $LOC_LEN"
for i in $(seq 100); do
  grep -q listening "$WORK/floor.out" 2>/dev/null && break
  sleep 0.05
done

S3_HEAD_URL=$("$BIN/bench-presign" --endpoint "$S3" --bucket "$PRIV" --key bench/1.bin --method HEAD)
S3_GET_URL=$("$BIN/bench-presign" --endpoint "$S3" --bucket "$PRIV" --key bench/1.bin --method GET)
note_cmd "bench-presign --endpoint $S3 --bucket $PRIV --key bench/1.bin --method HEAD|GET"

# Every route answers what it should before anything is measured.
for svc in "$A" "$B" "$C" "$F"; do
  expect_status 302 "$svc$HOT_PUB"
  expect_status 302 "$svc$HOT_PRIV"
done
expect_status 200 "$S3_HEAD_URL" -I
expect_status 200 "$S3_GET_URL"
expect_status 200 "$A/update?filename=bench/2.bin"
expect_status 200 "$A/status"
PUB_LOC=$(curl -s -o /dev/null -w '%{redirect_url}' "$A$HOT_PUB")
curl -s -o /dev/null -w '%{redirect_url}' "$A$HOT_PRIV" | sed 's/X-Amz-Signature=.*/X-Amz-Signature=<64 hex>/' >"$WORK/priv_loc.txt"

PRESIGN_LINE=$("$BIN/bench-presign" --endpoint "$S3" --bucket "$PRIV" --key bench/1.bin --time)
note_cmd "bench-presign --endpoint $S3 --bucket $PRIV --key bench/1.bin --time"
log "presigned_url: $PRESIGN_LINE"

# --- rounds -----------------------------------------------------------------------------
truncate_logs() { : >"$WORK/svc-ttl60.log"; : >"$WORK/svc-ttl0.log"; }
heads() { s3_calls "$1" HeadObject; }
WARM_S=$(((N + 1999) / 2000 + 3))
for r in $(seq "$RUNS"); do
  log "round $r of $RUNS"
  CPU_PIDS="$F_PID $S3_MAIN_PID"
  run_wrk hot-public.floor "$r" "$F$HOT_PUB"
  CPU_PIDS="$A_PID $S3_MAIN_PID"
  run_wrk hot-public.ttl60 "$r" "$A$HOT_PUB"
  CPU_PIDS="$C_PID $S3_MAIN_PID"
  run_wrk hot-public.ttl60-nolog "$r" "$C$HOT_PUB"
  CPU_PIDS="$B_PID $S3_MAIN_PID"
  h0=$(heads "$B")
  run_wrk hot-public.ttl0 "$r" "$B$HOT_PUB"
  record heads.hot-public.ttl0 "$r" "$(($(heads "$B") - h0))" 0 0 ""
  truncate_logs

  CPU_PIDS="$F_PID $S3_MAIN_PID"
  run_wrk hot-private.floor "$r" "$F$HOT_PRIV"
  CPU_PIDS="$A_PID $S3_MAIN_PID"
  run_wrk hot-private.ttl60 "$r" "$A$HOT_PRIV"
  CPU_PIDS="$B_PID $S3_MAIN_PID"
  h0=$(heads "$B")
  run_wrk hot-private.ttl0 "$r" "$B$HOT_PRIV"
  record heads.hot-private.ttl0 "$r" "$(($(heads "$B") - h0))" 0 0 ""
  truncate_logs

  # The verification window: a sequential pass over every route first, so that the
  # measured run sees the steady state (each file re-checked once a minute at most).
  env BENCH_ROUTES="$ROUTES" BENCH_ORDER=seq BENCH_THREADS="$THREADS" \
    wrk -t"$THREADS" -c"$CONNS" -d"${WARM_S}s" -s "$ROOT/benches/spread.lua" "$A" >"$WORK/raw/warm.$r.wrk" 2>&1 || true
  note_cmd "BENCH_ROUTES=routes.txt BENCH_ORDER=seq BENCH_THREADS=$THREADS wrk -t$THREADS -c$CONNS -d${WARM_S}s -s benches/spread.lua '$A'  # warm-up, not measured"
  CPU_PIDS="$F_PID $S3_MAIN_PID"
  run_wrk spread.floor "$r" "$F" BENCH_ROUTES="$ROUTES" -- "$ROOT/benches/spread.lua"
  CPU_PIDS="$A_PID $S3_MAIN_PID"
  h0=$(heads "$A")
  run_wrk spread.ttl60 "$r" "$A" BENCH_ROUTES="$ROUTES" -- "$ROOT/benches/spread.lua"
  record heads.spread.ttl60 "$r" "$(($(heads "$A") - h0))" 0 0 ""
  CPU_PIDS="$B_PID $S3_MAIN_PID"
  h0=$(heads "$B")
  run_wrk spread.ttl0 "$r" "$B" BENCH_ROUTES="$ROUTES" -- "$ROOT/benches/spread.lua"
  record heads.spread.ttl0 "$r" "$(($(heads "$B") - h0))" 0 0 ""
  truncate_logs

  CPU_PIDS="$S3_MAIN_PID"
  run_ab s3.head-ab "$r" "$S3_HEAD_URL" -i
  run_wrk s3.get-wrk "$r" "$S3_GET_URL"
  run_ab s3.get-ab "$r" "$S3_GET_URL"

  CPU_PIDS="$A_PID $S3_MAIN_PID"
  run_wrk status.ttl60 "$r" "$A/status"
  run_wrk update.ttl60 "$r" "$A/update?filename=bench/2.bin"
  truncate_logs
done
CPU_PIDS=""

# Log bytes per request (the per-request line goes to stderr, unbuffered).
curl -s -o /dev/null "$A$HOT_PUB"
sleep 0.2
LOG_LINE=$(tail -1 "$WORK/svc-ttl60.log")
LOG_BYTES=$(printf '%s\n' "$LOG_LINE" | wc -c)

for r in $(seq "$RUNS"); do
  t=$(curl -s -o "$WORK/raw/list.$r.json" -w '%{time_total}' --max-time 600 "$A/list")
  record list.ttl60 "$r" "$(awk -v t="$t" 'BEGIN { printf "%d", t * 1000 }')" 0 0 "bytes=$(wc -c <"$WORK/raw/list.$r.json")"
  log "/list #$r: $t s"
done
note_cmd "curl -s -o list.json -w '%{time_total}' '$A/list'"

MEM_A=$(hwm_mb "$A_PID") MEM_B=$(hwm_mb "$B_PID") MEM_C=$(hwm_mb "$C_PID") MEM_F=$(hwm_mb "$F_PID")
RSS_A=$(rss_mb "$A_PID") RSS_B=$(rss_mb "$B_PID") RSS_C=$(rss_mb "$C_PID") RSS_F=$(rss_mb "$F_PID")
MEM_S3=$(hwm_mb "$S3_MAIN_PID")
COALESCED_B=$(curl -s "$B/metrics" | awk '/^parparchik_coalesced_checks_total/ { print $2 }')
for pid in "$A_PID" "$B_PID" "$C_PID" "$F_PID" "$S3_MAIN_PID"; do stop_pid "$pid"; done

# --- start-up with the large set ------------------------------------------------------
if [ "$LARGE" = 1 ]; then
  if [ "$LARGE_SEED" = direct ]; then
    log "seeding $LARGE_N objects as plain files into the s3s-fs data directory"
    note_cmd "bench-seed --direct DATA --objects $LARGE_N"
    LSEED_LINE=$("$BIN/bench-seed" --direct "$WORK/s3-large" --objects "$LARGE_N" 2>/dev/null)
    start_s3 "$WORK/s3-large"
  else
    start_s3 "$WORK/s3-large"
    log "seeding $LARGE_N objects by PUT into $S3_URL"
    note_cmd "bench-seed --endpoint $S3_URL --objects $LARGE_N"
    LSEED_LINE=$("$BIN/bench-seed" --endpoint "$S3_URL" --objects "$LARGE_N" 2>/dev/null)
  fi
  log "$LSEED_LINE"
  # One S3 attempt may take a while here (a page costs a scan of the whole bucket).
  startup_runs large "$S3_URL" "$WORK/s3-large" "${BENCH_LARGE_RUNS:-1}" 1800 PARPARCHIK_S3_TIMEOUT=120
  stop_pid "$S3_PID"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------------------------
# stat SCENARIO COLUMN(3..5): "median (min–max)" over the runs; MED: the median alone.
stat() {
  awk -F'\t' -v s="$1" -v c="$2" '$1 == s { print $c }' "$TSV" | sort -g | awk '
    { v[NR] = $1 }
    END { if (NR == 0) { print "n/a"; exit }
          m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%s\t%s\t%s\n", m, v[1], v[NR] }'
}
med() { stat "$1" "$2" | cut -f1; }
fmt_rps() { stat "$1" 3 | awk -F'\t' '$1 == "n/a" { print "n/a"; exit } { printf "%\047.0f (%\047.0f–%\047.0f)", $1, $2, $3 }'; }
fmt_ms() { stat "$1" "$2" | awk -F'\t' '$1 == "n/a" { print "n/a"; exit } { printf "%.2f (%.2f–%.2f)", $1 / 1000, $2 / 1000, $3 / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "n/a" }'; }
errs() { awk -F'\t' -v s="$1" '$1 == s { n2 = split($6, f, ";"); for (j = 1; j <= n2; j++) if (f[j] ~ /^errors=/) n += substr(f[j], 8) } END { print n + 0 }' "$TSV"; }
per_req() { # HEADs per request: sum of heads / sum of requests (rps × duration)
  awk -F'\t' -v h="heads.$1" -v s="$1" -v d="$DUR_S" '
    $1 == h { heads += $3 } $1 == s { reqs += $3 * d }
    END { if (reqs > 0) printf "%.4f", heads / reqs; else print "n/a" }' "$TSV"
}
yes_no() { awk -v c="$1" 'BEGIN { print (c ? "**met**" : "**not met**") }'; }

F_PUB=$(med hot-public.floor 3) F_PRIV=$(med hot-private.floor 3)
S3H=$(med s3.head-ab 3) S3G_W=$(med s3.get-wrk 3) S3G_A=$(med s3.get-ab 3)
cpu_med() { # median CPU µs/request of the i-th process of a scenario
  awk -F'\t' -v s="$1" -v i="$2" '$1 == s { n = split($6, f, ";"); for (j = 1; j <= n; j++) if (f[j] ~ /^cpu=/) { split(substr(f[j], 5), c, "/"); print c[i] } }' "$TSV" |
    sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
row() { # LABEL SCENARIO BASE_SCENARIO KIND(floor|head|"") NOTE
  local vs=""
  case $4 in
    floor) vs="$(pct "$(med "$2" 3)" "$(med "$3" 3)") of floor" ;;
    head) vs="$(ratio "$(med "$2" 3)" "$(med "$3" 3)")× S3 HEAD" ;;
  esac
  local cpu_s cpu_3
  cpu_s=$(cpu_med "$2" 1)
  cpu_3=$(cpu_med "$2" 2)
  case $2 in s3.*) cpu_3=$cpu_s cpu_s="" ;; esac
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(fmt_rps "$2")" "$vs" "$(fmt_ms "$2" 4)" "$(fmt_ms "$2" 5)" "${cpu_s:-}" "${cpu_3:-}" "$5"
}
st() { awk -F'\t' -v s="startup-$1" -v c="$2" '$1 == s { print $c }' "$TSV" | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%s", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else printf "n/a" }'; }
st_extra() { awk -F'\t' -v s="startup-$1" -v k="$2" '$1 == s { n = split($6, f, ";"); for (i = 1; i <= n; i++) if (index(f[i], k "=") == 1) print substr(f[i], length(k) + 2) }' "$TSV" | tail -1; }
st_extra_med() { awk -F'\t' -v s="startup-$1" -v k="$2" '$1 == s { n = split($6, f, ";"); for (i = 1; i <= n; i++) if (index(f[i], k "=") == 1) print substr(f[i], length(k) + 2) }' "$TSV" | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%s", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else printf "n/a" }'; }
# Median over the runs of (ready / bench-list of the same run): both ran back to back.
st_ratio() { awk -F'\t' -v s="startup-$1" '$1 == s && $4 > 0 { printf "%.3f\n", $3 / $4 }' "$TSV" | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else printf "n/a" }'; }
st_all() { awk -F'\t' -v s="startup-$1" -v c="$2" '$1 == s { printf "%s%s", (n++ ? ", " : ""), $c }' "$TSV"; }

{
  echo "# Load benchmark results"
  echo
  echo "Written by \`bash benches/run.sh\` (\`just bench\`) on $DATE: $NPROC CPUs ($CPU), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo),"
  echo "Linux $(uname -r), $RUSTC, $WRK_V, $AB_V. Load average before: $LOAD_BEFORE; after: $LOAD_AFTER"
  echo "(the machine is shared: other builds may have run at the same time, so compare servers"
  echo "by the ratios measured side by side, not across runs)."
  echo
  echo "Everything runs on these $NPROC cores at once: the load generator, the server under"
  echo "test, and (for parparchik) the S3 server it asks. $N objects (${SEED_RATE}/s seeded by PUT) split"
  echo "between \`$PUB\` (public) and \`$PRIV\` (private), keys \`bench/<i>.bin\`."
  echo "Each figure: median over $RUNS runs of $DURATION with $CONNS keep-alive connections (wrk -t$THREADS), (min–max) after it."
  echo "The runs are interleaved: each round runs every workload once, so the servers compared"
  echo "were measured within about two minutes of each other."
  echo
  echo "## Requests"
  echo
  echo "Servers: **floor** = \`bench-floor\` (bare hyper 1.x, fixed 302, Location of $LOC_LEN bytes like ours,"
  echo "\`Cache-Control: no-store\`, no other work); **TTL=60** = parparchik with \`PARPARCHIK_VERIFY_TTL=60\`"
  echo "(redirects from the registry for 60 s after S3 confirmed a file), its log on a file;"
  echo "**TTL=0** = every request checks S3 (HEAD, concurrent checks of one object coalesced)."
  echo
  echo "| Workload / server | req/s | vs | p50 ms | p99 ms | CPU µs/req, server | CPU µs/req, S3 | notes |"
  echo "|---|---|---|---|---|---|---|---|"
  row "hot public file, floor" hot-public.floor "" "" ""
  row "hot public file, TTL=60" hot-public.ttl60 hot-public.floor floor ""
  row "hot public file, TTL=60, log to /dev/null" hot-public.ttl60-nolog hot-public.floor floor "log to a file costs $(pct "$(awk -v a="$(med hot-public.ttl60 3)" -v b="$(med hot-public.ttl60-nolog 3)" 'BEGIN { print b - a }')" "$(med hot-public.ttl60-nolog 3)") of req/s"
  row "hot public file, TTL=0" hot-public.ttl0 s3.head-ab head "$(per_req hot-public.ttl0) HEADs/request"
  row "hot private file (presigned), floor" hot-private.floor "" "" ""
  row "hot private file (presigned), TTL=60" hot-private.ttl60 hot-private.floor floor ""
  row "hot private file (presigned), TTL=0" hot-private.ttl0 s3.head-ab head "$(per_req hot-private.ttl0) HEADs/request"
  row "spread over $N files, floor" spread.floor "" "" "same wrk script"
  row "spread over $N files, TTL=60" spread.ttl60 spread.floor floor "warmed; $(per_req spread.ttl60) HEADs/request"
  row "spread over $N files, TTL=0" spread.ttl0 s3.head-ab head "$(per_req spread.ttl0) HEADs/request"
  row "S3 server: HEAD presigned (ab -i)" s3.head-ab "" "" "signature verified per request; ab, not wrk (see below)"
  row "S3 server: GET presigned (wrk)" s3.get-wrk "" "" "26-byte body"
  row "S3 server: GET presigned (ab)" s3.get-ab "" "" "wrk/ab on the same URL: $(ratio "$S3G_W" "$S3G_A")"
  row "/status, TTL=60" status.ttl60 "" "" ""
  row "/update?filename=bench/2.bin, TTL=60" update.ttl60 "" "" "one HEAD per request (coalesced)"
  printf '| /list (single requests, re-sync of %s objects) | — | | %s | | | | %s bytes of JSON |\n' "$N" \
    "$(stat list.ttl60 3 | awk -F'\t' '{ printf "%.0f (%.0f–%.0f)", $1, $2, $3 }')" \
    "$(awk -F'\t' '$1 == "list.ttl60" { split($6, kv, "="); print kv[2]; exit }' "$TSV")"
  echo
  echo "Errors (socket errors, timeouts, statuses ≥ 400) over all runs: $(for s in hot-public.floor hot-public.ttl60 hot-public.ttl60-nolog hot-public.ttl0 hot-private.floor hot-private.ttl60 hot-private.ttl0 spread.floor spread.ttl60 spread.ttl0 s3.head-ab s3.get-wrk s3.get-ab status.ttl60 update.ttl60; do printf '%s' "$(errs $s) "; done | awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s + 0 }')."
  echo "For /list the p50 column is the time of one request (ms). CPU µs/req: user + system CPU"
  echo "time of the server under test (and of local-s3) during the run, divided by the requests"
  echo "wrk completed (from /proc/PID/stat): what one request costs each process, independent of"
  echo "how the two cores were shared."
  echo "Per-request log: one line of $LOG_BYTES bytes on stderr per request, e.g. \`$(sed 's/`//g' <<<"$LOG_LINE")\`."
  echo "Public Location: \`$PUB_LOC\`; private: \`$(cat "$WORK/priv_loc.txt")\`."
  echo
  echo "The S3 server's HEAD rate is measured with ab (apache2-utils): wrk 4.1 cannot send HEAD"
  echo "(it waits for the body announced by Content-Length). ab is single-threaded; the GET rows"
  echo "measure the same URL with both tools to show how much the tool itself matters."
  echo "Spread, TTL=60: each measured run is preceded by a sequential pass over all $N routes"
  echo "(not measured), so it sees the steady state where each file is re-checked at most once"
  echo "a minute."
  echo
  echo "## Start-up (no manifests)"
  echo
  echo "| objects | ready (spawn → /readiness 200), ms | service's own \"ready after\", ms | listing inside start-up, ms | bench-list alone, ms | ready / list (same run) | S3 requests by start-up | VmHWM after ready |"
  echo "|---|---|---|---|---|---|---|---|"
  for l in small large; do
    [ "$l" = large ] && [ "$LARGE" != 1 ] && continue
    n=$N
    [ "$l" = large ] && n=$LARGE_N
    printf '| %s | %s | %s | %s | %s | %s | %s (%s) | %s MB |\n' "$n" "$(st $l 3)" "$(st $l 5)" "$(st_extra_med $l svc_list)" \
      "$(st $l 4)" "$(st_ratio $l)" "$(st_extra $l calls)" "$(st_extra $l ops)" "$(st_extra_med $l hwm)"
  done
  echo
  echo "Each run: bench-list, then a start-up right after it. Runs with $N objects: ready $(st_all small 3) ms;"
  echo "bench-list $(st_all small 4) ms$([ "$LARGE" = 1 ] && echo "; with $LARGE_N: ready $(st_all large 3) ms, bench-list $(st_all large 4) ms")."
  echo "Medians over $RUNS start-ups with $N objects$([ "$LARGE" = 1 ] && echo " and ${BENCH_LARGE_RUNS:-1} with $LARGE_N (seeded: $(sed -n 's/.*mode=\([a-z]*\).* rate=\([0-9]*\).*/\1, \2\/s/p' <<<"${LSEED_LINE:-}"))")."
  [ "$LARGE" = 1 ] || echo "The $LARGE_N-object start-up runs with \`BENCH_STARTUP_LARGE=1\` (about 7 more minutes)."
  echo "local-s3 (s3s-fs) rescans the whole bucket directory for every 1000-key page and HEADs each"
  echo "listed object for its ETag, so a full listing costs O(N²/1000) here; MinIO and AWS do not."
  echo
  echo "## Memory"
  echo
  echo "| process | VmHWM (peak RSS) | VmRSS at the end |"
  echo "|---|---|---|"
  echo "| parparchik TTL=60 (after all its load and $RUNS × /list) | $MEM_A MB | $RSS_A MB |"
  echo "| parparchik TTL=0 | $MEM_B MB | $RSS_B MB |"
  echo "| parparchik TTL=60, log to /dev/null | $MEM_C MB | $RSS_C MB |"
  echo "| bench-floor | $MEM_F MB | $RSS_F MB |"
  echo "| local-s3 | $MEM_S3 MB | |"
  echo
  echo "## Targets"
  echo
  A_PUB=$(med hot-public.ttl60 3) A_PRIV=$(med hot-private.ttl60 3) A_SPR=$(med spread.ttl60 3) F_SPR=$(med spread.floor 3)
  B_SPR=$(med spread.ttl0 3) B_PUB=$(med hot-public.ttl0 3) B_PRIV=$(med hot-private.ttl0 3)
  PEAK=$(printf '%s\n' "$MEM_A" "$MEM_B" "$MEM_C" "$(st_extra small hwm)" "$(st_extra large hwm)" | sort -g | tail -1)
  PRESIGN_NS=$(sed -n 's/.* cpu_ns=\([0-9]*\).*/\1/p' <<<"$PRESIGN_LINE")
  [ -n "$PRESIGN_NS" ] || PRESIGN_NS=$(sed -n 's/^presign_url_ns=\([0-9]*\).*/\1/p' <<<"$PRESIGN_LINE")
  echo "| target | measured | |"
  echo "|---|---|---|"
  echo "| TTL=60, hot public ≥ 70% of floor req/s | $(pct "$A_PUB" "$F_PUB") | $(yes_no "$(awk -v a="$A_PUB" -v b="$F_PUB" 'BEGIN { print (a >= 0.7 * b) }')") |"
  echo "| TTL=60, hot private ≥ 70% of floor req/s | $(pct "$A_PRIV" "$F_PRIV") | $(yes_no "$(awk -v a="$A_PRIV" -v b="$F_PRIV" 'BEGIN { print (a >= 0.7 * b) }')") |"
  echo "| TTL=60, spread ≥ 70% of floor req/s (same script on both) | $(pct "$A_SPR" "$F_SPR") | $(yes_no "$(awk -v a="$A_SPR" -v b="$F_SPR" 'BEGIN { print (a >= 0.7 * b) }')") |"
  for sc in hot-public hot-private spread; do
    p=$(med "$sc.ttl60" 5)
    echo "| TTL=60, $sc: p99 < 5 ms at $CONNS connections | $(awk -v p="$p" 'BEGIN { printf "%.2f ms", p / 1000 }') (floor: $(awk -v p="$(med "$sc.floor" 5)" 'BEGIN { printf "%.2f ms", p / 1000 }')) | $(yes_no "$(awk -v p="$p" 'BEGIN { print (p < 5000) }')") |"
  done
  echo "| TTL=0, spread ≥ 80% of the S3 server's HEAD rate | $(pct "$B_SPR" "$S3H") | $(yes_no "$(awk -v a="$B_SPR" -v b="$S3H" 'BEGIN { print (a >= 0.8 * b) }')") |"
  echo "| TTL=0, one hot file several (≥ 3) times the HEAD rate | public $(ratio "$B_PUB" "$S3H")×, private $(ratio "$B_PRIV" "$S3H")× | $(yes_no "$(awk -v a="$B_PUB" -v c="$B_PRIV" -v b="$S3H" 'BEGIN { print (a >= 3 * b && c >= 3 * b) }')") |"
  if [ "$LARGE" = 1 ]; then
    LR=$(st_ratio large)
    echo "| start-up, $LARGE_N objects, no manifests: ready ≤ 2 × list | ${LR}× | $(yes_no "$(awk -v r="$LR" 'BEGIN { print (r <= 2) }')") |"
  else
    echo "| start-up, $LARGE_N objects: ready ≤ 2 × list | not run (BENCH_STARTUP_LARGE=1); $N objects: $(st_ratio small)× | |"
  fi
  echo "| peak RSS < 150 MB | $PEAK MB | $(yes_no "$(awk -v p="$PEAK" 'BEGIN { print (p < 150) }')") |"
  echo "| presign < 2 µs (\`DownloadUrls::presigned_url\` as the redirect calls it, on-CPU median) | $(awk -v n="$PRESIGN_NS" 'BEGIN { printf "%.2f µs", n / 1000 }') | $(yes_no "$(awk -v n="$PRESIGN_NS" 'BEGIN { print (n < 2000) }')") |"
  echo
  echo "\`bench-presign --time\`: $PRESIGN_LINE (ns per call: wall-clock median, on-CPU median, wall min and max of 15 rounds). The signer alone"
  echo "is measured by \`cargo bench --bench sigv4\` (run by \`just bench\` before this script)."
  echo
  echo "## Commands"
  echo
  echo "Binaries from \`cargo build --release -p local-s3 -p parparchik -p parparchik-bench\`;"
  echo "S3: \`local-s3 --addr 127.0.0.1:0 --data DIR --bucket $PUB:public --bucket $PRIV\`"
  echo "(credentials \`minioadmin\`). Ports were free ones of this run."
  echo
  echo '```'
  cat "$CMDS"
  echo '```'
} >"$OUT"
log "wrote ${OUT#"$ROOT"/}"
