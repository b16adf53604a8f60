--- adcorre.keras.native: recognises the Ad-Corre network in a parsed Keras
-- graph and rebuilds it as the native models.AdCorreNet.
--
-- The pattern: trunk -> GlobalAveragePooling2D -> k x (Dense(d) ->
-- Lambda(l2_normalize)) -> Concatenate -> [Dropout] -> Dense(C, softmax)
-- (or Dense + Activation softmax). The heads are taken in the
-- Concatenate's input order. The trunk becomes ac.models.xception's or
-- minixception's when its weight layers pair with theirs (keras.match) and
-- the rebuilt trunk computes the same features as the Keras graph on a
-- random input; otherwise the Keras graph itself is the trunk.
local ac = require("adcorre")
local nn = require("adcorre.nn")
local topology = require("adcorre.keras.topology")
local match = require("adcorre.keras.match")
local budget = require("adcorre.budget")

local M = {}

local function is_softmax(n)
  local a = n.layer.config and n.layer.config.activation
  return a == "softmax"
end

local function is_linear(n)
  local a = n.layer.config and n.layer.config.activation
  return a == nil or a == "linear"
end

--- The Ad-Corre pattern of graph g, or nil (and why not).
function M.find(g)
  for _, o in ipairs(g.outputs) do
    local n = g.nodes[o]
    local cls, sm
    if n.class == "Dense" and is_softmax(n) then cls = o
    elseif n.class == "Activation" and is_softmax(n) and g.nodes[n.inputs[1]].class == "Dense"
      and is_linear(g.nodes[n.inputs[1]]) then cls, sm = n.inputs[1], o end
    if cls then
      local p = {classifier = cls, softmax = sm or cls}
      local j = g.nodes[cls].inputs[1]
      if g.nodes[j].class == "Dropout" then
        p.dropout = g.nodes[j].layer.config.rate or 0.5
        j = g.nodes[j].inputs[1]
      end
      local cat = g.nodes[j]
      if cat.class ~= "Concatenate" then return nil, "no Concatenate of embedding heads before the classifier" end
      p.concat = j
      p.heads, p.embeddings = {}, {}
      local gap
      for k, h in ipairs(cat.inputs) do
        local l2 = g.nodes[h]
        if not (l2.spec.module and l2.spec.module.keras_l2) then
          return nil, ("input %d of '%s' is not an l2_normalize Lambda"):format(k, cat.name)
        end
        local dn = g.nodes[l2.inputs[1]]
        if dn.class ~= "Dense" or not is_linear(dn) then
          return nil, ("the l2_normalize '%s' does not read a linear Dense"):format(l2.name)
        end
        local src = dn.inputs[1]
        if gap and src ~= gap then return nil, "the heads read different features" end
        gap = src
        p.heads[k], p.embeddings[k] = l2.inputs[1], h
      end
      if g.nodes[gap].class ~= "GlobalAveragePooling2D" then
        return nil, "the heads do not read a GlobalAveragePooling2D"
      end
      p.gap, p.trunk_out = gap, g.nodes[gap].inputs[1]
      p.k = #p.heads
      p.d = g.nodes[p.heads[1]].shape[1]
      p.features = g.nodes[gap].shape[1]
      p.classes = g.nodes[cls].shape[1]
      for _, hd in ipairs(p.heads) do
        if g.nodes[hd].shape[1] ~= p.d then return nil, "the heads have different sizes" end
      end
      return p
    end
  end
  return nil, "no output is a softmax Dense"
end

-- Largest relative difference max|a - b| / max|b|.
local function rel_diff(a, b)
  local scale = b:abs():max()
  if scale == 0 then scale = 1 end
  return (a - b):abs():max() / scale
end
M.rel_diff = rel_diff

-- The native trunks worth trying for an input of c x h x w.
local CANDIDATES = {
  {name = "xception", min = 71},
  {name = "minixception", min = 5},
}

-- Tries to rebuild the trunk natively: a model of ac.models with the
-- graph's trunk weights, or nil and why not.
local function native_model(g, p, o, where, verify, held)
  local s = g.input_shape
  local models = require("adcorre.models")
  local limit = budget.bytes(held)
  if verify and 4 * s[1] * s[2] * s[3] > limit then
    -- the check's forward takes a few images of this size per layer
    error(("%s: layer '%s' (InputLayer): batch_input_shape asks for %d x %d x %d images (%d bytes each), more than the file's %d bytes of weights justify"):format(
      where, g.nodes[1].name, s[2], s[3], s[1], 4 * s[1] * s[2] * s[3], held), 0)
  end
  local keep = topology.ancestors(g, p.trunk_out)
  local src = match.graph_units(g, keep)
  local why = {}
  for _, c in ipairs(CANDIDATES) do
    if s[2] >= c.min and s[3] >= c.min then
      local ok0, net = budget.run(limit, budget.why(held), models[c.name], {in_channels = s[1],
        size = s[2] == s[3] and s[2] or {s[2], s[3]}, classes = p.classes, k = p.k, d = p.d, dropout = o.dropout})
      if not ok0 then error(("%s: native %s: %s"):format(where, c.name, budget.strip(net)), 0) end
      local dst = match.native_units(net.trunk)
      local ok, pairs_ = pcall(match.pair, src, dst, where)
      if ok then
        match.copy(pairs_, nil, where)
        if verify then
          local x = ac.rand(1, s[1], s[2], s[3])
          local sub = topology.module(g, p.gap)
          sub:evaluate()
          net:evaluate()
          local want = sub:forward(x)
          local got = net.trunk:forward(x)
          got = got:view(got:size(1), -1)
          local r = rel_diff(got, want)
          if r <= 1e-4 then return net, c.name, r end
          why[#why + 1] = ("%s: features differ by %.3g"):format(c.name, r)
        else
          return net, c.name
        end
      else
        why[#why + 1] = c.name .. ": " .. tostring(pairs_):gsub("^" .. where:gsub("%p", "%%%0") .. ": ", "")
      end
    end
  end
  return nil, table.concat(why, "; ")
end

-- Copies the Dense weights of node index `i` into Linear m.
local function copy_dense(g, i, m)
  local src = g.nodes[i].spec.core
  m.weight:copy(src.weight)
  if m.bias then
    if src.bias then m.bias:copy(src.bias) else m.bias:zero() end
  end
end

--- Rebuilds the Ad-Corre network of pattern p (M.find) as an AdCorreNet.
--- Returns net, trunk kind ("xception", "minixception" or "graph"), and a
--- note on why a native trunk was not used.
function M.rebuild(g, p, where, opts)
  opts = opts or {}
  local o = {dropout = p.dropout or 0}
  if o.dropout >= 1 then o.dropout = 0.5 end
  local net, kind, note = nil, nil, nil
  if opts.native_trunk ~= false then
    net, kind = native_model(g, p, o, where, opts.verify ~= false, opts.held or 0)
    if not net then note = kind; kind = nil end
  end
  if not net then
    local models = require("adcorre.models")
    local trunk = topology.module(g, p.trunk_out)
    trunk.name = "keras"
    net = models.AdCorreNet(nn.Sequential():add(trunk), p.features,
                            {classes = p.classes, k = p.k, d = p.d, dropout = o.dropout})
    net.input_shape = g.input_shape
    net.arch = nil
    kind = "graph"
  end
  for j, h in ipairs(p.heads) do copy_dense(g, h, net.heads.modules[j].modules[1]) end
  copy_dense(g, p.classifier, net.classifier)
  return net, kind, note
end

return M
