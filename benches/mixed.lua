-- wrk script for the load test (benches/load.sh): a mix of what clients and operators
-- send. Per request: 90% a download route (one of the seeded routes at random), 5%
-- /update?filename=<that key>, 4.9% /metrics, 0.1% /list (a full re-sync).
--   LOAD_ROUTES=/tmp/routes.txt wrk -t2 -c1000 -d60s -s benches/mixed.lua http://127.0.0.1:8080

local routes, keys = {}, {}
local n = 0

function init(args)
  local file = os.getenv("LOAD_ROUTES")
  assert(file and file ~= "", "LOAD_ROUTES must name the routes file")
  for line in io.lines(file) do
    if line ~= "" then
      n = n + 1
      routes[n] = wrk.format(nil, line)
      -- /<bucket>/<key>: the key is everything after the second slash.
      keys[n] = wrk.format(nil, "/update?filename=" .. line:match("^/[^/]+/(.*)$"))
    end
  end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
end

local metrics = wrk.format(nil, "/metrics")
local list = wrk.format(nil, "/list")

function request()
  local r = math.random()
  local i = math.random(n)
  if r < 0.90 then
    return routes[i]
  elseif r < 0.95 then
    return keys[i]
  elseif r < 0.999 then
    return metrics
  else
    return list
  end
end
