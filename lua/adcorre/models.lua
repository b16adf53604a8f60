--- adcorre.models: the networks of the Ad-Corre paper.
--
--   local net = ac.models.minixception{in_channels = 1, size = 48, classes = 7, k = 10, d = 256}
--   local net = ac.models.xception{in_channels = 3, size = 224, classes = 7, k = 10, d = 256}
--   local out = net:forward(x)           -- x [B, in_channels, size, size]
--   -- out.logits [B, classes], out.embeddings = {E_1 .. E_k}, each [B, d], rows of unit length
--   net:backward(x, {logits = gradLogits, embeddings = gradEmbeddings})
--   net:nparams()                        -- trainable parameters
--
-- Both are backbone -> global average pooling -> k embedding heads
-- (Linear(features, d) then L2Normalize) -> concatenation -> Dropout(0.5) ->
-- Linear(k * d, classes) (the softmax is in the loss).
--
-- xception is Keras' keras.applications.Xception(include_top=False) layer for
-- layer (entry flow, eight middle-flow blocks, exit flow up to
-- block14_sepconv2_act), with Keras' layer names and batch normalisation
-- (eps 1e-3, moving average 0.99: BatchNorm2d(n, 1e-3, 0.01)).
-- minixception is the mini-Xception of Arriaga et al. (2017): two valid 3x3
-- convolutions of 8 channels, then four residual modules of 16, 32, 64 and 128
-- channels; without its final classifier convolution, which the head replaces.
--
-- The model object is an nn container (parameters, getParameters,
-- zeroGradParameters, training / evaluate, clone, print work as for any
-- module); model.trunk is the backbone (ending with the global pooling),
-- model.heads the k embedding heads, model.classifier the last Linear.
-- model.arch = {constructor =, args =} lets ac.save / ac.load rebuild it.
local ac = require("adcorre")
local nn = require("adcorre.nn")

local M = {}

----------------------------------------------------------------------------
-- arguments
----------------------------------------------------------------------------

local function int_arg(o, key, default, min, where)
  local v = o[key]
  if v == nil then v = default end
  if math.type(v) ~= "integer" then
    if type(v) == "number" and v == math.floor(v) then v = math.tointeger(v)
    else error(("%s: %s must be an integer, got %s"):format(where, key, tostring(v)), 3) end
  end
  if v < min then error(("%s: %s must be >= %d, got %d"):format(where, key, min, v), 3) end
  return v
end

-- size: a number or {h, w}
local function size_arg(o, default, min, where)
  local s = o.size
  if s == nil then s = default end
  local h, w
  if type(s) == "table" then h, w = s[1], s[2] else h, w = s, s end
  for _, v in ipairs({h, w}) do
    if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
      error(("%s: size must be an integer or {h, w}, got %s"):format(where, tostring(s)), 3)
    end
  end
  h, w = math.tointeger(h), math.tointeger(w)
  if h < min or w < min then
    error(("%s: input size %dx%d is too small (at least %dx%d)"):format(where, h, w, min, min), 3)
  end
  return h, w
end

local function check_options(o, allowed, where)
  if o == nil then return {} end
  if type(o) ~= "table" then error(where .. ": options must be a table, got " .. type(o), 3) end
  for k in pairs(o) do
    if not allowed[k] then error(("%s: unknown option '%s'"):format(where, tostring(k)), 3) end
  end
  return o
end

----------------------------------------------------------------------------
-- building blocks
----------------------------------------------------------------------------

local function named(m, name)
  m.name = name
  return m
end

-- Keras BatchNormalization() defaults: epsilon 1e-3, momentum 0.99.
local function bn(n, name) return named(nn.BatchNorm2d(n, 1e-3, 0.01), name) end
-- A batch norm and the ReLU after it as one module (BatchNorm2d with
-- relu = true): one pass each way, one output, nothing else kept. It takes
-- the norm's name (Keras' "<layer>_bn"; its "<layer>_act" has no weights).
local function bn_relu(n, name) return named(nn.BatchNorm2d(n, 1e-3, 0.01, {relu = true}), name) end
local function relu(name) return named(nn.ReLU(), name) end
local function sep(nin, nout, name) return named(nn.SeparableConv2d(nin, nout, 3, 1, "same"), name) end
local function pool(name) return named(nn.MaxPool2d(3, 2, "same"), name) end
-- 3x3 valid convolution without bias (batch norm follows).
local function conv3(nin, nout, stride, name)
  return named(nn.Conv2d(nin, nout, 3, stride, 0, 1, {bias = false}), name)
end
-- Adds layer, then its batch norm + ReLU "<name>_bn"; returns seq.
local function add_bn_relu(seq, layer, nout)
  return seq:add(layer):add(bn_relu(nout, layer.name .. "_bn"))
end

-- main(x) + shortcut(x); shortcut nil = identity.
local function residual(name, main, shortcut)
  main.name = "main"
  shortcut = shortcut or nn.Identity()
  shortcut.name = "shortcut"
  local split = named(nn.ConcatTable(), "split"):add(main):add(shortcut)
  return named(nn.Sequential(), name):add(split):add(named(nn.Add(), "add"))
end

-- The 1x1 stride-2 convolution + batch norm of a downsampling shortcut.
local function shortcut_conv(nin, nout)
  return nn.Sequential()
    :add(named(nn.Conv2d(nin, nout, 1, 2, "same", 1, {bias = false}), "conv"))
    :add(bn(nout, "bn"))
end

----------------------------------------------------------------------------
-- backbones
----------------------------------------------------------------------------

--- Keras' Xception without its top: [B, in, H, W] -> [B, 2048, h, w].
function M.xception_trunk(in_channels)
  local t = named(nn.Sequential(), "xception")
  -- entry flow
  add_bn_relu(t, conv3(in_channels, 32, 2, "block1_conv1"), 32)
  add_bn_relu(t, conv3(32, 64, 1, "block1_conv2"), 64)

  local function down_block(b, nin, c1, c2, first_act)
    local p = "block" .. b
    local main = nn.Sequential()
    if first_act then main:add(relu(p .. "_sepconv1_act")) end
    add_bn_relu(main, sep(nin, c1, p .. "_sepconv1"), c1) -- and Keras' _sepconv2_act
    main:add(sep(c1, c2, p .. "_sepconv2")):add(bn(c2, p .. "_sepconv2_bn"))
    main:add(pool(p .. "_pool"))
    return residual(p, main, shortcut_conv(nin, c2))
  end
  t:add(down_block(2, 64, 128, 128, false))
  t:add(down_block(3, 128, 256, 256, true))
  t:add(down_block(4, 256, 728, 728, true))
  -- middle flow: eight identity-shortcut blocks of three separable convolutions
  for b = 5, 12 do
    local p = "block" .. b
    -- the first ReLU reads the block's input (also the shortcut's), so it
    -- stays a module of its own; the next two are fused into the norms
    local main = nn.Sequential():add(relu(p .. "_sepconv1_act"))
    for j = 1, 3 do
      local conv = sep(728, 728, ("%s_sepconv%d"):format(p, j))
      if j < 3 then add_bn_relu(main, conv, 728)
      else main:add(conv):add(bn(728, conv.name .. "_bn")) end
    end
    t:add(residual(p, main, nil))
  end
  -- exit flow
  t:add(down_block(13, 728, 728, 1024, true))
  add_bn_relu(t, sep(1024, 1536, "block14_sepconv1"), 1536)
  add_bn_relu(t, sep(1536, 2048, "block14_sepconv2"), 2048)
  return t, 2048
end

--- The mini-Xception backbone (Arriaga et al. 2017): [B, in, H, W] -> [B, 128, h, w].
function M.minixception_trunk(in_channels)
  local t = named(nn.Sequential(), "minixception")
  add_bn_relu(t, conv3(in_channels, 8, 1, "conv1"), 8)
  add_bn_relu(t, conv3(8, 8, 1, "conv2"), 8)
  local nin = 8
  for i, c in ipairs({16, 32, 64, 128}) do
    local p = "module" .. i
    local main = add_bn_relu(nn.Sequential(), sep(nin, c, p .. "_sepconv1"), c)
      :add(sep(c, c, p .. "_sepconv2")):add(bn(c, p .. "_sepconv2_bn"))
      :add(pool(p .. "_pool"))
    t:add(residual(p, main, shortcut_conv(nin, c)))
    nin = c
  end
  return t, 128
end

----------------------------------------------------------------------------
-- the Ad-Corre network: trunk + pooling + k embedding heads + classifier
----------------------------------------------------------------------------

local Container = require("adcorre.nn.Container")
local AdCorreNet = Container.class("models.AdCorreNet", Container)
M.AdCorreNet = AdCorreNet

--- AdCorreNet(trunk, features, {classes=, k=, d=, dropout=}): the Ad-Corre head on any
--- backbone giving [B, features, h, w].
function AdCorreNet:__init(trunk, features, o)
  Container.__init(self)
  o = o or {}
  local k, d, classes = o.k or 10, o.d or 256, o.classes or 7
  self.k, self.d, self.classes, self.features = k, d, classes, features
  self.trunk = named(nn.Sequential(), "trunk")
  for _, m in ipairs(trunk.modules) do self.trunk:add(m) end
  self.trunk:add(named(nn.GlobalAvgPool2d(), "avg_pool"))
  self.heads = named(nn.ConcatTable(), "heads")
  for j = 1, k do
    self.heads:add(named(nn.Sequential(), "head" .. j)
      :add(named(nn.Linear(features, d), "dense"))
      :add(named(nn.L2Normalize(), "l2norm")))
  end
  self.join = named(nn.JoinTable(2), "concat")
  self.dropout_p = o.dropout or 0.5
  self.dropout = named(nn.Dropout(self.dropout_p), "dropout")
  self.classifier = named(nn.Linear(k * d, classes), "classifier")
  self.modules = {self.trunk, self.heads, self.join, self.dropout, self.classifier}
  self.output = {logits = nil, embeddings = nil}
  self._gsum = {}
end

-- The trunk's pooled features as [B, features] (GlobalAvgPool2d may keep 1x1 dims).
local function flat_features(self, f)
  if f:dim() == 2 then return f end
  return f:view(f:size(1), self.features)
end

local function check_input(self, x, method)
  if not ac.is_tensor(x) then
    error(("AdCorreNet:%s: input must be a tensor [B, C, H, W], got %s"):format(method, type(x)), 0)
  end
  if x:dim() ~= 4 then
    error(("AdCorreNet:%s: input must be [B, C, H, W], got [%s]"):format(method, table.concat(x:shape(), ", ")), 0)
  end
  local a = self.arch and self.arch.args
  if a and a.in_channels and x:size(2) ~= a.in_channels then
    error(("AdCorreNet:%s: input has %d channels, the model expects %d"):format(method, x:size(2), a.in_channels), 0)
  end
end

--- Returns {logits = T[B, classes], embeddings = {T[B, d] x k}}.
function AdCorreNet:updateOutput(x)
  check_input(self, x, "forward")
  local f = flat_features(self, self:_child(1, "updateOutput", x))
  self._f = f
  local embs = self:_child(2, "updateOutput", f)
  local cat = self:_child(3, "updateOutput", embs)
  local dp = self:_child(4, "updateOutput", cat)
  local logits = self:_child(5, "updateOutput", dp)
  self.output = {logits = logits, embeddings = embs}
  return self.output
end

-- gradOutput = {logits = [B, classes] or nil, embeddings = {k x [B, d]} or nil}
local function check_grad(self, g)
  if type(g) ~= "table" or (g.logits == nil and g.embeddings == nil) then
    error("AdCorreNet:backward: gradOutput must be {logits = T, embeddings = {T, ...}}", 0)
  end
  if g.embeddings ~= nil and (type(g.embeddings) ~= "table" or #g.embeddings ~= self.k) then
    error(("AdCorreNet:backward: gradOutput.embeddings must be a table of %d tensors"):format(self.k), 0)
  end
  if not (self.output and self.output.logits) then error("AdCorreNet:backward: call forward first", 0) end
end

-- Gradient with respect to each embedding: the classifier's path plus the loss's.
-- mode: "backward" (input gradients and parameter gradients), "input" or "params".
local function head_grads(self, g, mode, scale)
  local B = self.output.logits:size(1)
  local gl = g.logits
  if gl == nil then
    gl = self:_buffer("zero_logits", {B, self.classes})
    gl:zero()
  end
  local m = self.modules
  if mode == "params" then
    self:_child(5, "accGradParameters", m[4].output, gl, scale)
    return nil
  end
  local gdp
  if mode == "backward" then gdp = self:_child(5, "backward", m[4].output, gl, scale)
  else gdp = self:_child(5, "updateGradInput", m[4].output, gl) end
  local gcat = self:_child(4, "updateGradInput", m[3].output, gdp)
  local gsplit = self:_child(3, "updateGradInput", self.output.embeddings, gcat)
  local out = {}
  for j = 1, self.k do
    local s = self:_buffer("gemb" .. j, {B, self.d})
    s:copy(gsplit[j])
    if g.embeddings and g.embeddings[j] ~= nil then s:add_(g.embeddings[j]) end
    out[j] = s
  end
  return out
end

function AdCorreNet:backward(x, g, scale)
  check_grad(self, g)
  scale = scale or 1
  local ge = head_grads(self, g, "backward", scale)
  local gf = self:_child(2, "backward", self._f, ge, scale)
  local tr = self.trunk
  gf = gf:view(tr.output:shape())
  self.gradInput = self:_child(1, "backward", x, gf, scale)
  return self.gradInput
end

function AdCorreNet:updateGradInput(x, g)
  check_grad(self, g)
  local ge = head_grads(self, g, "input")
  self._ge = ge
  local gf = self:_child(2, "updateGradInput", self._f, ge)
  self.gradInput = self:_child(1, "updateGradInput", x, gf:view(self.trunk.output:shape()))
  return self.gradInput
end

function AdCorreNet:accGradParameters(x, g, scale)
  check_grad(self, g)
  scale = scale or 1
  head_grads(self, g, "params", scale)
  local ge = self._ge
  if not ge then error("AdCorreNet:accGradParameters: call updateGradInput first", 0) end
  self:_child(2, "accGradParameters", self._f, ge, scale)
  self:_child(1, "accGradParameters", x, self.heads.gradInput:view(self.trunk.output:shape()), scale)
end

-- Called by clearState(): drop the references kept for backward.
function AdCorreNet:_clearState()
  self._f, self._ge = nil, nil
  self.output = {logits = nil, embeddings = nil}
end

--- net:save(path [, extra]) = ac.save(path, net, extra)
function AdCorreNet:save(path, extra)
  require("adcorre.serialize").save(path, self, extra)
  return self
end

--- net:load_weights(path [, {strict = false}]): weights only; every name,
--- shape or dtype mismatch is reported (see doc/models.md).
function AdCorreNet:load_weights(path, opts)
  return require("adcorre.serialize").load_weights(self, path, opts)
end

--- Trainable parameters; nparams{buffers = true} also counts the batch-norm
--- running statistics (what Keras reports as its total).
function AdCorreNet:nparams(o)
  local n = Container.nparams(self)
  if o and o.buffers then
    for _, e in ipairs(self:namedBuffers()) do n = n + e.tensor:numel() end
  end
  return n
end

local function thousands(n)
  local s = tostring(n)
  local r = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (r:gsub("^,", ""))
end

function AdCorreNet:__tostring__()
  local a = self.arch or {}
  local s = self.input_shape or {0, 0, 0}
  local head = ("%s: %s input %dx%dx%d -> %d features -> %d heads Linear(%d, %d) + L2Normalize -> " ..
    "concat %d -> Dropout(%g) -> Linear(%d, %d); %s trainable parameters"):format(
    self.__typename, a.constructor or "?", s[1], s[2], s[3],
    self.features, self.k, self.features, self.d, self.k * self.d, self.dropout_p,
    self.k * self.d, self.classes, thousands(self:nparams()))
  return head .. "\n" .. Container._indent(tostring(self.trunk), "") ..
    ("\nheads: %d x %s"):format(self.k, Container._indent(tostring(self.heads.modules[1]), "  ")) ..
    "\nclassifier: " .. tostring(self.classifier)
end

----------------------------------------------------------------------------
-- constructors
----------------------------------------------------------------------------

local COMMON = {in_channels = true, size = true, classes = true, k = true, d = true, dropout = true}

local function build(name, trunk_fn, o, defaults, min_size)
  local where = "models." .. name
  o = check_options(o, COMMON, where)
  local in_ch = int_arg(o, "in_channels", defaults.in_channels, 1, where)
  local h, w = size_arg(o, defaults.size, min_size, where)
  local classes = int_arg(o, "classes", 7, 1, where)
  local k = int_arg(o, "k", 10, 1, where)
  local d = int_arg(o, "d", 256, 2, where)
  local p = o.dropout == nil and 0.5 or o.dropout
  if type(p) ~= "number" or p < 0 or p >= 1 then
    error(where .. ": dropout must be in [0, 1), got " .. tostring(p), 3)
  end
  local trunk, features = trunk_fn(in_ch)
  local net = AdCorreNet(trunk, features, {classes = classes, k = k, d = d, dropout = p})
  net.arch = {constructor = name, args = {in_channels = in_ch, size = (h == w) and h or {h, w},
              classes = classes, k = k, d = d, dropout = p}}
  net.input_shape = {in_ch, h, w}
  return net
end

--- Keras Xception (no top) + the Ad-Corre head. Inputs at least 71x71 (as Keras).
--- checkpoint = true: the eight middle-flow blocks keep only their input
--- and output in training; each block's forward is re-run just before its
--- backward (gradient checkpointing: same gradients, less memory, one more
--- forward of the middle flow per step). Module tree and names unchanged.
function M.xception(o)
  local ck
  if type(o) == "table" then ck = o.checkpoint end
  if ck ~= nil and type(ck) ~= "boolean" then
    error("models.xception: checkpoint must be a boolean, got " .. type(ck), 2)
  end
  if ck ~= nil then
    local c = {}
    for k, v in pairs(o) do if k ~= "checkpoint" then c[k] = v end end
    o = c
  end
  local net = build("xception", M.xception_trunk, o, {in_channels = 3, size = 224}, 71)
  if ck then
    for _, m in ipairs(net.trunk.modules) do
      local b = m.name and tonumber(m.name:match("^block(%d+)$"))
      if b and b >= 5 and b <= 12 then m.checkpoint = true end
    end
    net.arch.args.checkpoint = true
  end
  return net
end

--- mini-Xception + the Ad-Corre head. Inputs at least 5x5 (28x28, 48x48, 64x64 ...).
function M.minixception(o)
  return build("minixception", M.minixception_trunk, o, {in_channels = 1, size = 48}, 5)
end

--- A model imported from Keras and saved with ac.save (see ac.keras.from_config).
function M.keras(o)
  return require("adcorre.keras").from_config(o)
end

return M
