# Shared by benches/scale.sh and benches/soak.sh (sourced, not run): logging, a work
# folder and the clean-up of every process started, free ports, starting the synthetic
# S3. Set TAG (log prefix), KEEP (1 leaves the processes running) and KEEP_VAR (its name,
# for the message) and BIN before sourcing.

log() { printf '[%s %s] %s\n' "$TAG" "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=$(mktemp -d "/tmp/parparchik-$TAG.XXXXXX")
PIDS=()
cleanup() {
  if [ "$KEEP" = 1 ]; then
    log "$KEEP_VAR=1: left running: pids ${PIDS[*]:-none}; S3 ${S3:-?}, service ${SVC:-?}; files in $WORK"
    return
  fi
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port below the ephemeral range (outgoing connections take those), used by no socket.
EPHEMERAL_LOW=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
  local p i span=$((EPHEMERAL_LOW - 10000))
  for i in $(seq 200); do
    p=$((10000 + (RANDOM * 32768 + RANDOM) % span))
    if command -v ss >/dev/null; then
      [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] || continue
    elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      continue
    fi
    echo "$p"
    return
  done
  die "no free port found"
}

# start_bench_s3 ARG...: bench-s3 on a port of its choosing with ARG...; sets S3 to its URL.
start_bench_s3() {
  "$BIN/bench-s3" --addr 127.0.0.1:0 "$@" >"$WORK/s3.out" 2>&1 &
  PIDS+=($!)
  S3=
  for _ in $(seq 200); do
    S3=$(sed -n 's/^bench-s3: listening on \(http:[^ ]*\).*/\1/p' "$WORK/s3.out")
    [ -n "$S3" ] && break
    sleep 0.05
  done
  [ -n "$S3" ] || die "bench-s3 did not start: $(cat "$WORK/s3.out")"
  log "$(head -1 "$WORK/s3.out")"
}
