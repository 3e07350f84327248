-- wrk script for one fixed URL: the method from BENCH_METHOD (default GET), and a
-- machine-readable summary line for benches/run.sh. Also loaded by spread.lua.
--   BENCH_METHOD=HEAD wrk -t2 -c64 -d10s -s benches/report.lua URL

local method = os.getenv("BENCH_METHOD")
if method and method ~= "" then
  wrk.method = method
end

-- Latencies in microseconds; statuses >= 400 and socket errors are counted by wrk.
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH rps=%.1f p50_us=%d p99_us=%d max_us=%d requests=%d"
      .. " status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99), latency.max,
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout))
end
