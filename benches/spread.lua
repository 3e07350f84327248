-- wrk script for the spread workload: every request names one of the routes listed in
-- BENCH_ROUTES (one path per line, as `bench-seed --routes` writes them).
--   BENCH_ORDER=random (default): each request picks a route uniformly at random;
--   BENCH_ORDER=seq: thread k of BENCH_THREADS (default 2) walks routes k, k+T, k+2T, ...
--     and wraps around: a pass over every route, used to warm the verification window.
--   BENCH_ROUTES=/tmp/routes.txt wrk -t2 -c64 -d10s -s benches/spread.lua http://127.0.0.1:8080

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

local requests = {}
local n, pos, step = 0, 0, 1
local sequential = false

function init(args)
  local file = os.getenv("BENCH_ROUTES")
  assert(file and file ~= "", "BENCH_ROUTES must name the routes file")
  for line in io.lines(file) do
    if line ~= "" then
      n = n + 1
      -- Formatted once here, so each request costs wrk a table lookup only.
      requests[n] = wrk.format(nil, line)
    end
  end
  assert(n > 0, "no routes in " .. file)
  local id = thread_id or 1
  sequential = os.getenv("BENCH_ORDER") == "seq"
  step = tonumber(os.getenv("BENCH_THREADS") or "2")
  pos = id - 1
  math.randomseed(os.time() * 1000 + id * 7919)
end

function request()
  if sequential then
    local r = requests[pos % n + 1]
    pos = pos + step
    return r
  end
  return requests[math.random(n)]
end
