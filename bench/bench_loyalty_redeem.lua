-- wrk script of bench/bench_loyalty_redeem.py: each request redeems 1 point from a random account
-- (customer ids LOW..HIGH) with an idempotency key no other request uses (RUN, thread, counter).
-- Prints the latency percentiles (microseconds) and the statuses as one JSON line at the end.
local low, high = tonumber(os.getenv("LOW")), tonumber(os.getenv("HIGH"))
local run = os.getenv("RUN")
local headers = {
  ["Authorization"] = "Token " .. os.getenv("TOKEN"),
  ["Content-Type"] = "application/json",
}
local threads = {}
local number = 0

function setup(thread)
  number = number + 1
  thread:set("number", number)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  statuses = {}
  math.randomseed(number * 7919 + os.time())
end

function request()
  counter = counter + 1
  local customer = math.random(low, high)
  local body = string.format('{"points": 1, "idempotency_key": "wrk-%s-%d-%d"}', run, number, counter)
  return wrk.format("POST", "/api/v1/loyalty/accounts/" .. customer .. "/redeem/", headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.3f, "p50": %d, "p95": %d, "p99": %d, "errors": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout, table.concat(parts, ", ")))
end
