#!/usr/bin/env bash
# Checks the deployment files and the image's assumptions without a container engine.
#
# 1. Schemas: compose.yaml against the Compose specification, every manifest under
#    deploy/kubernetes against the Kubernetes schemas (tools pinned, installed in a
#    throwaway virtual environment); a deliberately broken copy of each must fail.
#    (Variables and probe paths are checked by `cargo test --test it deployment::`.)
# 2. What the Containerfile assumes of the binary: it runs as a numeric non-root user
#    (65532, as the image does) with a read-only working directory and no HOME, becomes
#    ready against an S3, and `parparchik healthcheck` exits 0 against the running
#    service and 1 once it is gone.
#
# Usage: bash deploy/check.sh BIN_DIR   (a folder holding parparchik and local-s3)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${1:?usage: deploy/check.sh BIN_DIR (with parparchik and local-s3 in it)}

CHECK_JSONSCHEMA=check-jsonschema==0.39.0
KUBERNETES_VALIDATE=kubernetes-validate==1.37.0

say() { printf 'deploy/check: %s\n' "$*"; }
fail() { say "FAILED: $*"; exit 1; }

work=$(mktemp -d)
# The service runs as another user below: it must reach its binary.
chmod 0755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# --- 1. schemas ---------------------------------------------------------------------
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$CHECK_JSONSCHEMA" "$KUBERNETES_VALIDATE"
compose_check() { "$work/venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$@"; }
kube_check() { "$work/venv/bin/kubernetes-validate" --strict "$@"; }

compose_check compose.yaml
kube_check deploy/kubernetes/*.yaml deploy/kubernetes/irsa/*.yaml
say "schemas: compose.yaml and every manifest are valid"

# Broken copies: a wrong key in each file must be caught.
sed 's/^    healthcheck:/    healthchek:/' compose.yaml >"$work/compose.yaml"
cmp -s compose.yaml "$work/compose.yaml" && fail "could not break compose.yaml"
if compose_check "$work/compose.yaml" >/dev/null 2>&1; then
  fail "a compose.yaml with an unknown key passed"
fi
for f in deploy/kubernetes/*.yaml deploy/kubernetes/irsa/*.yaml; do
  sed '0,/^metadata:/s//metdata:/' "$f" >"$work/broken.yaml"
  cmp -s "$f" "$work/broken.yaml" && fail "could not break $f"
  if kube_check "$work/broken.yaml" >/dev/null 2>&1; then
    fail "$f with an unknown key passed"
  fi
done
say "schemas: a broken copy of each file fails"

# --- 2. the binary as the image runs it -------------------------------------------
install -d -m 0755 "$work/bin" "$work/s3"
install -m 0755 "$BIN_DIR/parparchik" "$BIN_DIR/local-s3" "$work/bin/"
# The working directory: owned by root, not writable by the service's user.
install -d -m 0555 "$work/ro"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
S3_PORT=$(free_port)
APP_PORT=$(free_port)
AWS_ACCESS_KEY_ID=check AWS_SECRET_ACCESS_KEY=check-secret-key \
  "$work/bin/local-s3" --addr "127.0.0.1:$S3_PORT" --data "$work/s3" \
  --bucket public-bucket:public --bucket private-bucket >"$work/s3.log" 2>&1 &
pids+=($!)

as_image() {
  # uid/gid 65532 (the image's USER), no HOME, nothing else inherited.
  (cd "$work/ro" && exec setpriv --reuid=65532 --regid=65532 --clear-groups \
    env -i PATH=/usr/bin:/bin "$@")
}
# Started directly (not through the function) so that $! is the service's own PID.
(cd "$work/ro" && exec setpriv --reuid=65532 --regid=65532 --clear-groups \
  env -i PATH=/usr/bin:/bin \
  PARPARCHIK_PUBLIC_BUCKET=public-bucket PARPARCHIK_PRIVATE_BUCKET=private-bucket \
  PARPARCHIK_HOST=127.0.0.1 PARPARCHIK_PORT="$APP_PORT" PARPARCHIK_SHUTDOWN_DELAY=0 \
  S3_ENDPOINT="127.0.0.1:$S3_PORT" AWS_ACCESS_KEY_ID=check AWS_SECRET_ACCESS_KEY=check-secret-key \
  AWS_EC2_METADATA_DISABLED=true "$work/bin/parparchik") >"$work/app.log" 2>&1 &
app=$!
pids+=($app)

ready=0
for _ in $(seq 1 200); do
  if python3 - "$APP_PORT" <<'EOF' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readiness", timeout=1)
EOF
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || { cat "$work/app.log"; fail "the service did not become ready as uid 65532 with a read-only working directory and no HOME"; }
[ -z "$(ls -A "$work/ro")" ] || fail "the service wrote into its working directory"
say "binary: ready as uid 65532, read-only working directory, HOME unset"

as_image PARPARCHIK_PORT="$APP_PORT" "$work/bin/parparchik" healthcheck ||
  fail "parparchik healthcheck did not exit 0 against a running service"
kill "$app"
wait "$app" || true
if as_image PARPARCHIK_PORT="$APP_PORT" "$work/bin/parparchik" healthcheck; then
  fail "parparchik healthcheck exited 0 with no service running"
fi
say "binary: healthcheck exits 0 against the service and 1 against none"
say "ok"
