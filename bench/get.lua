-- wrk: GET a random owned entry by id.
-- Targets ("<key> <data_id>" per line) come from the file named by LABCAT_TARGETS.
local targets = {}

function init(args)
  for line in io.lines(os.getenv("LABCAT_TARGETS")) do
    local key, id = line:match("(%S+) (%S+)")
    targets[#targets + 1] = {key = key, id = id}
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local t = targets[math.random(#targets)]
  return wrk.format("GET", "/data_entries/" .. t.id, {["X-API-KEY"] = t.key})
end
