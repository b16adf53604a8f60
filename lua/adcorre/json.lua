--- adcorre.json: JSON for the command-line programs' --json output and the
-- model files' metadata, on Debian's lua-dkjson (writing, reading values)
-- and lua-cjson (strict syntax check of what is read).
--
--   json.encode({splits = {train = {Happy = 3}}, ok = true})
--   --> {"ok":true,"splits":{"train":{"Happy":3}}}
--
-- What this wrapper adds to dkjson's defaults, and guarantees:
--  * objects' keys are written in sorted order (output is stable);
--  * tables with keys 1..n are arrays, other tables objects; an empty table
--    is an object ({}) unless marked with json.array(t);
--  * integers print as integers, other numbers in the shortest of %.15g,
--    %.16g and %.17g that reads back exactly (integral values below 2^53
--    without a fraction); NaN and infinities, which JSON cannot hold, print
--    as null;
--  * json.encode(v, {exact = true}), for data that must read back as written
--    (model file metadata): every float is "%.17g"; NaN, infinities and
--    non-string object keys are errors instead of null / "1";
--  * json.decode accepts strict JSON only (no trailing commas, no bare
--    words), keeps a number with a fraction or an exponent a float ("2.0"
--    -> 2.0) and one without an integer ("2" -> 2, exact up to 2^63);
--    null reads as nil and arrays carry json.array's mark.
local dkjson = require("dkjson")
local cjson = require("cjson").new()

cjson.decode_invalid_numbers(false) -- no hex, inf or nan literals

local json = {}

local array_mt = { __jsontype = "array" }
local object_mt = { __jsontype = "object" }

--- Marks t to be written as an array (even when empty).
function json.array(t) return setmetatable(t or {}, array_mt) end
--- Marks t to be written as an object (even when empty or array-like).
function json.object(t) return setmetatable(t or {}, object_mt) end

--- A value that encodes as null inside tables.
json.null = setmetatable({}, { __tostring = function() return "null" end,
                               __tojson = function() return "null" end })

-- A number already formatted: dkjson writes the string as it is.
local raw_mt = { __tojson = function(t) return t[1] end }

local function number_text(x, exact)
  if x ~= x or x == math.huge or x == -math.huge then
    if exact then error("json.encode: cannot encode " .. tostring(x), 0) end
    return "null"
  end
  if exact then return ("%.17g"):format(x) end
  if x == math.floor(x) and math.abs(x) < 2 ^ 53 then return ("%d"):format(x) end
  for _, fmt in ipairs({ "%.15g", "%.16g" }) do
    local s = fmt:format(x)
    if tonumber(s) == x then return s end
  end
  return ("%.17g"):format(x)
end

local function is_array(t)
  local mt = getmetatable(t)
  if mt and mt.__jsontype then return mt.__jsontype == "array" end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local function by_text(a, b) return tostring(a) < tostring(b) end

-- v as dkjson should see it: arrays and objects marked (objects with their
-- keys' order), floats formatted; errors for what JSON cannot hold.
local function prepare(v, exact, seen)
  local tv = type(v)
  if v == nil or v == json.null or tv == "boolean" or tv == "string" then return v end
  if tv == "number" then
    if math.type(v) == "integer" then return v end
    return setmetatable({ number_text(v, exact) }, raw_mt)
  end
  if tv ~= "table" then error("json.encode: cannot encode a " .. tv, 0) end
  if seen[v] then error("json.encode: a table contains itself", 0) end
  seen[v] = true
  local out
  if is_array(v) then
    out = setmetatable({}, array_mt)
    for i = 1, #v do out[i] = prepare(v[i], exact, seen) end
  else
    local keys = {}
    for k in pairs(v) do
      if exact and type(k) ~= "string" then
        error("json.encode: object keys must be strings, got " .. type(k), 0)
      elseif type(k) ~= "string" and type(k) ~= "number" then
        error("json.encode: object keys must be strings or numbers, got " .. type(k), 0)
      end
      keys[#keys + 1] = k
    end
    table.sort(keys, by_text)
    -- string keys, and numbers as formatted text, so that dkjson never
    -- takes an object for an array (it would for keys 1..n or n = <number>)
    local names = {}
    out = setmetatable({}, { __jsontype = "object", __jsonorder = names })
    for i, k in ipairs(keys) do
      local name, x = tostring(k), prepare(v[k], exact, seen)
      if math.type(x) == "integer" then x = setmetatable({ tostring(x) }, raw_mt) end
      names[i], out[name] = name, x
    end
  end
  seen[v] = nil
  return out
end

--- JSON text of v. opts.indent: pretty output (dkjson's layout);
--- opts.exact: floats as "%.17g", non-finite numbers and non-string keys are errors.
function json.encode(v, opts)
  local ok, r = pcall(prepare, v, opts and opts.exact, {})
  if not ok then error(r, 2) end
  return dkjson.encode(r, { indent = opts and opts.indent and true or nil })
end

--- Parses JSON text (objects -> tables, arrays -> arrays, null -> nil).
function json.decode(s)
  if type(s) ~= "string" then error("json.decode: expects a string", 2) end
  local ok, err = pcall(cjson.decode, s)
  if not ok then error("json.decode: " .. tostring(err), 0) end
  local v, _, msg = dkjson.decode(s, 1, nil, nil, array_mt)
  if msg then error("json.decode: " .. msg, 0) end
  return v
end

return json
