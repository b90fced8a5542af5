-- wrk: PATCH a random owned entry with typed fields plus a metadata merge.
-- Targets ("<key> <data_id>" per line) come from the file named by LABCAT_TARGETS.
local targets = {}
local statuses = {"success", "pending", "error", "running"}

function init(args)
  for line in io.lines(os.getenv("LABCAT_TARGETS")) do
    local key, id = line:match("(%S+) (%S+)")
    targets[#targets + 1] = {key = key, id = id}
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local t = targets[math.random(#targets)]
  local n = math.random(1000000000)
  local body = string.format(
    '{"pipeline_status":"%s","raw_name":"run_%d.dat","metadata":{"counter":%d,"stage":{"step":%d}}}',
    statuses[math.random(4)], n, n, n % 7)
  return wrk.format("PATCH", "/data_entries/" .. t.id,
    {["X-API-KEY"] = t.key, ["Content-Type"] = "application/json"}, body)
end
