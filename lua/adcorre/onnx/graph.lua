--- adcorre.onnx.graph: an ONNX graph as an adcorre module (what
-- ac.onnx.load returns).
--
--   local g = ac.onnx.load("model.onnx")
--   local out = g:forward(x)          -- x [N, C, H, W] (or [N, F])
--   -- out is a table keyed by the graph's output names; when the file
--   -- comes from ac.onnx.export (outputs logits and embeddings, metadata k
--   -- and d), out.embeddings is the list of the k [N, d] embeddings, as
--   -- AdCorreNet:forward gives them.
--   g.meta         -- metadata_props as a table (classes decoded: g.class_names)
--   g.input_shape  -- {C, H, W} of the graph input
--
-- Each node becomes a step (adcorre.onnx.ops): an nn module with the node's
-- weights, or a view / broadcast function. Steps run in file order (ONNX
-- requires a topologically sorted graph; anything else is reported). The
-- graph input needs a fixed shape except for the batch dimension: while the
-- steps are built, a batch of one runs through them, which checks every
-- weight against the shape it meets and fixes "same" padding. The modules
-- are the model's children (parameters(), evaluate(), ... work); backward
-- is not provided.
local ac = require("adcorre")
local json = require("adcorre.json")
local ops = require("adcorre.onnx.ops")
local Container = require("adcorre.nn.Container")
local budget = require("adcorre.budget")

local Graph = Container.class("onnx.Graph", Container)

local function run_step(s, env)
  local args = {}
  for i, n in ipairs(s.args) do args[i] = env[n] end
  if s.fn then return s.fn(table.unpack(args)) end
  if s.table_arg then return s.module:forward(args) end
  return s.module:forward(args[1])
end

local function dims_str(d)
  local p = {}
  for i, v in ipairs(d) do p[i] = tostring(v) end
  return "[" .. table.concat(p, ", ") .. "]"
end

--- Graph built from a decoded file (core.onnx.load's table); `where` names
--- it in errors.
function Graph.new(model, where)
  local self = Graph()
  where = where or "onnx"
  local function fail(fmt, ...) error(("onnx.load: %s: " .. fmt):format(where, ...), 0) end
  if model.opset ~= 0 and model.opset < 7 then fail("opset %d is too old (7 or later)", model.opset) end
  local consts, held = {}, 0
  for _, e in ipairs(model.initializers) do
    if consts[e.name] then fail("initializer '%s' appears twice", e.name) end
    consts[e.name] = e.tensor
    held = held + 4 * e.tensor:numel()
  end
  local inputs = {}
  for _, v in ipairs(model.inputs) do
    if not consts[v.name] then inputs[#inputs + 1] = v end
  end
  if #inputs ~= 1 then fail("the graph has %d inputs besides its initializers; one is supported", #inputs) end
  local input = inputs[1]
  if input.elem_type ~= 1 then fail("input '%s' has element type %d; float (1) is supported", input.name, input.elem_type) end
  local d = input.dims
  if not d or (#d ~= 4 and #d ~= 2) then
    fail("input '%s' must be [N, C, H, W] or [N, F], got %s", input.name, d and dims_str(d) or "no shape")
  end
  local example_shape = {1}
  for i = 2, #d do
    if math.type(d[i]) ~= "integer" or d[i] < 1 then
      fail("input '%s' has shape %s: every dimension but the first must be fixed", input.name, dims_str(d))
    end
    example_shape[i] = d[i]
  end
  self.input_name = input.name
  self.input_shape = {table.unpack(example_shape, 2)}
  -- Each step is built and run on the example under an allocation budget
  -- of what the initializers justify plus room for activations a few dozen
  -- times the example's size, so attributes that ask for absurd sizes
  -- (pads of 10^6, an input of 10^5 x 10^5) fail before they allocate.
  local in_bytes = 4
  for _, v in ipairs(example_shape) do in_bytes = in_bytes * v end
  local limit = budget.bytes(held)
  if in_bytes > limit then
    fail("input '%s' has shape %s: one example is %d bytes, more than the file's %d bytes of initializers justify",
      input.name, dims_str(d), in_bytes, held)
  end
  limit = limit + 64 * in_bytes
  local why = budget.why(held, "initializers")
  local examples = {[input.name] = ac.zeros(table.unpack(example_shape))}
  -- an example is dropped after the last node that reads it
  local last_use, is_output = {}, {}
  for i, node in ipairs(model.nodes) do
    for _, n in ipairs(node.inputs) do last_use[n] = i end
  end
  for _, v in ipairs(model.outputs) do is_output[v.name] = true end
  self.steps = {}
  local function step(node, ctx, label)
    local s = ops.build(node, ctx)
    if not s.args then
      s.args = {}
      for j, n in ipairs(node.inputs) do
        if consts[n] then break end
        s.args[j] = n
      end
    end
    s.output, s.label = node.outputs[1], label
    local y = run_step(s, examples)
    return s, ac.is_tensor(y) and y:clone() or y
  end
  for i, node in ipairs(model.nodes) do
    local label = node.name ~= "" and ("node %d '%s' (%s)"):format(i, node.name, node.op_type)
      or ("node %d (%s)"):format(i, node.op_type)
    local ctx = {
      const = function(n) return n and consts[n] end,
      example = function(n) return n and examples[n] end,
      fail = function(fmt, ...) fail("%s: " .. fmt, label, ...) end,
    }
    if #node.outputs ~= 1 and not (node.op_type == "Dropout" and #node.outputs == 2) then
      ctx.fail("%d outputs (one is supported)", #node.outputs)
    end
    local ok, s, y = budget.run(limit, why, step, node, ctx, label)
    if not ok then
      s = tostring(s)
      if s:find("^onnx%.load: ") then error(s, 0) end
      fail("%s: %s", label, budget.strip(s))
    end
    examples[s.output] = y
    for _, n in ipairs(node.inputs) do
      if last_use[n] == i and not is_output[n] and n ~= s.output then examples[n] = nil end
    end
    if s.module then self.modules[#self.modules + 1] = s.module end
    self.steps[#self.steps + 1] = s
  end
  self.output_names = {}
  for i, v in ipairs(model.outputs) do
    if not examples[v.name] then fail("output '%s' is not computed by any node", v.name) end
    self.output_names[i] = v.name
  end
  self.meta = {}
  for _, kv in ipairs(model.metadata) do self.meta[kv[1]] = kv[2] end
  if self.meta.classes then
    local ok, c = pcall(json.decode, self.meta.classes)
    if ok and type(c) == "table" then self.class_names = c end
  end
  self.k, self.d = tonumber(self.meta.k), tonumber(self.meta.d)
  self:evaluate()
  return self
end

function Graph:updateOutput(x)
  if not ac.is_tensor(x) then error("onnx.Graph:forward: input must be a tensor, got " .. type(x), 0) end
  local s = x:shape()
  local want = self.input_shape
  local ok = #s == #want + 1
  for i = 1, #want do ok = ok and s[i + 1] == want[i] end
  if not ok then
    error(("onnx.Graph:forward: input is %s, the graph expects [N, %s]"):format(dims_str(s), table.concat(want, ", ")), 0)
  end
  local env = {[self.input_name] = x}
  for _, st in ipairs(self.steps) do
    local ok2, y = pcall(run_step, st, env)
    if not ok2 then error(("onnx.Graph:forward: %s: %s"):format(st.label, tostring(y)), 0) end
    env[st.output] = y
  end
  local out = {}
  for _, n in ipairs(self.output_names) do out[n] = env[n] end
  if out.embeddings and out.logits and self.k and self.d and out.embeddings:size(2) == self.k * self.d then
    local list = {}
    for j = 1, self.k do list[j] = out.embeddings:narrow(2, (j - 1) * self.d + 1, self.d) end
    out.embeddings = list
  end
  self.output = out
  return out
end

function Graph:updateGradInput()
  error("onnx.Graph: backward is not supported (an imported graph is for inference)", 0)
end
Graph.accGradParameters = Graph.updateGradInput
Graph.backward = Graph.updateGradInput

function Graph:__tostring__()
  return ("onnx.Graph: input %s [N, %s], %d steps, outputs %s"):format(self.input_name,
    table.concat(self.input_shape, ", "), #self.steps, table.concat(self.output_names, ", "))
end

return Graph
