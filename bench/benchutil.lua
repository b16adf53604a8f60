--- bench/benchutil.lua - what the benchmark scripts share: the load average
-- printed beside every figure, and running one measuring process
-- (bench/ac_side.lua, bench/torch_ref.py, ...) that ends with a JSON line.
local json = require("adcorre.json")
local M = {}

--- The 1, 5 and 15 minute load averages, as one string.
function M.load()
  local f = io.open("/proc/loadavg")
  local s = f and f:read("l") or "?"
  if f then f:close() end
  return s:match("^(%S+ %S+ %S+)") or s
end

--- Runs `cmd` and decodes the last line of its output that starts with "{";
-- exits with the output on stderr when the command fails (`who` names the caller).
function M.run_json(cmd, who)
  local p = io.popen(cmd .. " 2>&1")
  local text = p:read("a")
  local ok = p:close()
  local last
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, 1) == "{" then last = line end
  end
  if not ok or not last then
    io.stderr:write(who .. ": command failed: " .. cmd .. "\n" .. text .. "\n")
    os.exit(1)
  end
  return json.decode(last)
end

return M
