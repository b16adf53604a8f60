--- spec/keras_fixtures.lua - the Keras test files of tools/keras_h5_make.py
-- for spec/keras_spec.lua and spec/keras_programs_spec.lua.
--   local kf = require("keras_fixtures")
--   kf.available    -- /usr/bin/python3 has h5py and torch
--   kf.make("chunked", "bad", ...)   -- writes what build/keras-fixtures lacks
--   kf.DIR
local M = {DIR = "build/keras-fixtures", PY = "/usr/bin/python3"}

local p = io.popen(M.PY .. " -c 'import h5py, torch' 2>/dev/null; echo $?")
M.available = (p and p:read("*l")) == "0"
if p then p:close() end

-- the file whose presence says a maker has run
local PROBE = {bad = "bad_wrong_shape", hostile = "hostile_flatten_input"}

function M.make(...)
  local missing = {}
  for _, n in ipairs({...}) do
    local f = io.open(M.DIR .. "/" .. (PROBE[n] or n) .. ".h5")
    if f then f:close() else missing[#missing + 1] = n end
  end
  if #missing == 0 then return end
  local cmd = ("nice -n 10 %s tools/keras_h5_make.py %s %s 2>&1"):format(M.PY, M.DIR, table.concat(missing, " "))
  local h = io.popen(cmd)
  local out = h:read("a")
  assert(h:close(), "tools/keras_h5_make.py failed: " .. out)
end

return M
