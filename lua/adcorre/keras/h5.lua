--- adcorre.keras.h5: Keras' HDF5 conventions on top of core.hdf5.
--
--   local f = h5.open(path, "keras.load")   -- a Keras file, or an error naming it
--   f:attr_list(obj, name)       -- load_attributes_from_hdf5_group: `name`, or
--                                -- name0, name1, ... when Keras split it (> 64 KB)
--   f:attr_string(obj, name)     -- one string attribute, or nil
--   f:layer_weights(group, layer, where) -> {short = tensor}, {ordered list}
--   f:weight_layers(root)        -- {{name =, weights = {short = shape}, order = {short}}}
--                                   for every layer of `layer_names` with weights
--   f:close()
local core = require("adcorre.core")

local M = {}
local F = {}
F.__index = F

--- Opens a Keras HDF5 file; `where` prefixes the errors.
function M.open(path, where)
  if type(path) ~= "string" then error(where .. ": path must be a string, got " .. type(path), 0) end
  local ok, h = pcall(core.hdf5.open, path)
  if not ok then error(where .. ": " .. tostring(h), 0) end
  return setmetatable({h = h, path = path, where = where}, F)
end

function F:close() self.h:close() end
F.__close = F.close

function F:fail(fmt, ...)
  error(("%s: %s: " .. fmt):format(self.where, self.path, ...), 0)
end

function F:call(method, ...)
  local ok, r = pcall(self.h[method], self.h, ...)
  if not ok then error(self.where .. ": " .. tostring(r), 0) end
  return r
end

function F:kind(path) return self:call("kind", path) end

function F:attr_list(obj, name)
  local v = self:call("attr", obj, name)
  if v then return v end
  local out, i = nil, 0
  while true do
    local chunk = self:call("attr", obj, name .. i)
    if not chunk then break end
    out = out or {}
    for _, s in ipairs(chunk) do out[#out + 1] = s end
    i = i + 1
  end
  return out
end

function F:attr_string(obj, name)
  local v = self:call("attr", obj, name)
  if v == nil then return nil end
  if #v ~= 1 then self:fail("attribute %s of '%s' holds %d strings, expected one", name, obj, #v) end
  return v[1]
end

-- "conv2d_1_1/kernel:0" -> "kernel"
local function short_name(w)
  return (w:match("([^/]+)$") or w):gsub(":%d+$", "")
end
M.short_name = short_name

--- The weights of one layer group: short name -> tensor, and the short names
--- in the file's order. Reads the datasets only when `read` is true (else
--- the values are their shapes).
function F:layer_weights(root, layer, read)
  local group = (root == "/" and "" or root .. "/") .. layer
  local k = self:kind(group)
  if k ~= "group" then
    self:fail("no weights group '%s' for layer '%s'%s", group, layer, k and " (it is a " .. k .. ")" or "")
  end
  local names = self:attr_list(group, "weight_names")
  if names == nil then self:fail("group '%s' has no weight_names attribute", group) end
  local found, order = {}, {}
  for i, w in ipairs(names) do
    local path = group .. "/" .. w
    local s = short_name(w)
    local kind = self:kind(path)
    if kind ~= "dataset" then
      self:fail("layer '%s': weight %d '%s' (from weight_names) is missing: no dataset '%s'", layer, i, w, path)
    end
    found[s] = read and self:call("read", path) or self:call("shape", path)
    order[i] = s
  end
  return found, order
end

--- Every layer named in root's layer_names that has weights, in that order.
function F:weight_layers(root)
  local names = self:attr_list(root, "layer_names")
  if names == nil then self:fail("'%s' has no layer_names attribute: not a Keras weights group", root) end
  local out = {}
  for _, n in ipairs(names) do
    local shapes, order = self:layer_weights(root, n, false)
    if #order > 0 then out[#out + 1] = {name = n, weights = shapes, order = order} end
  end
  return out
end

return M
