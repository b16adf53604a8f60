--- adcorre.json: a small JSON encoder (and decoder) for the command-line
-- programs' --json output.
--
--   json.encode({splits = {train = {Happy = 3}}, ok = true})
--   --> {"ok":true,"splits":{"train":{"Happy":3}}}
--
-- Tables with keys 1..n are arrays; other tables are objects whose keys are
-- written in sorted order (so output is stable). An empty table is an object
-- ({}) unless marked with json.array(t). Integers print as integers, other
-- numbers with 17 significant digits (shortest exact form when possible);
-- NaN and infinities, which JSON cannot hold, print as null.
local json = {}

local array_mt = { __jsontype = "array" }
local object_mt = { __jsontype = "object" }

--- Marks t to be written as an array (even when empty).
function json.array(t) return setmetatable(t or {}, array_mt) end
--- Marks t to be written as an object (even when empty or array-like).
function json.object(t) return setmetatable(t or {}, object_mt) end

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
                  ["\t"] = "\\t" }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function encode_number(x)
  if math.type(x) == "integer" then return tostring(x) end
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  if x == math.floor(x) and math.abs(x) < 2 ^ 53 then return ("%d"):format(x) end
  for _, fmt in ipairs({ "%.15g", "%.16g", "%.17g" }) do
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

local function encode(v, out, indent, depth, seen)
  local tv = type(v)
  if v == nil or v == json.null then out[#out + 1] = "null"
  elseif tv == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then out[#out + 1] = encode_number(v)
  elseif tv == "string" then out[#out + 1] = encode_string(v)
  elseif tv == "table" then
    if seen[v] then error("json.encode: a table contains itself", 0) end
    seen[v] = true
    local nl, pad, pad_in = "", "", ""
    if indent then
      nl = "\n"
      pad = (" "):rep(indent * depth)
      pad_in = (" "):rep(indent * (depth + 1))
    end
    if is_array(v) then
      if #v == 0 then out[#out + 1] = "[]"
      else
        out[#out + 1] = "[" .. nl
        for i = 1, #v do
          out[#out + 1] = pad_in
          encode(v[i], out, indent, depth + 1, seen)
          out[#out + 1] = (i < #v and "," or "") .. nl
        end
        out[#out + 1] = pad .. "]"
      end
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" and type(k) ~= "number" then
          error("json.encode: object keys must be strings or numbers, got " .. type(k), 0)
        end
        keys[#keys + 1] = k
      end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      if #keys == 0 then out[#out + 1] = "{}"
      else
        out[#out + 1] = "{" .. nl
        for i, k in ipairs(keys) do
          out[#out + 1] = pad_in .. encode_string(tostring(k)) .. (indent and ": " or ":")
          encode(v[k], out, indent, depth + 1, seen)
          out[#out + 1] = (i < #keys and "," or "") .. nl
        end
        out[#out + 1] = pad .. "}"
      end
    end
    seen[v] = nil
  else
    error("json.encode: cannot encode a " .. tv, 0)
  end
end

--- JSON text of v. opts.indent: spaces per level for pretty output.
function json.encode(v, opts)
  local out = {}
  local ok, err = pcall(encode, v, out, opts and opts.indent, 0, {})
  if not ok then error(err, 2) end
  return table.concat(out)
end

--- A value that encodes as null inside tables.
json.null = setmetatable({}, { __tostring = function() return "null" end })

----------------------------------------------------------------------------
-- decoder (used by tests and tools reading --json output)
----------------------------------------------------------------------------

local function decode_error(s, i, what)
  error(("json.decode: %s at character %d"):format(what, i), 0)
end

local function skip(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

local decode_value

local function decode_string(s, i)
  local out, j = {}, i + 1
  while true do
    local c = s:sub(j, j)
    if c == "" then decode_error(s, j, "unterminated string") end
    if c == '"' then return table.concat(out), j + 1 end
    if c == "\\" then
      local e = s:sub(j + 1, j + 1)
      local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
      if map[e] then out[#out + 1] = map[e]; j = j + 2
      elseif e == "u" then
        local hex = s:sub(j + 2, j + 5)
        if not hex:match("^%x%x%x%x$") then decode_error(s, j, "bad \\u escape") end
        out[#out + 1] = utf8.char(tonumber(hex, 16))
        j = j + 6
      else decode_error(s, j, "bad escape") end
    else
      out[#out + 1] = c
      j = j + 1
    end
  end
end

function decode_value(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local t = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return t, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then decode_error(s, i, "expected a string key") end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then decode_error(s, i, "expected ':'") end
      t[k], i = decode_value(s, i + 1)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "}" then return t, i + 1 end
      if d ~= "," then decode_error(s, i, "expected ',' or '}'") end
      i = skip(s, i + 1)
    end
  elseif c == "[" then
    local t = json.array({})
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return t, i + 1 end
    while true do
      t[#t + 1], i = decode_value(s, i)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "]" then return t, i + 1 end
      if d ~= "," then decode_error(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == '"' then return decode_string(s, i)
  elseif s:sub(i, i + 3) == "true" then return true, i + 4
  elseif s:sub(i, i + 4) == "false" then return false, i + 5
  elseif s:sub(i, i + 3) == "null" then return nil, i + 4
  else
    local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if not num or num == "" then decode_error(s, i, "unexpected character '" .. c .. "'") end
    local v = math.tointeger(tonumber(num)) or tonumber(num)
    if v == nil then decode_error(s, i, "bad number") end
    return v, i + #num
  end
end

--- Parses JSON text (objects -> tables, arrays -> arrays, null -> nil).
function json.decode(s)
  if type(s) ~= "string" then error("json.decode: expects a string", 2) end
  local v, i = decode_value(s, 1)
  i = skip(s, i)
  if i <= #s then decode_error(s, i, "trailing characters") end
  return v
end

return json
