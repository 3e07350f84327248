# Recipes for people who use `just`; each names a plain command you can also run by hand.

# The service on an embedded local S3 with the demo buckets (Ctrl-C to stop).
run:
    cargo run -p parparchik-demo

# The whole test suite: unit tests, SigV4 vectors, integration tests.
test:
    cargo test --workspace

# The end-to-end suite. Without E2E_S3_ENDPOINT it starts the embedded S3 itself;
# against `just up`: E2E_S3_ENDPOINT=http://localhost:9000 just e2e
e2e:
    cargo build --bin parparchik
    cargo run -p parparchik-e2e

# MinIO + parparchik with Docker Compose (needs a Docker engine).
up:
    docker compose up -d --build

down:
    docker compose down

# The benchmark harness (writes BENCHMARKS.md tables); see BENCHMARKS.md.
bench:
    cargo bench --bench sigv4
    bash benches/run.sh

# The load test: 1000 keep-alive clients for 60 s, mixed endpoints (benches/LOAD.md).
load:
    bash benches/load.sh

# The deployment files against their schemas, and the binary run as the image runs it.
check-deploy:
    cargo build --release --bin parparchik
    cargo build --release -p local-s3 --bin local-s3
    bash deploy/check.sh target/release

# Format check and clippy, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p parparchik

# CI, exactly as it runs on a clean clone.
ci:
    bash .ci/run

# The scale benchmark against the synthetic S3 (benches/scale.sh; BENCHMARKS.md, "Scale"):
# `just bench-scale 1000000`; BENCH_LATENCY_MS=20 delays each listing page.
bench-scale N="100000":
    bash benches/scale.sh {{N}}

# The soak: 1000 clients for 10 minutes while the synthetic S3 flaps between healthy,
# hanging, bare 404 and 503 every 20 s (benches/soak.sh). Not part of CI.
soak:
    bash benches/soak.sh
