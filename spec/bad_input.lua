--- spec/bad_input.lua - what the bad-input specs share: the message of a
-- failing call without its Lua "file.lua:line: " position prefix, with the
-- spec's temporary folder (bad.D, when it has one) written as $D, and the
-- assertion that the whole message equals the expected one.
--
--   local bad = require("bad_input")
--   bad.fails("size 1 is negative (-1)", ac.zeros, -1)
local luassert = require("luassert")

local bad = {}

-- The error message of fn(...) without a Lua position prefix, $D for the folder.
function bad.err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  luassert(not ok, "expected an error, the call succeeded")
  luassert(type(e) == "string", "expected a string error, got " .. type(e))
  e = e:gsub("^[%w%./_%-]+%.lua:%d+: ", "", 1)
  local D = bad.D
  local i, j
  if D then i, j = e:find(D, 1, true) end
  while i do
    e = e:sub(1, i - 1) .. "$D" .. e:sub(j + 1)
    i, j = e:find(D, i + 2, true)
  end
  return e
end

function bad.fails(expected, fn, ...)
  luassert.are.equal(expected, bad.err_of(fn, ...))
end

return bad
