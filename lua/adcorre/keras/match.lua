--- adcorre.keras.match: pairs the weight layers of a Keras file (or of a
-- rebuilt Keras graph) with the modules of a native model, and copies the
-- weights across.
--
-- Unnamed Keras layers (Xception's residual conv2d / batch_normalization,
-- a mini-Xception's conv2d_1 ...) carry counters that differ from file to
-- file, so layers are paired by position, not by a fixed name:
--   * a "unit" is a weight layer (Conv2D, SeparableConv2D, DepthwiseConv2D,
--     Dense) with the BatchNormalization that reads it, if any;
--   * units whose Keras name equals the native module's name (Xception's
--     block1_conv1, ...) are paired by name;
--   * the others are paired in order, class by class (the k-th remaining
--     Conv2D of the file with the k-th remaining Conv2D of the model).
-- Every pair is checked, shape by shape, before anything is copied.
local layers = require("adcorre.keras.layers")

local M = {}
local shape_str = layers.shape_str

local CONVLIKE = {Conv2D = true, SeparableConv2D = true, DepthwiseConv2D = true, Dense = true}

----------------------------------------------------------------------------
-- units
----------------------------------------------------------------------------

-- Groups an ordered list of items {name=, class=, ...} into units; a
-- BatchNormalization joins the item it reads (`producer(i)` gives that
-- item's index, or nil).
local function group_units(items, producer)
  local units, unit_of = {}, {}
  for i, it in ipairs(items) do
    if it.class == "BatchNormalization" then
      local p = producer(i)
      local u = p and unit_of[p]
      if u and not u.bn then
        u.bn = it
      else
        units[#units + 1] = {class = "BatchNormalization", bn = it, name = it.name}
      end
    elseif CONVLIKE[it.class] then
      units[#units + 1] = {class = it.class, conv = it, name = it.name}
      unit_of[i] = units[#units]
    end
  end
  return units
end

--- Units of a native model: its weight modules depth first, a batch norm
--- joining the weight module just before it. `skip(m)` leaves a subtree out.
function M.native_units(model, skip)
  local items = {}
  local function walk(m, path)
    if skip and skip(m) then return end
    local c = layers.class_of(m)
    if c then
      local _, ws = layers.weights_of(m)
      items[#items + 1] = {class = c, module = m, name = m.name, path = path, expect = ws}
      return
    end
    for i, ch in ipairs(m.modules or {}) do
      walk(ch, path .. "." .. (ch.name or tostring(i)))
    end
  end
  walk(model, model.name or "model")
  return group_units(items, function(i)
    local p = items[i - 1]
    return (p and CONVLIKE[p.class]) and i - 1 or nil
  end)
end

--- Units of a parsed Keras graph (keras.topology.parse, weights loaded into its
--- modules): the weight layers among `keep` (a set of node indices, or all),
--- a batch norm joining the layer it reads.
function M.graph_units(g, keep)
  local items, index_of = {}, {}
  for i, n in ipairs(g.nodes) do
    if (not keep or keep[i]) and n.spec.weights and #n.spec.weights > 0 then
      local shapes = {}
      for _, w in ipairs(n.spec.weights) do shapes[w.name] = w.shape end
      items[#items + 1] = {class = n.class, name = n.name, module = n.spec.core, shapes = shapes, node = i}
      index_of[i] = #items
    end
  end
  return group_units(items, function(i)
    local src = g.nodes[items[i].node].inputs[1]
    return src and index_of[src]
  end)
end

-- Keras class of a weights-only layer from its weight names and shapes.
local function file_class(l)
  local w = l.weights
  if w.depthwise_kernel and w.pointwise_kernel then return "SeparableConv2D" end
  if w.depthwise_kernel then return "DepthwiseConv2D" end
  if w.moving_mean and w.moving_variance then return "BatchNormalization" end
  if w.kernel and #w.kernel == 4 then return "Conv2D" end
  if w.kernel and #w.kernel == 2 then return "Dense" end
  return nil
end

--- Units of a weights-only file (h5 F:weight_layers()): a batch norm joins
--- the weight layer just before it in layer_names order if its size is that
--- layer's output size.
function M.file_units(wl, where)
  local items = {}
  for _, l in ipairs(wl) do
    local c = file_class(l)
    if not c then
      error(("%s: layer '%s' has weights %s that are not those of a supported layer"):format(where, l.name,
        table.concat(l.order, ", ")), 0)
    end
    items[#items + 1] = {class = c, name = l.name, shapes = l.weights}
  end
  return group_units(items, function(i)
    local p = items[i - 1]
    if not (p and CONVLIKE[p.class]) then return nil end
    local k = p.shapes.pointwise_kernel or p.shapes.kernel or p.shapes.depthwise_kernel
    local n = p.shapes.depthwise_kernel and not p.shapes.pointwise_kernel and k[3] * k[4] or k[#k]
    return (items[i].shapes.moving_mean[1] == n) and i - 1 or nil
  end)
end

----------------------------------------------------------------------------
-- pairing
----------------------------------------------------------------------------

local function describe(it)
  local parts = {}
  for _, s in pairs(it.shapes or {}) do parts[#parts + 1] = shape_str(s) end
  if it.expect then for _, w in ipairs(it.expect) do parts[#parts + 1] = shape_str(w.shape) end end
  table.sort(parts)
  return table.concat(parts, " ")
end

-- Checks src's Keras shapes (a shapes table) against the native item's.
local function check_item(src, dst, where)
  if (src == nil) ~= (dst == nil) then
    local have = src or dst
    error(("%s: layer '%s' %s a BatchNormalization after it in the file, the model's '%s' %s"):format(where,
      src and src.name or "?", src and "has no" or "has", dst and dst.path or "?", src and "has one" or "has none")
      .. " (" .. have.class .. ")", 0)
  end
  if src == nil then return end
  for _, w in ipairs(dst.expect) do
    local s = src.shapes[w.name]
    local optional = src.class == "BatchNormalization" and (w.name == "gamma" or w.name == "beta")
    if s == nil and not optional then
      error(("%s: layer '%s' (%s) has no weight '%s'; the model's '%s' needs %s"):format(where, src.name,
        src.class, w.name, dst.path, shape_str(w.shape)), 0)
    end
    if s ~= nil and shape_str(s) ~= shape_str(w.shape) then
      error(("%s: layer '%s' (%s) weight '%s' has shape %s in the file, the model's '%s' expects %s"):format(
        where, src.name, src.class, w.name, shape_str(s), dst.path, shape_str(w.shape)), 0)
    end
  end
end

--- Pairs file units with native units; returns {{src = unit, dst = unit}, ...}
--- and the file units left without a partner of class `optional_class`
--- (e.g. "Dense" for a trunk-only load). Errors name the first mismatch.
function M.pair(src_units, dst_units, where, opts)
  opts = opts or {}
  local pairs_, used_src, used_dst = {}, {}, {}
  local dst_by_name = {}
  for i, u in ipairs(src_units) do u.index = i end
  -- only names that occur once in the model (AdCorreNet's k heads are all "dense")
  for j, u in ipairs(dst_units) do
    if u.name then dst_by_name[u.name] = dst_by_name[u.name] == nil and j or false end
  end
  for i, u in ipairs(src_units) do
    local j = u.name and dst_by_name[u.name]
    if j and dst_units[j].class == u.class and not used_dst[j] then
      pairs_[#pairs_ + 1] = {src = u, dst = dst_units[j]}
      used_src[i], used_dst[j] = true, true
    end
  end
  local rest_src, rest_dst = {}, {}
  for i, u in ipairs(src_units) do
    if not used_src[i] then
      rest_src[u.class] = rest_src[u.class] or {}
      table.insert(rest_src[u.class], u)
    end
  end
  for j, u in ipairs(dst_units) do
    if not used_dst[j] then
      rest_dst[u.class] = rest_dst[u.class] or {}
      table.insert(rest_dst[u.class], u)
    end
  end
  local ignored, count_error = {}, nil
  local classes = {}
  for c in pairs(rest_src) do classes[c] = true end
  for c in pairs(rest_dst) do classes[c] = true end
  local sorted = {}
  for c in pairs(classes) do sorted[#sorted + 1] = c end
  table.sort(sorted)
  for _, c in ipairs(sorted) do
    local a, b = rest_src[c] or {}, rest_dst[c] or {}
    if #a ~= #b then
      if c == opts.optional_class and (#b == 0 or opts.skip_optional) then
        for _, u in ipairs(a) do ignored[#ignored + 1] = u.name end
        a, b = {}, {}
      elseif c == opts.optional_class and #a == 0 then
        b = {}
      elseif not count_error then
        local first = a[#b + 1] or b[#a + 1]
        local item = first.conv or first.bn
        count_error = ("%s: the file has %d %s layers the model does not name, the model %d; first unpaired: %s '%s' %s"):format(
          where, #a, c, #b, a[#b + 1] and "file layer" or "model module", a[#b + 1] and first.name or item.path,
          describe(item))
      end
    end
    for k = 1, math.min(#a, #b) do pairs_[#pairs_ + 1] = {src = a[k], dst = b[k]} end
  end
  -- the first mismatch in the file's order says more than the counts
  table.sort(pairs_, function(x, y) return x.src.index < y.src.index end)
  for _, p in ipairs(pairs_) do
    check_item(p.src.conv, p.dst.conv, where)
    check_item(p.src.bn, p.dst.bn, where)
  end
  if count_error then error(count_error, 0) end
  return pairs_, ignored
end

----------------------------------------------------------------------------
-- copying
----------------------------------------------------------------------------

-- The tensors of a module in a fixed order (parameters, then buffers).
local function tensors_of(m)
  local out = {}
  for _, e in ipairs(m:namedParameters()) do out[#out + 1] = e.param end
  for _, e in ipairs(m:namedBuffers()) do out[#out + 1] = e.tensor end
  return out
end

local function copy_item(src, dst, read, where)
  if src == nil then return end
  if src.module then
    local a, b = tensors_of(src.module), tensors_of(dst.module)
    if #a ~= #b then error(("%s: '%s' and '%s' hold different tensors"):format(where, src.name, dst.path), 0) end
    for k = 1, #a do b[k]:copy(a[k]) end
  else
    layers.COPY[src.class](dst.module, read(src.name))
  end
end

--- Copies every pair's weights; read(name) gives a file layer's tensors
--- (short name -> tensor) for file units.
function M.copy(pairs_, read, where)
  for _, p in ipairs(pairs_) do
    copy_item(p.src.conv, p.dst.conv, read, where)
    copy_item(p.src.bn, p.dst.bn, read, where)
  end
end

return M
