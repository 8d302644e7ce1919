-- wrk script: POST /v1/search (or /v1/chat with env WRK_PATH=/v1/chat) with queries read from the file in env
-- WRK_QUERIES (one per line), in turn.
-- Prints p50/p95/p99 latency and the error count as one parsable line at the end.
local queries = {}
local n = 0

local function load()
  local path = os.getenv("WRK_QUERIES")
  for line in io.lines(path) do
    if #line > 0 then
      queries[#queries + 1] = line
    end
  end
end

local path = os.getenv("WRK_PATH") or "/v1/search"

init = function(args)
  load()
  n = math.random(#queries)
end

request = function()
  n = n % #queries + 1
  local q = queries[n]:gsub('\\', '\\\\'):gsub('"', '\\"')
  local body = '{"query": "' .. q .. '", "top_k": 5}'
  if path == "/v1/chat" then
    body = '{"question": "' .. q .. '"}'
  end
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
    + summary.errors.timeout
  io.write(string.format("RESULT rps=%.1f p50=%.2f p95=%.2f p99=%.2f errors=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, errors, summary.requests))
end
