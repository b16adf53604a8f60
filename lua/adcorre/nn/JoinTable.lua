--- nn.JoinTable(dim): joins a table of tensors along dimension `dim`
-- (1-based, counting the batch dimension; negative counts from the end).
--   nn.JoinTable(2):forward({T[B,3], T[B,5]})   -- T[B,8]
local Module = require("adcorre.nn.Module")
local ac = require("adcorre")

local JoinTable = Module.class("nn.JoinTable", Module)
JoinTable._needsOutputField = false

function JoinTable:__init(dim)
  Module.__init(self)
  if math.type(dim) ~= "integer" or dim == 0 then
    error("JoinTable: dim must be a non-zero integer, got " .. tostring(dim), 2)
  end
  self.dim = dim
  self._args = { dim }
  self.gradInput = {}
end

local function shape_str(s) return "[" .. table.concat(s, ", ") .. "]" end

function JoinTable:_dim(nd)
  local d = self.dim < 0 and nd + self.dim + 1 or self.dim
  if d < 1 or d > nd then
    self:_error("forward", "dimension %d is out of range for %d-d inputs", self.dim, nd)
  end
  return d
end

function JoinTable:updateOutput(input)
  if type(input) ~= "table" or #input == 0 then
    self:_error("forward", "input must be a non-empty table of tensors, got %s", type(input))
  end
  local first = input[1]
  if not ac.is_tensor(first) then self:_error("forward", "input[1] is not a tensor") end
  local nd = first:dim()
  local d = self:_dim(nd)
  local shape = first:shape()
  local total = 0
  for i, t in ipairs(input) do
    if not ac.is_tensor(t) then self:_error("forward", "input[%d] is not a tensor", i) end
    local s = t:shape()
    if #s ~= nd then
      self:_error("forward", "input[%d] has shape %s, input[1] has %s", i, shape_str(s), shape_str(shape))
    end
    for k = 1, nd do
      if k ~= d and s[k] ~= shape[k] then
        self:_error("forward", "input[%d] has shape %s, input[1] has %s (they may differ only in dimension %d)",
          i, shape_str(s), shape_str(shape), d)
      end
    end
    total = total + s[d]
  end
  shape[d] = total
  local out = self:_resized("output", shape)
  local pos = 1
  for _, t in ipairs(input) do
    local n = t:size(d)
    out:narrow(d, pos, n):copy(t)
    pos = pos + n
  end
  return out
end

function JoinTable:updateGradInput(input, gradOutput)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local d = self:_dim(gradOutput:dim())
  local gi = {}
  local pos = 1
  for i, t in ipairs(input) do
    local n = t:size(d)
    local g = self:_buffer("gradInput" .. i, t:shape())
    g:copy(gradOutput:narrow(d, pos, n))
    gi[i] = g
    pos = pos + n
  end
  self.gradInput = gi
  return gi
end

function JoinTable:__tostring__()
  return ("nn.JoinTable(%d)"):format(self.dim)
end

return JoinTable
