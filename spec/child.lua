--- spec/child.lua - running Lua code in a child lua5.4 for the specs where a
-- regression could hang the process or exhaust memory: under `timeout` and,
-- outside AddressSanitizer (which reserves terabytes of shadow memory), an
-- address-space cap (`ulimit -v`), with the specs' module paths.
local M = {}

local sanitized = os.getenv("AC_SANITIZED") == "1"

--- Runs a shell command; returns its exit status and its output (stdout and stderr).
function M.sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  return tonumber(out:match("rc=(%d+)%s*$")), out
end

--- Runs `code` in a child; returns its exit status (124: timed out) and output.
-- opts: seconds (default 20), cap_kb (default 4,000,000).
function M.run(code, opts)
  opts = opts or {}
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code, "\n")
  f:close()
  local cap = sanitized and "" or ("ulimit -v %d; "):format(opts.cap_kb or 4000000)
  local rc, out = M.sh(("%sLUA_PATH_5_4=%q LUA_CPATH_5_4=%q timeout %d lua5.4 %s"):format(
    cap, package.path, package.cpath, opts.seconds or 20, path))
  os.remove(path)
  return rc, out
end

return M
