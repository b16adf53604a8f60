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
--
-- json.encode(v, {exact = true}) is the form for data that must read back
-- as written (model file metadata): every float is written "%.17g", NaN,
-- infinities and non-string object keys are errors instead of null / "1".
--
-- json.decode keeps a number with a fraction or an exponent a float ("2.0"
-- -> 2.0) and one without an integer ("2" -> 2, exact up to 2^63).
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

local function encode_number(x, exact)
  if math.type(x) == "integer" then return tostring(x) end
  if x ~= x or x == math.huge or x == -math.huge then
    if exact then error("json.encode: cannot encode " .. tostring(x), 0) end
    return "null"
  end
  if exact then return ("%.17g"):format(x) end
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

local function encode(v, out, indent, depth, seen, exact)
  local tv = type(v)
  if v == nil or v == json.null then out[#out + 1] = "null"
  elseif tv == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then out[#out + 1] = encode_number(v, exact)
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
          encode(v[i], out, indent, depth + 1, seen, exact)
          out[#out + 1] = (i < #v and "," or "") .. nl
        end
        out[#out + 1] = pad .. "]"
      end
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
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      if #keys == 0 then out[#out + 1] = "{}"
      else
        out[#out + 1] = "{" .. nl
        for i, k in ipairs(keys) do
          out[#out + 1] = pad_in .. encode_string(tostring(k)) .. (indent and ": " or ":")
          encode(v[k], out, indent, depth + 1, seen, exact)
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

--- JSON text of v. opts.indent: spaces per level for pretty output;
--- opts.exact: floats as "%.17g", non-finite numbers and non-string keys are errors.
function json.encode(v, opts)
  local out = {}
  local ok, err = pcall(encode, v, out, opts and opts.indent, 0, {}, opts and opts.exact)
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
        local cp = tonumber(hex, 16)
        j = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF and s:sub(j, j + 1) == "\\u" then
          local lo = tonumber(s:sub(j + 2, j + 5), 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            j = j + 6
          end
        end
        out[#out + 1] = utf8.char(cp)
      else decode_error(s, j, "bad escape") end
    else
      local k = s:find('["\\]', j) or #s + 1
      out[#out + 1] = s:sub(j, k - 1)
      j = k
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
    local v = tonumber(num)
    if v == nil then decode_error(s, i, "bad number '" .. num .. "'") end
    if not num:find("[.eE]") then v = math.tointeger(v) or v end
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
