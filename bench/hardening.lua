-- wrk script for bench/hardening.py, in one of two roles (LABCAT_ROLE):
--   victim:   GET a random entry by id; targets ("<key> <data_id>" per line) from LABCAT_TARGETS.
--   attacker: cycle through the requests in LABCAT_REQUESTS ("METHOD<TAB>PATH<TAB>BODY" per
--             line, BODY possibly empty), all sent with the key in LABCAT_KEY.
-- Either way it counts responses by status and, when done, prints machine-readable lines
-- ("status <code> <count>", "latency_us <p50> <p99> <max>", "errors ...") for the script.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local role = os.getenv("LABCAT_ROLE")
local targets = {}
local requests = {}
local next_request = 0
statuses = {}

function init(args)
  if role == "victim" then
    for line in io.lines(os.getenv("LABCAT_TARGETS")) do
      local key, id = line:match("(%S+) (%S+)")
      targets[#targets + 1] = {key = key, id = id}
    end
  else
    local key = os.getenv("LABCAT_KEY")
    for line in io.lines(os.getenv("LABCAT_REQUESTS")) do
      local method, path, body = line:match("^(%u+)\t([^\t]+)\t?(.*)$")
      local headers = {["X-API-KEY"] = key}
      if body == "" then
        body = nil
      else
        headers["Content-Type"] = "application/json"
      end
      requests[#requests + 1] = wrk.format(method, path, headers, body)
    end
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  next_request = math.random(1, math.max(#requests, 1)) - 1
end

function request()
  if role == "victim" then
    local t = targets[math.random(#targets)]
    return wrk.format("GET", "/data_entries/" .. t.id, {["X-API-KEY"] = t.key})
  end
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do
      total[code] = (total[code] or 0) + count
    end
  end
  for code, count in pairs(total) do
    io.write(string.format("status %d %d\n", code, count))
  end
  io.write(string.format("latency_us %d %d %d\n",
    latency:percentile(50.0), latency:percentile(99.0), latency.max))
  local e = summary.errors
  io.write(string.format("errors connect=%d read=%d write=%d timeout=%d\n",
    e.connect, e.read, e.write, e.timeout))
  io.write(string.format("requests %d duration_us %d\n", summary.requests, summary.duration))
end
