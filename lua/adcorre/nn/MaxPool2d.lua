--- nn.MaxPool2d(k [, stride = k [, pad = 0]]): max pooling over NCHW
-- input; pad may be "same" (Keras). The gradient goes to the first maximum
-- of each window. See adcorre.nn.Pool2d.
-- The backward reads only the indices of the maxima (and the input's
-- shape), never the input or the output values, so a container may release
-- both once the forward has gone past them (adcorre.memory.plan). In
-- evaluation mode the forward writes no indices (a third of its memory
-- traffic; doc/performance.md); a backward after such a forward finds them
-- again from the input, which is then kept.
local Pool2d = require("adcorre.nn.Pool2d")
local core = require("adcorre.core")

local MaxPool2d = Pool2d.class("nn.MaxPool2d", Pool2d)
MaxPool2d._needsInputField = false
MaxPool2d._needsOutputField = false

function MaxPool2d:_needsInput()
  return not self.train or rawget(self, "_outRecompute") == true
end

function MaxPool2d:updateOutput(input)
  local s, geo, OH, OW = self:_prepare("forward", input)
  local os = { s[1], s[2], OH, OW }
  local y = self:_resized("output", os)
  local idx = self.train and self:_buffer("indices", os, "int64") or nil
  self:_call("forward", core.nn.maxpool2d_forward, input, y, idx, geo)
  self._inShape = s
  self._haveIndices = idx ~= nil
  return y
end

function MaxPool2d:updateGradInput(input, gradOutput)
  local s, geo
  if input == nil and self._inShape then
    -- the input was released (the backward needs only its shape)
    s = self._inShape
    geo = self:_geometry(s)
  else
    s, geo = self:_prepare("backward", input)
  end
  self:_checkGradOutput("backward", gradOutput, self.output)
  if not self._haveIndices then
    -- the forward ran in evaluation mode: find the maxima's indices again
    if input == nil then self:_error("backward", "the input of an evaluation-mode forward is needed") end
    local os = gradOutput:shape()
    local idx = self:_buffer("indices", os, "int64")
    self:_call("backward", core.nn.maxpool2d_forward, input, self:_buffer("scratch", os), idx, geo)
    self._haveIndices = true
  end
  local gx = self:_resized("gradInput", s)
  self:_call("backward", core.nn.maxpool2d_backward_input, gradOutput, self._bufs.indices, gx, geo)
  return gx
end

return MaxPool2d
