--- bench/layerprof.lua - per-layer-type time and arithmetic rate of a model.
--
--   local prof = require("layerprof")       -- with bench/ on package.path
--   local p = prof.attach(net)              -- wraps every leaf module's methods
--   p:reset() ; ... forward / backward ... ; local rows = p:report()
--   p:detach()
--
-- Every leaf module (one without children) gets instance-level wrappers of
-- updateOutput, updateGradInput, accGradParameters and backward (the outermost
-- call of a module is timed, so a backward that calls the other two is
-- counted once) that add the elapsed
-- wall-clock time (ac.now) and the floating-point operations of the call to
-- its layer type:
--   conv       Conv2d with a kernel larger than 1x1 and groups 1 (im2col + sgemm)
--   depthwise  Conv2d with groups == input channels
--   pointwise  1x1 Conv2d, groups 1 (plain GEMM; also the strided shortcut)
--   linear     Linear
--   batchnorm, relu, maxpool, add, ... the other leaves by type name
--   ("batchnorm + relu": a BatchNorm2d with the ReLU fused, {relu = true})
--   "<conv kind> + batchnorm (folded)": a convolution and the batch norm after
--   it run as one folded convolution (evaluation mode, Sequential.lua)
-- Convolutions and Linear count 2 flops per multiply-add, the same number for
-- forward, input gradient and weight gradient. Memory-bound layers are given a
-- nominal count per element (batch norm: 4 forward, 6 input gradient, 3
-- parameter gradient; ReLU, max-pool, add: 1) so their rate reads as elements
-- touched per nanosecond; their time share is the figure that matters.
local ac = require("adcorre")
local core = require("adcorre.core")

local M = {}

local function numel(shape)
  local n = 1
  for _, v in ipairs(shape) do n = n * v end
  return n
end

local function kind_of(m)
  local t = m.__typename or "?"
  if t == "nn.Conv2d" then
    if m.groups > 1 and m.groups == m.nin then return "depthwise" end
    if m.kh == 1 and m.kw == 1 and m.groups == 1 then return "pointwise" end
    return "conv"
  end
  if t == "nn.Linear" then return "linear" end
  if t:match("BatchNorm") then return m.relu and "batchnorm + relu" or "batchnorm" end
  return (t:gsub("^nn%.", ""):lower())
end

-- flops of one call of `method` on module m with input x (output already computed)
local function flops_of(m, kind, method, x)
  if kind == "conv" or kind == "depthwise" or kind == "pointwise" then
    local y = m.output
    if not (y and y.shape) then return 0 end
    local s = y:shape()
    return 2 * s[1] * s[2] * s[3] * s[4] * (m.nin // m.groups) * m.kh * m.kw
  elseif kind == "linear" then
    local s = x:shape()
    local n = numel(s) // s[#s]
    return 2 * n * m.weight:size(1) * m.weight:size(2)
  elseif type(x) == "userdata" or (type(x) == "table" and x.shape) then
    local ok, n = pcall(function() return x:numel() end)
    if not ok then return 0 end
    if kind:match("^batchnorm") then
      return n * (method == "updateOutput" and 4 or method == "updateGradInput" and 6 or 3)
    end
    return n
  end
  return 0
end

local Prof = {}
Prof.__index = Prof

function M.attach(net)
  local p = setmetatable({stats = {}, wrapped = {}}, Prof)
  local function visit(m)
    if m.modules and #m.modules > 0 then
      for _, c in ipairs(m.modules) do visit(c) end
      return
    end
    local kind = kind_of(m)
    local busy = false -- a wrapped method called from another one is not counted twice
    if m.__typename == "nn.Conv2d" then
      -- evaluation mode runs a convolution + batch norm pair as one folded
      -- convolution (Sequential.lua) that calls m:_call directly: count it
      local orig_call = m._call
      p.wrapped[#p.wrapped + 1] = {m, "_call", rawget(m, "_call")}
      m._call = function(self, method, f, ...)
        if busy or f ~= core.nn.conv2d_forward then return orig_call(self, method, f, ...) end
        local t0 = ac.now()
        local r = orig_call(self, method, f, ...)
        local dt = ac.now() - t0
        local y = select(4, ...)
        local key = kind .. " + batchnorm (folded)"
        local st = p.stats[key]
        if not st then st = {kind = key, time = 0, flops = 0, calls = 0}; p.stats[key] = st end
        st.time = st.time + dt
        st.calls = st.calls + 1
        if y and y.numel then st.flops = st.flops + 2 * y:numel() * (self.nin // self.groups) * self.kh * self.kw end
        return r
      end
    end
    for _, method in ipairs({"updateOutput", "updateGradInput", "accGradParameters", "backward"}) do
      local orig = m[method]
      p.wrapped[#p.wrapped + 1] = {m, method, rawget(m, method)}
      m[method] = function(self, x, ...)
        if busy then return orig(self, x, ...) end
        busy = true
        local t0 = ac.now()
        local r = orig(self, x, ...)
        local dt = ac.now() - t0
        busy = false
        local key = kind .. (method == "updateOutput" and "" or " (backward)")
        local st = p.stats[key]
        if not st then st = {kind = key, time = 0, flops = 0, calls = 0}; p.stats[key] = st end
        st.time = st.time + dt
        st.calls = st.calls + 1
        local f = 0
        if method == "backward" then
          -- input gradient, plus the parameter gradient when there are parameters
          f = flops_of(self, kind, "updateGradInput", x)
          if self.weight then f = f + flops_of(self, kind, "accGradParameters", x) end
        elseif not (method == "accGradParameters" and not self.weight) then
          f = flops_of(self, kind, method, x)
        end
        st.flops = st.flops + f
        return r
      end
    end
  end
  visit(net)
  return p
end

function Prof:reset() self.stats = {} end

function Prof:add(key, dt, flops)
  local st = self.stats[key]
  if not st then st = {kind = key, time = 0, flops = 0, calls = 0}; self.stats[key] = st end
  st.time = st.time + dt
  st.flops = st.flops + (flops or 0)
  st.calls = st.calls + 1
end

--- Rows sorted by time: {kind, time (s), flops, gflops (per s), calls}; `per`
--- divides time and flops (number of repetitions measured).
function Prof:report(per)
  per = per or 1
  local rows = {}
  for _, st in pairs(self.stats) do
    rows[#rows + 1] = {kind = st.kind, time = st.time / per, flops = st.flops / per,
                       gflops = st.time > 0 and st.flops / st.time * 1e-9 or 0, calls = st.calls // per}
  end
  table.sort(rows, function(a, b) return a.time > b.time end)
  return rows
end

function Prof:detach()
  for _, w in ipairs(self.wrapped) do w[1][w[2]] = w[3] end
  self.wrapped = {}
end

return M
